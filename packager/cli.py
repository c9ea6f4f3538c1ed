"""The `pkg` command line: options in, text or one JSON object out, exit codes. The work lives elsewhere.

Nothing here imports boto3: `pkg --help` and `pkg build` must stay fast.
"""

from __future__ import annotations

import json
import os
import sys
import time

import click

from packager.errors import PkgError


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _emit_json(document: dict) -> None:
    """One JSON object on stdout: indented for a terminal, compact for a pipe (json's C encoder only
    runs without indent, and a 3000-artifact report is most of a no-op's time otherwise)."""
    click.echo(json.dumps(document, indent=2 if sys.stdout.isatty() else None))


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _progress(message: str) -> None:
    """Long work (dependency installs) reports on stderr, so --json output stays one object."""
    click.echo(message, err=True)


class PkgGroup(click.Group):
    """Turns a PkgError into one clean message, a hint and exit code 1: no traceback for user mistakes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PkgError as error:
            click.secho(f"error: {error.message}", err=True, fg="red")
            if error.hint:
                click.echo(f"hint: {error.hint}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=PkgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    help="The pipelines repository (default: found by walking up from the current folder).",
)
@click.version_option(package_name="pkg")
@click.pass_context
def cli(ctx: click.Context, root: str | None) -> None:
    """Build and publish AWS Lambda, Glue and EMR pipelines from one repository, rebuilding only what changed."""
    ctx.obj = {"root": root}


def _workspace(ctx: click.Context):
    from packager.builders.builder import open_workspace

    ws = open_workspace(_root(ctx))
    ctx.call_on_close(ws.close)
    return ws


def _artifact_json(item, store) -> dict:
    record = item.record
    return {
        "id": item.spec.id,
        "kind": item.spec.kind,
        "input_hash": item.spec.input_hash,
        "status": "built" if item.to_build else "cached",
        "path": store.abspath(record.path) if record else None,
        "sha256": record.sha256 if record else None,
        "size": record.size if record else None,
        "unzipped_size": record.unzipped_size if record else None,
    }


def _build_step(ws, names, force: bool, refresh_deps: bool, jobs: int | None, as_json: bool):
    """collect -> plan -> fetch from the shared cache -> build, with progress; returns (planned, built)."""
    from packager.builders.builder import build as run_build
    from packager.builders.builder import collect, plan_build

    collected = collect(ws, list(names), refresh_deps=refresh_deps, progress=_progress, force=force)
    ws.warnings = collected.warnings
    for warning in collected.warnings:
        _warn(warning)
    planned = plan_build(ws, collected, force)
    todo = [item for item in planned if item.to_build]
    if todo and ws.shared and ws.shared.fetch_planned(planned):
        todo = [item for item in planned if item.to_build]
    if todo and sys.stderr.isatty():
        with click.progressbar(length=len(todo), label="building", file=sys.stderr, show_pos=True) as bar:
            run_build(ws, planned, on_built=lambda item: bar.update(1), jobs=jobs)
    else:
        if todo and not as_json:
            click.echo(f"building {len(todo)} artifact{'s' * (len(todo) != 1)}...", err=True)
        run_build(ws, planned, jobs=jobs)
    return planned, todo


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even what the cache already holds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), help="Artifacts built at once (default: cores + 1).")
@click.option(
    "--refresh-deps",
    is_flag=True,
    help="Re-resolve every dependency set (unpinned requirements otherwise move only when their text changes).",
)
@click.option("--no-shared-cache", is_flag=True, help="Use only the local cache, even if cache_uri is set.")
@click.pass_context
def build(
    ctx: click.Context,
    names: tuple[str, ...],
    force: bool,
    as_json: bool,
    jobs: int | None,
    refresh_deps: bool,
    no_shared_cache: bool,
) -> None:
    """Build the artifacts whose inputs changed (all, or NAMES: functions or artifact ids, with their layers)."""
    from packager.builders import noop
    from packager.repo import cache_dir_of

    started = time.perf_counter()
    root = _root(ctx)
    cache_dir = cache_dir_of(root)
    plain = not (names or force or refresh_deps)
    if plain:  # nothing changed since a build that left everything cached: answer from its report
        summary = noop.answer(root, cache_dir)
        if summary is not None:
            for warning in summary["warnings"]:
                _warn(warning)
            _echo_build_report(summary["report"], [], as_json, started)
            return
        taken = noop.take(root)

    from packager.shared import open_shared_cache

    ws = _workspace(ctx)
    # Lazy: the shared cache is pulled only when the local cache misses, so a no-op build never
    # touches the network nor imports boto3.
    ws.shared = open_shared_cache(ws, enabled=not no_shared_cache, warn=_warn)
    planned, todo = _build_step(ws, names, force, refresh_deps, jobs, as_json)
    if ws.shared and todo:
        ws.shared.push()
    report = {
        "artifacts": [_artifact_json(item, ws.store) for item in planned],
        "summary": {"built": len(todo), "cached": len(planned) - len(todo)},
    }
    if plain:
        ws.close()  # first: closing voids the saved answer when this build wrote to the index
        cached = [{**artifact, "status": "cached"} for artifact in report["artifacts"]]
        answer = {"artifacts": cached, "summary": {"built": 0, "cached": len(cached)}}
        noop.remember(cache_dir, taken, {"report": answer, "warnings": ws.warnings})
    _echo_build_report(report, todo, as_json, started)


def _echo_build_report(report: dict, todo: list, as_json: bool, started: float) -> None:
    if as_json:
        _emit_json(report)
        return
    for item in todo:
        click.echo(f"built   {item.spec.id:<48} {_human(item.record.size):>9}  ({item.reason})")
    summary = report["summary"]
    elapsed = time.perf_counter() - started
    click.echo(f"{summary['built']} built, {summary['cached']} cached in {elapsed:.2f} s")


def _stage_options(command):
    """--stage, --refresh, --profile, --region: where and against what a publish is planned."""
    for option in reversed(
        [
            click.option("--refresh", is_flag=True, help="Compare with the live functions too, and report drift."),
            click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain)."),
            click.option("--region", help="AWS region (default: the stage's)."),
        ]
    ):
        command = option(command)
    return command


def _action_line(action: dict) -> str:
    return f"{action['action']:<30} {action['name']:<48} {action['reason']}"


def _publish_document(staged, outcomes=None) -> dict:
    plan = staged.plan
    actions = [outcome.to_json() for outcome in outcomes] if outcomes else [a.to_json() for a in plan.actions]
    return {
        "stage": plan.target.stage,
        "account": plan.target.account,
        "region": plan.target.region,
        "actions": actions,
        "drift": [drift.to_json() for drift in plan.drift],
    }


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Plan as if nothing were cached.")
@click.option("--stage", help="Also plan the publish to this stage: every AWS call, and why.")
@_stage_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def plan(
    ctx: click.Context,
    names: tuple[str, ...],
    force: bool,
    stage: str | None,
    refresh: bool,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Say what `pkg build` would build, and with --stage what `pkg publish` would do, and why."""
    from packager.builders.builder import collect, plan_build

    if refresh and not stage:
        raise PkgError("--refresh compares with a stage's live functions", hint="add --stage NAME")
    ws = _workspace(ctx)
    collected = collect(ws, list(names), progress=_progress)
    for warning in collected.warnings:
        _warn(warning)
    planned = plan_build(ws, collected, force)
    staged = None
    if stage:
        from packager.deploy.stage import plan_stage
        from packager.shared import open_shared_cache

        shared = open_shared_cache(ws, enabled=True, warn=_warn, stage=stage, region=region)
        if shared:
            shared.pull()  # what teammates and CI already published
        staged = plan_stage(ws, stage, planned, refresh=refresh, profile=profile, region=region)
    summary = {
        "build": sum(item.to_build for item in planned),
        "cached": sum(not item.to_build for item in planned),
    }
    if as_json:
        document = {
            "artifacts": [
                {
                    "id": item.spec.id,
                    "kind": item.spec.kind,
                    "input_hash": item.spec.input_hash,
                    "action": str(item.status),
                    "reason": item.reason,
                    # Dependency chunks know their unzipped size before they are built.
                    "size": item.record.size if item.record else None,
                    "unzipped_size": item.record.unzipped_size if item.record else item.spec.unzipped_size,
                }
                for item in planned
            ],
            "summary": summary,
        }
        if staged:
            document.update(_publish_document(staged))
            summary["mutating_calls"] = staged.plan.mutating_calls
            document["summary"] = document.pop("summary")  # last, after the actions
        _emit_json(document)
        return
    for item in planned:
        click.echo(f"{item.status:<7} {item.spec.id:<48} {item.reason}")
    to_build = sum(item.to_build for item in planned)
    click.echo(f"{to_build} to build, {len(planned) - to_build} cached")
    if staged:
        _echo_publish_plan(staged)


