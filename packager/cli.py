"""The `pkg` command line: options in, one call to packager.app, the report out through packager.render.

Nothing here imports boto3: `pkg --help` and `pkg build` must stay fast.
"""

from __future__ import annotations

import functools
import os

import click

from packager import DISTRIBUTION, __version__, app, render
from packager.errors import Interrupted, PkgError
from packager.units import parse_duration, parse_size


JSON_REQUESTED = "pkg.json"  # ctx.meta key (shared by every nested context): the command runs with --json


class PkgGroup(click.Group):
    """Turns a PkgError into one clean message, a hint and its exit code: no traceback for user mistakes.

    With `--json`, stdout gets the failure as one JSON object too (error, hint and what completed);
    Ctrl-C ends with one line and exit code 130.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `--json` anywhere before `--`: a usage error (an unknown option, a bad value) is answered in
        # JSON too, though click refuses the arguments before the --json option itself is read.
        if "--json" in args[: args.index("--") if "--" in args else len(args)]:
            ctx.meta[JSON_REQUESTED] = True
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as usage:  # the group's own options (`pkg --root MISSING publish --json`)
            if ctx.meta.get(JSON_REQUESTED, False):
                render.usage_error(usage.format_message(), usage.ctx.command_path if usage.ctx else "pkg")
            raise

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PkgError as failure:
            render.error(failure, as_json=ctx.meta.get(JSON_REQUESTED, False))
            ctx.exit(failure.exit_code)
        except click.UsageError as usage:  # a missing or bad option, once --json was read: answer in JSON too
            if ctx.meta.get(JSON_REQUESTED, False):
                render.usage_error(usage.format_message(), usage.ctx.command_path if usage.ctx else "pkg")
            raise
        except KeyboardInterrupt:  # outside a publish's executor, which turns it into Interrupted itself
            render.error(Interrupted(), as_json=ctx.meta.get(JSON_REQUESTED, False))
            ctx.exit(Interrupted.exit_code)


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[JSON_REQUESTED] = value
    return value


def _json_option(help_text: str = "Print one JSON object instead of text (on failure too: the error)."):
    """--json, remembered before anything else runs so that a failure is answered in JSON too."""
    return click.option(
        "--json", "as_json", is_flag=True, is_eager=True, callback=_remember_json, expose_value=True, help=help_text
    )


def _units(parse):
    """A click callback turning "30d" / "5GiB" into seconds / bytes with `parse` (None stays None)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return convert


_ALLOW_DELETE = click.option(
    "--allow-delete", is_flag=True, help="Delete even on a stage with deletion_protection = true."
)

_LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=click.FloatRange(0, 86400),
    default=300,
    show_default=True,
    help="Seconds to wait for the stage lock another publish or gc holds.",
)


@click.group(cls=PkgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    help="The pipelines repository (default: found by walking up from the current folder).",
)
@click.version_option(__version__, package_name=DISTRIBUTION, message="%(prog)s %(version)s (%(package)s)")
@click.pass_context
def cli(ctx: click.Context, root: str | None) -> None:
    """Build and publish AWS Lambda, Glue and EMR pipelines from one repository, rebuilding only what changed."""
    ctx.obj = {"root": root}


def _root(ctx: click.Context) -> str:
    from packager.repo import find_root

    root = ctx.obj["root"]
    return os.path.abspath(root) if root else find_root(os.getcwd())


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even what the cache already holds.")
@_json_option()
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
    report = app.build(
        _root(ctx),
        names,
        force=force,
        refresh_deps=refresh_deps,
        jobs=jobs,
        shared_cache=not no_shared_cache,
        warn=render.warn,
        progress=render.StderrProgress(quiet=as_json),
    )
    render.build(report, as_json)