def _echo_publish_plan(staged) -> None:
    target = staged.plan.target
    click.echo(f"publish to stage {target.stage} (account {target.account}, {target.region}):")
    for action in staged.plan.actions:
        click.echo("  " + _action_line(action.to_json()))
    for drift in staged.plan.drift:
        click.echo(f"  drift: {drift.name}: {drift.field} differs from what pkg published", err=True)
    click.echo(f"{staged.plan.mutating_calls} mutating AWS call{'s' * (staged.plan.mutating_calls != 1)}")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--stage", required=True, help="The stage to publish to ([tool.pkg.stages.NAME]).")
@_stage_options
@click.option("--dry-run", is_flag=True, help="Build and print the plan, then stop: no mutating AWS call.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Resources published at once.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--no-shared-cache", is_flag=True, help="Use only the local cache, even if cache_uri is set.")
@click.pass_context
def publish(
    ctx: click.Context,
    names: tuple[str, ...],
    stage: str,
    refresh: bool,
    profile: str | None,
    region: str | None,
    dry_run: bool,
    jobs: int,
    as_json: bool,
    no_shared_cache: bool,
) -> None:
    """Build what changed, then create or update in AWS exactly what `pkg plan --stage` lists (all, or NAMES)."""
    from packager.deploy.stage import open_stage_session, plan_stage, publish_stage, stage_lock
    from packager.shared import open_shared_cache

    started = time.perf_counter()
    ws = _workspace(ctx)
    ws.shared = open_shared_cache(ws, enabled=not no_shared_cache, warn=_warn, stage=stage, region=region)
    # Stage, credentials and account are checked before a possibly long build, not after it.
    aws = open_stage_session(ws, stage, profile, region, jobs)
    planned, todo = _build_step(ws, names, False, False, None, as_json)
    if ws.shared:
        ws.shared.pull()  # what teammates and CI already published, so it is not published again

    def progress(outcome) -> None:
        if not as_json and outcome.status == "done" and outcome.action.action != "skip":
            click.echo(f"done    {outcome.action.action:<30} {outcome.action.name}", err=True)

    outcomes = None
    with stage_lock(ws, stage):  # a concurrent publish of this stage waits, then plans from what this one recorded
        staged = plan_stage(ws, stage, planned, refresh=refresh, jobs=jobs, aws=aws)
        if not as_json:
            _echo_publish_plan(staged)
        if not dry_run and staged.plan.mutating_calls + sum(a.record is not None for a in staged.plan.actions):
            try:
                outcomes = publish_stage(ws, staged, jobs=jobs, on_done=progress)
            finally:  # share what AWS confirmed, even when a later step failed
                if ws.shared:
                    ws.shared.push()
        elif ws.shared and todo:
            ws.shared.push()
    if as_json:
        document = {
            "artifacts": [_artifact_json(item, ws.store) for item in planned],
            **_publish_document(staged, outcomes),
            "summary": {
                "built": len(todo),
                "cached": len(planned) - len(todo),
                "mutating_calls": staged.plan.mutating_calls,
                "dry_run": dry_run,
            },
        }
        _emit_json(document)
        return
    elapsed = time.perf_counter() - started
    verb = "planned (dry run)" if dry_run else "made"
    click.echo(
        f"{len(todo)} built, {staged.plan.mutating_calls} mutating AWS call{'s' * (staged.plan.mutating_calls != 1)}"
        f" {verb} in {elapsed:.2f} s"
    )


@cli.command()
@click.option("--stage", required=True, help="The stage whose layer versions and S3 artifacts are collected.")
@click.option("--keep", type=click.IntRange(0, 1000), default=3, show_default=True, help="Unused versions kept for rollback.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted, and why; delete nothing.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def gc(
    ctx: click.Context, stage: str, keep: int, dry_run: bool, profile: str | None, region: str | None, as_json: bool
) -> None:
    """Delete layer versions and S3 artifacts of a stage that nothing uses, beyond the newest --keep."""
    from packager.deploy.aws import open_session
    from packager.deploy.gc import execute_gc, plan_gc
    from packager.shared import open_shared_cache

    ws = _workspace(ctx)
    shared = open_shared_cache(ws, enabled=True, warn=_warn, stage=stage, region=region)
    if shared:
        shared.pull()  # what teammates published is in use too
    aws = open_session(stage, ws.config.stage(stage), profile, region)
    actions = plan_gc(aws, ws.config, stage, ws.store.index, keep)
    doomed = [action for action in actions if action.action != "keep"]
    deleted = 0 if dry_run else execute_gc(aws, doomed)
    if as_json:
        _emit_json(
            {
                "actions": [action.to_json() for action in actions],
                "summary": {"deleted": deleted, "to_delete": len(doomed), "kept": len(actions) - len(doomed)},
            }
        )
        return
    for action in actions:
        click.echo(f"{action.action:<22} {action.name}  ({action.reason})")
    verb = "would be deleted (dry run)" if dry_run else "deleted"
    click.echo(f"{len(doomed) if dry_run else deleted} {verb}, {len(actions) - len(doomed)} kept")