def _stage_options(command):
    """--refresh, --profile, --region: against what a publish is planned."""
    for option in reversed(
        [
            click.option("--refresh", is_flag=True, help="Compare with the live functions too, and report drift."),
            click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain)."),
            click.option("--region", help="AWS region (default: the stage's)."),
        ]
    ):
        command = option(command)
    return command


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Plan as if nothing were cached.")
@_ALLOW_DELETE
@click.option("--stage", help="Also plan the publish to this stage: every AWS call, and why.")
@_stage_options
@_json_option()
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
    allow_delete: bool,
) -> None:
    """Say what `pkg build` would build, and with --stage what `pkg publish` would do, and why."""
    report = app.plan(
        _root(ctx),
        names,
        force=force,
        stage=stage,
        refresh=refresh,
        profile=profile,
        region=region,
        warn=render.warn,
        progress=render.StderrProgress(quiet=as_json),
        allow_delete=allow_delete,
    )
    render.plan(report, as_json)


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--stage", required=True, help="The stage to publish to ([tool.pkg.stages.NAME]).")
@_stage_options
@click.option("--dry-run", is_flag=True, help="Build and print the plan, then stop: no mutating AWS call.")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Resources published at once."
)
@_LOCK_TIMEOUT
@_json_option()
@click.option("--no-shared-cache", is_flag=True, help="Use only the local cache, even if cache_uri is set.")
@_ALLOW_DELETE
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
    lock_timeout: float,
    as_json: bool,
    no_shared_cache: bool,
    allow_delete: bool,
) -> None:
    """Build what changed, then create, update or delete in AWS exactly what `pkg plan --stage` lists (all, or NAMES).

    A publish of the whole tree deletes the functions and Glue jobs whose source was removed.
    """
    report = app.publish(
        _root(ctx),
        stage,
        names,
        refresh=refresh,
        profile=profile,
        region=region,
        dry_run=dry_run,
        jobs=jobs,
        shared_cache=not no_shared_cache,
        warn=render.warn,
        progress=render.StderrProgress(quiet=as_json),
        on_planned=None if as_json else render.publish_plan,
        on_done=None if as_json else render.publish_done,
        lock_timeout=lock_timeout,
        allow_delete=allow_delete,
    )
    render.publish(report, as_json)


@cli.command()
@click.option(
    "--stage",
    help="The stage whose layer versions and S3 artifacts are collected (with --shared: whose cache_uri is used).",
)
@click.option(
    "--keep", type=click.IntRange(0, 1000), default=3, show_default=True, help="Unused versions kept for rollback."
)
@click.option("--shared", is_flag=True, help="Collect the shared cache's artifacts instead (see --grace).")
@click.option(
    "--grace",
    metavar="AGE",
    default="7d",
    show_default=True,
    callback=_units(parse_duration),
    help="With --shared: never delete an object younger than this.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be deleted, and why; delete nothing.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_LOCK_TIMEOUT
@_json_option()
@click.pass_context
def gc(
    ctx: click.Context,
    stage: str | None,
    keep: int,
    shared: bool,
    grace: float,
    dry_run: bool,
    profile: str | None,
    region: str | None,
    lock_timeout: float,
    as_json: bool,
) -> None:
    """Delete layer versions and S3 artifacts of a stage that nothing uses, beyond the newest --keep;
    with --shared, the shared cache's artifacts no stage nor the current tree uses."""
    if shared:
        render.gc_shared(app.gc_shared(_root(ctx), stage, grace, dry_run, warn=render.warn), as_json)
        return
    if stage is None:
        raise click.UsageError("Missing option '--stage' (or pass --shared).")
    report = app.gc(
        _root(ctx),
        stage,
        keep=keep,
        dry_run=dry_run,
        profile=profile,
        region=region,
        warn=render.warn,
        note=render.say,
        lock_timeout=lock_timeout,
    )
    render.gc(report, as_json)


@cli.command()
@click.option("--stage", required=True, help="The stage to destroy ([tool.pkg.stages.NAME]).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed off a terminal).")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted, and why; delete nothing.")
@_ALLOW_DELETE
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Resources deleted at once."
)
@_LOCK_TIMEOUT
@_json_option()
@click.pass_context
def destroy(
    ctx: click.Context,
    stage: str,
    yes: bool,
    dry_run: bool,
    allow_delete: bool,
    profile: str | None,
    region: str | None,
    jobs: int,
    lock_timeout: float,
    as_json: bool,
) -> None:
    """Delete every function, layer version, Glue job, S3 object and record of one stage (and nothing of another)."""
    report = app.destroy(
        _root(ctx),
        stage,
        dry_run=dry_run,
        allow_delete=allow_delete,
        profile=profile,
        region=region,
        jobs=jobs,
        warn=render.warn,
        note=render.say,
        lock_timeout=lock_timeout,
        confirm=lambda staged: yes or render.confirm_destroy(staged),
        on_planned=None if as_json else render.destroy_plan,
        on_done=None if as_json else render.publish_done,
    )
    render.destroy(report, as_json)