@cli.group()
def cache() -> None:
    """The local and the shared cache: verify and repair, pull, push, status."""


def _shared_sync(ctx: click.Context, stage: str | None, operation: str):
    """Run the shared cache's `pull` or `push` for a `pkg cache` command: (workspace, session, report)."""
    from cache.shared import SharedCacheError
    from packager.shared import open_shared_cache

    ws = _workspace(ctx)
    session = open_shared_cache(ws, enabled=True, warn=_warn, stage=stage)
    if session is None:
        raise PkgError(
            "no shared cache configured",
            hint='set cache_uri = "s3://bucket/prefix" in [tool.pkg] (or a stage), or PKG_CACHE_URI',
        )
    try:
        report = getattr(session.cache, operation)()
    except SharedCacheError as error:
        raise PkgError(str(error), hint="check credentials, the bucket and AWS_ENDPOINT_URL") from None
    return ws, session, report


@cache.command("pull")
@click.option("--stage", help="Use this stage's cache_uri, region and profile.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def cache_pull(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Merge the shared index into the local one (artifacts are fetched when a build needs them)."""
    ws, session, report = _shared_sync(ctx, stage, "pull")
    known = ws.store.index.count_remote_artifacts(session.uri)
    if as_json:
        _emit_json({"uri": session.uri, "changed": report.changed, "artifacts": known, "published": report.published})
    else:
        state = "pulled" if report.changed else "unchanged since the last pull"
        click.echo(f"{session.uri}: {state}; {known} artifacts shared, {report.published} publish records merged")


@cache.command("push")
@click.option("--stage", help="Use this stage's cache_uri, region and profile.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def cache_push(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Upload local artifacts the shared cache lacks, and merge the local index into the shared one."""
    _ws, session, report = _shared_sync(ctx, stage, "push")
    for warning in report.warnings:
        _warn(warning)
    if as_json:
        _emit_json(
            {"uri": session.uri, "uploaded": report.uploaded, "rows_added": report.rows_added, "attempts": report.attempts}
        )
    else:
        click.echo(
            f"{session.uri}: {len(report.uploaded)} artifacts uploaded, {report.rows_added} index rows added"
            f" ({report.attempts} attempt{'s' * (report.attempts != 1)})"
        )


@cache.command("status")
@click.option("--stage", help="Use this stage's cache_uri, region and profile.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def cache_status(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Compare the local cache with the shared one (pulls the shared index first)."""
    ws, session, _report = _shared_sync(ctx, stage, "pull")
    local = {record.input_hash for record in ws.store.index.all_artifacts()}
    shared = set(ws.store.index.remote_artifacts(session.uri, local)) if local else set()
    document = {
        "uri": session.uri,
        "local": len(local),
        "shared": ws.store.index.count_remote_artifacts(session.uri),
        "local_only": len(local - shared),
    }
    if as_json:
        _emit_json(document)
    else:
        click.echo(
            f"{session.uri}: {document['shared']} artifacts shared; {document['local']} local,"
            f" {document['local_only']} of them not shared yet" + (" (run `pkg cache push`)" if document["local_only"] else "")
        )


@cache.command("verify")
@click.option("--repair", is_flag=True, help="Drop rows whose file is missing or wrong, and delete orphan files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def cache_verify(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check every index row against its artifact file (present, size, sha256)."""
    from cache.store import verify

    ws = _workspace(ctx)
    report = verify(ws.store, repair=repair)
    if as_json:
        _emit_json(
            {"checked": report.checked, "problems": report.problems, "repaired": report.repaired, "ok": report.ok}
        )
    else:
        for problem in report.problems:
            fixed = " (repaired)" if problem in report.repaired else ""
            click.echo(f"{problem}{fixed}")
        click.echo(f"{report.checked} artifacts checked, {len(report.problems)} problems, {len(report.repaired)} repaired")
    if not report.ok:
        if not as_json:
            click.echo("hint: run `pkg cache verify --repair`; the next build rebuilds what was dropped", err=True)
        ctx.exit(1)


def _root(ctx: click.Context) -> str:
    from packager.repo import find_root

    root = ctx.obj["root"]
    return os.path.abspath(root) if root else find_root(os.getcwd())


@cli.group()
def env() -> None:
    """The dev environments: one conda env per service runtime (envs/*.yml)."""


@env.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def env_list(ctx: click.Context, as_json: bool) -> None:
    """List the envs, the service folders each serves, and whether it is created."""
    from packager.envs import list_envs

    rows, manager = list_envs(_root(ctx))
    if as_json:
        _emit_json(
            {
                "manager": {"kind": manager.kind, "exe": manager.exe} if manager else None,
                "envs": [row.as_json() for row in rows],
            }
        )
        return
    for row in rows:
        serves = ", ".join(f"src/{service}" for service in row.env.services) or "(the pkg tool)"
        state = f"created at {row.prefix}" if row.prefix else "not created"
        file_state = "" if row.file_state == "ok" else f"  [{row.file} {row.file_state}: run `pkg env write`]"
        click.echo(f"{row.env.name:<18} python {row.env.python:<5} {serves:<24} {state}{file_state}")
    if manager is None:
        click.echo("no micromamba/mamba/conda on PATH: envs can't be created or run here", err=True)


@env.command("write")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is missing or stale (for CI).")
@click.pass_context
def env_write(ctx: click.Context, check: bool) -> None:
    """Write envs/*.yml and the VS Code interpreter settings from the runtime table and src/."""
    from packager.envs import stale_files, write_files

    root = _root(ctx)
    if check:
        stale = stale_files(root)
        for path, state in stale.items():
            click.echo(f"{state:<8} {path}")
        if stale:
            raise PkgError(f"{len(stale)} dev-environment files out of date", hint="run `pkg env write`")
        click.echo("dev-environment files up to date")
        return
    written = write_files(root)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(written)} file{'s' * (len(written) != 1)} written")


@env.command("create")
@click.argument("name")
@click.option("--run", "run_it", is_flag=True, help="Run the command instead of printing it.")
@click.pass_context
def env_create(ctx: click.Context, name: str, run_it: bool) -> None:
    """Print (or --run) the command that creates or updates env NAME (an env or a service name)."""
    import subprocess

    from packager.envs import NO_MANAGER_HINT, EnvError, command_environment, create_command, shell_line

    root = _root(ctx)
    command, manager = create_command(root, name)
    if not run_it:
        click.echo(shell_line(root, command))
        if manager is None:
            click.echo("note: micromamba is not installed here; the command above is for where it is", err=True)
        return
    if manager is None:
        raise EnvError("no conda-compatible manager (micromamba, mamba, conda) on PATH", hint=NO_MANAGER_HINT)
    click.echo(f"running: {shell_line(root, command)}", err=True)
    code = subprocess.run(command, env=command_environment(root)).returncode
    if code:
        raise EnvError(f"{manager.kind} exited with code {code}", hint="see its output above")


@env.command("lock")
@click.argument("names", nargs=-1)
@click.option("--run", "run_it", is_flag=True, help="Run conda-lock instead of printing its commands.")
@click.pass_context
def env_lock(ctx: click.Context, names: tuple[str, ...], run_it: bool) -> None:
    """Make envs/NAME.conda-lock.yml for linux-64 and linux-aarch64 (all envs, or NAMES) with conda-lock."""
    import shlex
    import shutil
    import subprocess

    from packager.envs import lock_commands

    root = _root(ctx)
    commands = lock_commands(root, list(names))
    if not run_it:
        for command in commands:
            click.echo(shlex.join(command))
        return
    if shutil.which("conda-lock") is None:
        raise PkgError(
            "conda-lock is not on PATH", hint="pip install conda-lock (the pkg env has it), then run this again"
        )
    for command in commands:
        click.echo(f"running: {shlex.join(command)}", err=True)
        code = subprocess.run(command, cwd=root).returncode
        if code:
            raise PkgError(f"conda-lock exited with code {code}", hint="see its output above")


@env.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def env_run(ctx: click.Context, service: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in the env of SERVICE: pkg env run lambda -- python -m pytest tests/"""
    from packager.envs import run_in_env

    args = list(command[1:] if command[:1] == ("--",) else command)
    ctx.exit(run_in_env(_root(ctx), service, args))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--event", "event_path", help="Lambda: JSON file with the event ('-' reads stdin; default {}).")
@click.option("--stage", help="Apply this stage's settings (environment, memory, timeout, arguments).")
@click.option("--timeout", type=click.IntRange(1, 172800), help="Seconds before the run is stopped (default: its timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report (result, duration, interpreter).")
@click.option("--no-shared-cache", is_flag=True, help="Use only the local cache, even if cache_uri is set.")
@click.pass_context
def invoke(
    ctx: click.Context,
    target: str,
    args: tuple[str, ...],
    event_path: str | None,
    stage: str | None,
    timeout: int | None,
    as_json: bool,
    no_shared_cache: bool,
) -> None:
    """Run a function or job locally from its built artifacts, building them if needed.

    \b
    pkg invoke lambda/NAME --event event.json
    pkg invoke glue_python_shell/JOB -- --ARG value
    """
    from packager.invoke import invoke_glue_python_shell, invoke_lambda, load_event, parse_target
    from packager.shared import open_shared_cache

    service, name = parse_target(target)
    args = args[1:] if args[:1] == ("--",) else args
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    if service == "lambda":
        if args:
            raise PkgError(f"a Lambda function takes an event, not arguments: {' '.join(args)}", hint="pass --event FILE")
        event = load_event(event_path, stdin_text=lambda: click.get_text_stream("stdin").read())
    elif event_path:
        raise PkgError("a Glue job takes arguments, not an event", hint=f"pkg invoke {target} -- --ARG value")
    ws = _workspace(ctx)
    ws.shared = open_shared_cache(ws, enabled=not no_shared_cache, warn=_warn)
    if service == "lambda":
        outcome = invoke_lambda(ws, name, event, stage, timeout, on_output=log, on_warning=_warn, on_progress=log)
    else:
        printed = click.echo if not as_json else log
        outcome = invoke_glue_python_shell(
            ws, name, list(args), stage, timeout, on_output=log, on_stdout=printed, on_warning=_warn, on_progress=log
        )
    if as_json:
        _emit_json(
            {
                "target": outcome.target,
                "result": outcome.result,
                "duration_ms": outcome.duration_ms,
                "interpreter": {
                    "path": outcome.interpreter.path,
                    "source": outcome.interpreter.source,
                    "python": outcome.interpreter.version,
                },
                "built": outcome.built,
            }
        )
    elif service == "lambda":
        click.echo(json.dumps(outcome.result, indent=2))


@cli.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--stage", required=True, help="The stage whose published job to run.")
@click.option("--wait", is_flag=True, help="Wait until the run finishes (exit 1 if it failed).")
@click.option("--timeout", type=click.FloatRange(min=0), default=3600, show_default=True, help="Seconds --wait waits at most.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def run_command(ctx, job, args, stage, wait, timeout, profile, region, as_json) -> None:
    """Start a run of a published Glue or EMR JOB (<service>/<job>); ARGS after `--` go to the job.

    Glue: StartJobRun with ARGS as `--key value` Arguments. EMR: StartJobRun on the configured EMR
    Serverless application, or an AddJobFlowSteps step (command-runner.jar spark-submit) on the cluster.
    """
    from packager.deploy.run import run_job

    ws = _workspace(ctx)
    report = run_job(ws, stage, job, list(args), wait, timeout, profile, region)
    if as_json:
        _emit_json(report.to_json())
    else:
        verb = "ran" if wait else "started"
        click.echo(f"{verb} {report.platform} run {report.run_id} of {report.name}: {report.state}")
    if wait and report.state not in ("SUCCEEDED", "SUCCESS", "COMPLETED"):
        if not as_json:
            click.echo(f"error: {report.id} ended {report.state}", err=True)
        ctx.exit(1)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="pkg")