@cli.command()
@click.option("--stage", required=True, help="The stage whose lock is broken.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_json_option()
@click.pass_context
def unlock(ctx: click.Context, stage: str, yes: bool, profile: str | None, region: str | None, as_json: bool) -> None:
    """Break a stage's lock whose holder is gone (a killed CI runner): shows the holder, asks, deletes the lock."""
    report = app.unlock(
        _root(ctx), stage, profile=profile, region=region, confirm=lambda found: yes or render.confirm_unlock(found)
    )
    render.unlock(report, as_json)


@cli.command()
@click.option("--stage", required=True, help="The stage whose releases to list.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_json_option()
@click.pass_context
def history(ctx: click.Context, stage: str, profile: str | None, region: str | None, as_json: bool) -> None:
    """List a stage's releases: who published what, when, from which commit."""
    render.history(app.history(_root(ctx), stage, profile=profile, region=region, warn=render.warn), as_json)


@cli.command()
@click.argument("old")
@click.argument("new", required=False)
@click.option("--stage", required=True, help="The stage whose releases to compare.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_json_option()
@click.pass_context
def diff(
    ctx: click.Context, old: str, new: str | None, stage: str, profile: str | None, region: str | None, as_json: bool
) -> None:
    """Say what changed from release OLD to NEW (default: the current one): functions, layers, jobs, settings."""
    report = app.diff(_root(ctx), stage, old, new, profile=profile, region=region, warn=render.warn)
    render.diff(report, as_json)


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--stage", required=True, help="The stage to roll back.")
@click.option("--to", "to", help="The release to go back to (default: the one before the current).")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Resources moved at once."
)
@_LOCK_TIMEOUT
@_json_option()
@click.pass_context
def rollback(
    ctx: click.Context,
    names: tuple[str, ...],
    stage: str,
    to: str | None,
    profile: str | None,
    region: str | None,
    jobs: int,
    lock_timeout: float,
    as_json: bool,
) -> None:
    """Point a stage's aliases, Glue jobs and EMR runs back at what a release ran (all, or NAMES): no build."""
    report = app.rollback(
        _root(ctx),
        stage,
        to,
        names,
        profile=profile,
        region=region,
        jobs=jobs,
        warn=render.warn,
        note=render.say,
        lock_timeout=lock_timeout,
    )
    render.rollback(report, as_json)


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--from", "source", required=True, help="The stage whose current release is promoted.")
@click.option("--to", "stage", required=True, help="The stage that gets the same artifacts.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed off a terminal).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--profile", help="AWS profile of the --to stage (default: its own, or boto3's usual chain).")
@click.option("--region", help="AWS region of the --to stage (default: its own).")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Resources changed at once."
)
@_LOCK_TIMEOUT
@_json_option()
@click.pass_context
def promote(
    ctx: click.Context,
    names: tuple[str, ...],
    source: str,
    stage: str,
    yes: bool,
    dry_run: bool,
    profile: str | None,
    region: str | None,
    jobs: int,
    lock_timeout: float,
    as_json: bool,
) -> None:
    """Deploy to one stage exactly the artifacts another stage's current release runs (all, or NAMES): no build."""
    report = app.promote(
        _root(ctx),
        source,
        stage,
        names,
        dry_run=dry_run,
        profile=profile,
        region=region,
        jobs=jobs,
        warn=render.warn,
        note=render.say,
        lock_timeout=lock_timeout,
        confirm=lambda staged: yes or render.confirm_promote(staged),
        on_planned=None if as_json else functools.partial(render.publish_plan, heading=f"promote {source} to"),
        on_done=None if as_json else render.publish_done,
    )
    render.promote(report, as_json)


@cli.group()
def cache() -> None:
    """The local and the shared cache: verify and repair, pull, push, status."""


_CACHE_STAGE = click.option("--stage", help="Use this stage's cache_uri, region and profile.")
_JSON = _json_option()


@cache.command("pull")
@_CACHE_STAGE
@_JSON
@click.pass_context
def cache_pull(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Merge the shared index into the local one (artifacts are fetched when a build needs them)."""
    render.cache_pull(app.cache_pull(_root(ctx), stage, warn=render.warn), as_json)


@cache.command("push")
@_CACHE_STAGE
@_JSON
@click.pass_context
def cache_push(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Upload local artifacts the shared cache lacks, and merge the local index into the shared one."""
    render.cache_push(app.cache_push(_root(ctx), stage, warn=render.warn), as_json)


@cache.command("status")
@_CACHE_STAGE
@_JSON
@click.pass_context
def cache_status(ctx: click.Context, stage: str | None, as_json: bool) -> None:
    """Compare the local cache with the shared one (pulls the shared index first)."""
    render.cache_status(app.cache_status(_root(ctx), stage, warn=render.warn), as_json)


@cache.command("verify")
@click.option("--repair", is_flag=True, help="Drop rows whose file is missing or wrong, and delete orphan files.")
@_JSON
@click.pass_context
def cache_verify(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check every index row against its artifact file (present, size, sha256)."""
    report = app.cache_verify(_root(ctx), repair=repair)
    render.cache_verify(report, as_json)
    if not report.ok:
        ctx.exit(1)


@cache.command("prune")
@click.option(
    "--older-than",
    metavar="AGE",
    callback=_units(parse_duration),
    help="Remove what was last used longer ago than AGE (30d, 12h). Default 30d without --max-size.",
)
@click.option(
    "--max-size",
    metavar="SIZE",
    callback=_units(parse_size),
    help="Then remove the least recently used until the cache is at most SIZE (5GiB, 500MB).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be removed; remove nothing.")
@_JSON
@click.pass_context
def cache_prune(
    ctx: click.Context, older_than: float | None, max_size: int | None, dry_run: bool, as_json: bool
) -> None:
    """Remove local artifacts and dependency installs the current tree doesn't need, least recently used first."""
    render.cache_prune(app.cache_prune(_root(ctx), older_than, max_size, dry_run), as_json)


@cli.group()
def env() -> None:
    """The dev environments: one conda env per service runtime (envs/*.yml)."""


@env.command("list")
@_json_option()
@click.pass_context
def env_list(ctx: click.Context, as_json: bool) -> None:
    """List the envs, the service folders each serves, and whether it is created."""
    from packager.envs import list_envs

    rows, manager = list_envs(_root(ctx))
    render.env_list(rows, manager, as_json)


@env.command("write")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is missing or stale (for CI).")
@_json_option()
@click.pass_context
def env_write(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Write envs/*.yml and the VS Code interpreter settings from the runtime table and src/."""
    from packager.envs import stale_files, write_files

    root = _root(ctx)
    if check:
        stale = stale_files(root)
        render.env_stale(stale, as_json)
        if stale:
            failure = PkgError(f"{len(stale)} dev-environment files out of date", hint="run `pkg env write`")
            failure.completed = {"stale": stale}
            raise failure
        return
    render.env_written(write_files(root), as_json)


@env.command("create")
@click.argument("name")
@click.option("--run", "run_it", is_flag=True, help="Run the command instead of printing it.")
@_json_option()
@click.pass_context
def env_create(ctx: click.Context, name: str, run_it: bool, as_json: bool) -> None:
    """Print (or --run) the command that creates or updates env NAME (an env or a service name)."""
    command = app.env_create(_root(ctx), name, run=run_it, say=render.say, output_to_stderr=as_json)
    render.env_command(command, run_it, as_json)


@env.command("lock")
@click.argument("names", nargs=-1)
@click.option("--run", "run_it", is_flag=True, help="Run conda-lock instead of printing its commands.")
@_json_option()
@click.pass_context
def env_lock(ctx: click.Context, names: tuple[str, ...], run_it: bool, as_json: bool) -> None:
    """Make envs/NAME.conda-lock.yml for linux-64 and linux-aarch64 (all envs, or NAMES) with conda-lock."""
    commands = app.env_lock(_root(ctx), names, run=run_it, say=render.say, output_to_stderr=as_json)
    render.env_lock(commands, run_it, as_json)


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
@click.option(
    "--timeout", type=click.IntRange(1, 172800), help="Seconds before the run is stopped (default: its timeout)."
)
@_json_option("Print a JSON report (result, duration, interpreter); on failure, the error.")
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
    from packager.invoke import load_event, parse_target

    service, name = parse_target(target)
    args = args[1:] if args[:1] == ("--",) else args
    event: object = None
    if service == "lambda":
        if args:
            raise PkgError(
                f"a Lambda function takes an event, not arguments: {' '.join(args)}", hint="pass --event FILE"
            )
        event = load_event(event_path)  # "-": sys.stdin
    elif event_path:
        raise PkgError("a Glue job takes arguments, not an event", hint=f"pkg invoke {target} -- --ARG value")
    outcome = app.invoke(
        _root(ctx),
        service,
        name,
        event=event,
        args=args,
        stage=stage,
        timeout=timeout,
        shared_cache=not no_shared_cache,
        on_output=render.say,
        on_stdout=render.say if as_json else click.echo,
        warn=render.warn,
        on_progress=render.say,
    )
    render.invoke(outcome, as_json, show_result=service == "lambda")


@cli.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--stage", required=True, help="The stage whose published job to run.")
@click.option("--wait", is_flag=True, help="Wait until the run finishes (exit 1 if it failed).")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=3600, show_default=True, help="Seconds --wait waits at most."
)
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_json_option()
@click.pass_context
def run_command(
    ctx: click.Context,
    job: str,
    args: tuple[str, ...],
    stage: str,
    wait: bool,
    timeout: float,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Start a run of a published Glue or EMR JOB (<service>/<job>); ARGS after `--` go to the job.

    Glue: StartJobRun with ARGS as `--key value` Arguments. EMR: StartJobRun on the configured EMR
    Serverless application, or an AddJobFlowSteps step (command-runner.jar spark-submit) on the cluster.
    """
    report = app.run(
        _root(ctx), stage, job, args, wait, timeout, profile=profile, region=region, on_state=render.run_state
    )
    succeeded = report.state in app.RUN_SUCCEEDED
    render.run(report, wait, succeeded, as_json)
    if wait and not succeeded:
        ctx.exit(1)


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--project", help="The project name that starts every AWS name (default: the folder's name).")
@_json_option()
def init(folder: str, project: str | None, as_json: bool) -> None:
    """Start a pipelines repository in FOLDER (default: here): [tool.pkg], one example per service, envs, CI.

    Never overwrites: if any file it would write exists, it lists them and writes nothing.
    """
    from packager.scaffold import init as scaffold_init

    render.init(scaffold_init(folder, project), as_json)


@cli.command()
@click.option("--stage", required=True, help="The stage whose functions and jobs to show.")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=8, show_default=True, help="Reads made at once.")
@_json_option()
@click.pass_context
def status(
    ctx: click.Context, stage: str, profile: str | None, region: str | None, jobs: int, as_json: bool
) -> None:
    """Each function and job of a stage: code hash, last change, drift from what pkg published, last run."""
    report = app.status(_root(ctx), stage, profile=profile, region=region, jobs=jobs, warn=render.warn)
    render.status(report, as_json)


@cli.command()
@click.argument("target")
@click.option("--stage", required=True, help="The stage whose function or job to read.")
@click.option("--since", help="From when: 30s, 15m, 1h, 2d or an ISO time (default: 10m; a Glue run: all of it).")
@click.option("--follow", "-f", is_flag=True, help="Keep polling for new events until Ctrl-C.")
@click.option("--run", "run_id", help="Glue: the run to read (default: the newest).")
@click.option("--profile", help="AWS profile (default: the stage's, or boto3's usual chain).")
@click.option("--region", help="AWS region (default: the stage's).")
@_json_option("One JSON object per event, one a line (on failure: the error object).")
@click.pass_context
def logs(
    ctx: click.Context,
    target: str,
    stage: str,
    since: str | None,
    follow: bool,
    run_id: str | None,
    profile: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """CloudWatch Logs of a function (lambda/NAME) or a Glue run (glue_python_shell/JOB, glue_spark/JOB), by time."""
    try:
        app.logs(
            _root(ctx),
            target,
            stage,
            since=since,
            follow=follow,
            run_id=run_id,
            profile=profile,
            region=region,
            on_event=lambda event: render.log_event(event, as_json),
        )
    except BrokenPipeError:  # `pkg logs ... | head`: the reader has what it wanted, which is no error
        import sys

        # Python flushes stdout at exit: into /dev/null, not into the closed pipe (a second error).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="pkg")
