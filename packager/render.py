"""How the CLI shows pkg's reports: text lines or one JSON object on stdout, progress and warnings on stderr.

Every byte count goes through `packager.units.format_size`. JSON is indented on a terminal and
compact on a pipe (json's C encoder only runs without indent, and a 3000-artifact report is most of
a no-op's time otherwise).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import click

from packager.errors import PkgError
from packager.units import format_size

if TYPE_CHECKING:
    from cache.remote import SharedGcReport
    from cache.store import VerifyReport
    from packager.app import BuildReport, OnBuilt
    from packager.deploy.destroy import StageDestroyPlan
    from packager.deploy.executor import Outcome
    from packager.deploy.lease import UnlockReport
    from packager.deploy.logs import LogEvent
    from packager.deploy.run import RunReport
    from packager.deploy.stage import StagePlan
    from packager.envs import EnvManager, EnvStatus
    from packager.invoke import InvokeResult
    from packager.scaffold import InitReport
    from packager.prune import PruneReport
    from packager.reports import (
        CachePullReport,
        CachePushReport,
        CacheStatusReport,
        DestroyReport,
        EnvCommand,
        GcReport,
        PlanReport,
        PublishReport,
        StatusReport,
        PromoteReport,
    )
    from packager.reports import DiffReport, HistoryReport, RollbackReport


def emit_json(document: dict) -> None:
    """One JSON object on stdout: indented for a terminal, compact for a pipe."""
    click.echo(json.dumps(document, indent=2 if sys.stdout.isatty() else None))


def warn(message: str) -> None:
    """A warning line on stderr."""
    click.echo(f"warning: {message}", err=True)


def say(message: str) -> None:
    """A line for people on stderr, so --json output stays one object on stdout."""
    click.echo(message, err=True)


def color() -> bool | None:
    """False when NO_COLOR is set and not empty (https://no-color.org); None lets click decide (a terminal)."""
    return False if os.environ.get("NO_COLOR") else None


def error(failure: PkgError, as_json: bool = False) -> None:
    """A PkgError as `error: ...` and `hint: ...` on stderr; with `as_json` also as one JSON object on stdout."""
    if as_json:
        emit_json(failure.to_json())
    click.secho(f"error: {failure.message}", err=True, fg="red", color=color())
    if failure.hint:
        click.echo(f"hint: {failure.hint}", err=True)


def usage_error(message: str, command_path: str) -> None:
    """A usage error as `--json` answers it (click then prints its own usage lines on stderr)."""
    emit_json({"error": message, "hint": f"see `{command_path} --help`", "type": "UsageError"})


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


class StderrProgress:
    """Long work on stderr: dependency installs line by line, builds as a bar on a terminal."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet  # --json: no "building N artifacts..." line on a pipe

    def note(self, message: str) -> None:
        """A line about slow work in progress."""
        say(message)

    @contextmanager
    def building(self, count: int) -> Iterator[OnBuilt]:
        """A progress bar over `count` builds on a terminal; elsewhere one line (unless quiet)."""
        if count and sys.stderr.isatty():
            with click.progressbar(length=count, label="building", file=sys.stderr, show_pos=True) as bar:
                yield lambda item: bar.update(1)
            return
        if count and not self.quiet:
            say(f"building {_plural(count, 'artifact')}...")
        yield lambda item: None


def build(report: BuildReport, as_json: bool) -> None:
    """`pkg build`: one line per artifact built, then the counts and the time."""
    if as_json:
        emit_json(report.to_json())
        return
    for item in report.built:
        size = format_size(item.record.size if item.record else None)
        click.echo(f"built   {item.spec.id:<48} {size:>9}  ({item.reason})")
    click.echo(f"{len(report.built)} built, {report.cached} cached in {report.elapsed:.2f} s")


def _stage_document(staged: StagePlan, outcomes: list[Outcome] | None = None) -> dict:
    plan = staged.plan
    actions = [outcome.to_json() for outcome in outcomes] if outcomes else [a.to_json() for a in plan.actions]
    return {
        "stage": plan.target.stage,
        "account": plan.target.account,
        "region": plan.target.region,
        "actions": actions,
        "drift": [drift.to_json() for drift in plan.drift],
    }


def plan(report: PlanReport, as_json: bool) -> None:
    """`pkg plan`: what would be built and why, then (with a stage) every AWS call of the publish."""
    planned, staged = report.planned, report.staged
    if as_json:
        summary: dict = {"build": report.to_build, "cached": len(planned) - report.to_build}
        document: dict = {
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
            document.update(_stage_document(staged))
            summary["mutating_calls"] = staged.plan.mutating_calls
            document["summary"] = document.pop("summary")  # last, after the actions
        emit_json(document)
        return
    for item in planned:
        if item.to_build:  # the cached ones are counted below (`--json` lists every one)
            click.echo(f"{item.status:<7} {item.spec.id:<48} {item.reason}")
    click.echo(f"{report.to_build} to build, {len(planned) - report.to_build} cached")
    if staged:
        publish_plan(staged)


def publish_plan(staged: StagePlan, heading: str = "publish to") -> None:
    """The publish plan of a stage as text: a line per step that changes or records something, the
    others counted, drift on stderr, the mutating calls."""
    from packager.deploy.actions import SKIP

    target = staged.plan.target
    click.echo(f"{heading} stage {target.stage} (account {target.account}, {target.region}):")
    # What changes, is recorded (an adoption) or left to the user; what is as wanted is counted, as Terraform does.
    shown = [a for a in staged.plan.actions if a.kind is not SKIP or a.record is not None or a.notice]
    for action in shown:
        line = action.to_json()
        click.echo(f"  {line['action']:<30} {line['name']:<48}  {line['reason']}")  # an S3 URI may fill its column
    if len(shown) < len(staged.plan.actions):
        click.echo(f"  {len(staged.plan.actions) - len(shown)} up to date (`--json` lists every step)")
    for drift in staged.plan.drift:
        click.echo(f"  drift: {drift.name}: {drift.field} differs from what pkg published", err=True)
    click.echo(_plural(staged.plan.mutating_calls, "mutating AWS call"))


def publish_done(outcome: Outcome) -> None:
    """One confirmed AWS step on stderr as it completes (skips are not steps)."""
    kind = str(outcome.action.kind)
    if outcome.status == "done" and kind != "skip":
        click.echo(f"done    {kind:<30} {outcome.action.name}", err=True)


def publish(report: PublishReport, as_json: bool) -> None:
    """`pkg publish`: the report (the plan was printed before execution), or one JSON object."""
    staged = report.staged
    if as_json:
        emit_json(
            {
                "artifacts": report.artifacts,
                **_stage_document(staged, report.outcomes),
                "release": report.release,
                "summary": {
                    "built": len(report.built),
                    "cached": len(report.artifacts) - len(report.built),
                    "mutating_calls": staged.plan.mutating_calls,
                    "dry_run": report.dry_run,
                },
            }
        )
        return
    verb = "planned (dry run)" if report.dry_run else "made"
    click.echo(
        f"{len(report.built)} built, {_plural(staged.plan.mutating_calls, 'mutating AWS call')}"
        f" {verb} in {report.elapsed:.2f} s"
    )
    if report.release is not None:
        click.echo(f"release {report.release} of stage {staged.plan.target.stage} recorded (`pkg history`)")


def gc(report: GcReport, as_json: bool) -> None:
    """`pkg gc`: every candidate kept or deleted, and why."""
    if as_json:
        emit_json(
            {
                "actions": [action.to_json() for action in report.actions],
                "summary": {"deleted": report.deleted, "to_delete": len(report.doomed), "kept": report.kept},
            }
        )
        return
    for action in report.actions:
        click.echo(f"{str(action.kind):<22} {action.name}  ({action.reason})")
    verb = "would be deleted (dry run)" if report.dry_run else "deleted"
    click.echo(f"{len(report.doomed) if report.dry_run else report.deleted} {verb}, {report.kept} kept")


def destroy_plan(staged: StageDestroyPlan) -> None:
    """The destroy plan of a stage as text: one line per deletion or kept resource, then the count."""
    target = staged.plan.target
    click.echo(f"destroy stage {target.stage} (account {target.account}, {target.region}):")
    for action in staged.plan.actions:
        click.echo(f"  {action.kind.value:<22} {action.name:<48} {action.reason}")
    click.echo(_plural(len(staged.deletions), "deletion"))
    if staged.protected:
        click.echo(f"stage {target.stage} has deletion_protection = true: destroying it needs --allow-delete")


def confirm_destroy(staged: StageDestroyPlan) -> bool:
    """Ask on a terminal before destroying a stage; off a terminal (no --yes) the answer is no."""
    if not sys.stdin.isatty():
        say("not a terminal: pass --yes to destroy the stage")
        return False
    stage = staged.plan.target.stage
    return click.confirm(f"delete these {len(staged.deletions)} resources of stage {stage}?", default=False, err=True)


def destroy(report: DestroyReport, as_json: bool) -> None:
    """`pkg destroy`: the report (the plan was printed before), or one JSON object."""
    if as_json:
        emit_json(report.to_json())
        return
    if report.dry_run:
        click.echo(f"{len(report.staged.deletions)} would be deleted (dry run)")
    else:
        click.echo(f"{report.deleted} deleted")


def confirm_unlock(report: UnlockReport) -> bool:
    """Ask on a terminal before breaking a lock; off a terminal (no --yes) the answer is no."""
    say(f"the {report.stage} lock ({report.location}) is held by {report.holder}")
    if not sys.stdin.isatty():
        say("not a terminal: pass --yes to break it")
        return False
    return click.confirm("break it?", default=False, err=True)


def unlock(report: UnlockReport, as_json: bool) -> None:
    """`pkg unlock`: who held the lock, and whether it is gone."""
    if as_json:
        emit_json(report.to_json())
    elif report.holder is None:
        click.echo(f"the {report.stage} lock is not held ({report.location})")
    elif report.removed:
        click.echo(f"removed the {report.stage} lock held by {report.holder}")
    else:
        click.echo(f"the {report.stage} lock held by {report.holder} is left in place")


def cache_pull(report: CachePullReport, as_json: bool) -> None:
    """`pkg cache pull`."""
    if as_json:
        emit_json(
            {"uri": report.uri, "changed": report.changed, "artifacts": report.artifacts, "published": report.published}
        )
        return
    state = "pulled" if report.changed else "unchanged since the last pull"
    click.echo(f"{report.uri}: {state}; {report.artifacts} artifacts shared, {report.published} publish records merged")


def cache_push(report: CachePushReport, as_json: bool) -> None:
    """`pkg cache push`."""
    if as_json:
        emit_json(
            {
                "uri": report.uri,
                "uploaded": report.uploaded,
                "rows_added": report.rows_added,
                "attempts": report.attempts,
            }
        )
        return
    click.echo(
        f"{report.uri}: {len(report.uploaded)} artifacts uploaded, {report.rows_added} index rows added"
        f" ({_plural(report.attempts, 'attempt')})"
    )


def cache_status(report: CacheStatusReport, as_json: bool) -> None:
    """`pkg cache status`."""
    if as_json:
        emit_json(report.to_json())
        return
    push = " (run `pkg cache push`)" if report.local_only else ""
    click.echo(
        f"{report.uri}: {report.shared} artifacts shared; {report.local} local,"
        f" {report.local_only} of them not shared yet{push}"
    )


def cache_verify(report: VerifyReport, as_json: bool) -> None:
    """`pkg cache verify`: each problem (and whether it was repaired), the counts, a hint when not ok."""
    if as_json:
        problems, repaired = report.problems, report.repaired
        emit_json({"checked": report.checked, "problems": problems, "repaired": repaired, "ok": report.ok})
        return
    for problem in report.problems:
        fixed = " (repaired)" if problem in report.repaired else ""
        click.echo(f"{problem}{fixed}")
    click.echo(f"{report.checked} artifacts checked, {len(report.problems)} problems, {len(report.repaired)} repaired")
    if not report.ok:
        say("hint: run `pkg cache verify --repair`; the next build rebuilds what was dropped")


def gc_shared(report: SharedGcReport, as_json: bool) -> None:
    """`pkg gc --shared`: each object deleted (or to delete), then what was kept and why."""
    if as_json:
        emit_json(
            {
                "deleted": [{"key": obj.key, "size": obj.size} for obj in report.deleted],
                "summary": {
                    "deleted": len(report.deleted),
                    "freed": sum(obj.size for obj in report.deleted),
                    "in_use": report.in_use,
                    "young": report.young,
                    "ignored": report.ignored,
                    "rows_removed": report.rows_removed,
                    "dry_run": report.dry_run,
                },
            }
        )
        return
    verb = "would delete" if report.dry_run else "deleted"
    for obj in report.deleted:
        click.echo(f"{verb:<12} {obj.key}  ({format_size(obj.size)})")
    click.echo(
        f"{len(report.deleted)} {verb.split()[-1]}{' (dry run)' if report.dry_run else ''},"
        f" {format_size(sum(obj.size for obj in report.deleted))}; kept {report.in_use} in use,"
        f" {report.young} younger than the grace period"
    )


def cache_prune(report: PruneReport, as_json: bool) -> None:
    """`pkg cache prune`: each entry removed (least recently used first), then the sizes."""
    if as_json:
        emit_json(report.to_json())
        return
    verb = "would remove" if report.dry_run else "removed"
    for entry in report.removed:
        used = time.strftime("%Y-%m-%d", time.localtime(entry.last_used))
        click.echo(f"{verb:<12} {entry.relpath:<60} {format_size(entry.size):>10}  (last used {used})")
    click.echo(
        f"{len(report.removed)} {verb.split()[-1]}{' (dry run)' if report.dry_run else ''},"
        f" {report.kept} kept ({report.needed} needed by the current tree):"
        f" {format_size(report.size_before)} -> {format_size(report.size_after)}"
    )


def invoke(outcome: InvokeResult, as_json: bool, show_result: bool) -> None:
    """`pkg invoke`: the JSON report, or a Lambda handler's result (`show_result`) as indented JSON."""
    if as_json:
        emit_json(
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
    elif show_result:
        click.echo(json.dumps(outcome.result, indent=2))


def run_state(report: RunReport) -> None:
    """A waited run as it goes, on stderr: its id once started, then each state change."""
    say(f"{report.id} run {report.run_id}: {report.state}")


def run(report: RunReport, wait: bool, succeeded: bool, as_json: bool) -> None:
    """`pkg run`: the run started (or ended), and an error line when a waited run failed."""
    if as_json:
        emit_json(report.to_json())
        return
    verb = "ran" if wait else "started"
    click.echo(f"{verb} {report.platform} run {report.run_id} of {report.name}: {report.state}")
    if wait and not succeeded:
        click.echo(f"error: {report.id} ended {report.state}", err=True)


def env_list(rows: list[EnvStatus], manager: EnvManager | None, as_json: bool) -> None:
    """`pkg env list`: each env, the service folders it serves, and whether it is created."""
    if as_json:
        emit_json(
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
        say("no micromamba/mamba/conda on PATH: envs can't be created or run here")


def env_stale(stale: dict[str, str], as_json: bool) -> None:
    """`pkg env write --check`: each file out of date and how, or that all are up to date."""
    if as_json:
        if not stale:  # a stale file is a failure: the error object lists them
            emit_json({"stale": {}})
        return
    for path, state in stale.items():
        click.echo(f"{state:<8} {path}")
    if not stale:
        click.echo("dev-environment files up to date")


def env_written(written: list[str], as_json: bool) -> None:
    """`pkg env write`: each file written, and how many."""
    if as_json:
        emit_json({"written": written})
        return
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{_plural(len(written), 'file')} written")


def env_command(command: EnvCommand, ran: bool, as_json: bool) -> None:
    """`pkg env create`: the command to run (unless it ran), with a note when no manager is here to run it."""
    if as_json:
        emit_json({"command": command.line, "manager_found": command.manager_found, "ran": ran})
        return
    if ran:
        return
    click.echo(command.line)
    if not command.manager_found:
        say("note: micromamba is not installed here; the command above is for where it is")


def env_lock(commands: list[str], ran: bool, as_json: bool) -> None:
    """`pkg env lock`: the conda-lock commands (unless they ran)."""
    if as_json:
        emit_json({"commands": commands, "ran": ran})
    elif not ran:
        lines(commands)


def lines(texts: list[str]) -> None:
    """Plain lines on stdout."""
    for text in texts:
        click.echo(text)


def init(report: InitReport, as_json: bool) -> None:
    """`pkg init`: the project name and where it came from, each file written, what to run next."""
    from packager.scaffold import ProjectSource
    if as_json:
        emit_json(report.as_json())
        return
    if report.project_from is ProjectSource.FOLDER:
        click.echo(f"project: {report.project} (the folder's name; `pkg init --project NAME` sets another)")
    else:
        click.echo(f"project: {report.project} (from --project)")
    for path in report.written:
        click.echo(f"wrote {path}")
    click.echo(f"{_plural(len(report.written), 'file')} written in {report.root}")
    click.echo("next: pkg build, then pkg invoke lambda/hello; before `pkg publish --stage dev`, set your account,")
    click.echo("roles and bucket in pyproject.toml (pkg's docs/getting-started.md)")


def _short_code(code: str) -> str:
    """A CodeSha256 or a script's content-addressed S3 location, short enough for a status line."""
    if code.startswith("s3://"):
        folder, _, filename = code.rpartition("/")
        digest = folder.rpartition("/")[2]
        return f"{digest[:12]}…/{filename}" if len(digest) == 64 else code
    return code[:12] + "…"


def duration(seconds: float) -> str:
    """`12.3 s`, `4m05s`, `2h03m`: a run's length at a glance."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _when(timestamp: str | None) -> str:
    """An ISO 8601 time as `2026-03-01T11:00:00Z` (AWS and pkg's rows write it several ways); else as given."""
    from datetime import datetime, timezone

    if not timestamp:
        return "-"
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows), default=0))]
    return ["  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)) for row in rows]


def status(report: StatusReport, as_json: bool) -> None:
    """`pkg status`: one line per function and job (state, code, last change, drift, last run), then the counts."""
    from packager.reports import ResourceState

    if as_json:
        emit_json(report.to_json())
        return
    click.echo(f"stage {report.stage} (account {report.account}, {report.region}):")
    rows = []
    for resource in report.resources:
        code = resource.live_code or resource.recorded_code
        release = "-" if resource.release is None else str(resource.release)
        cells = [resource.id, str(resource.state), _short_code(code) if code else "-"]
        cells += [f"modified {_when(resource.last_modified)}", f"release {release}"]
        parts = []
        if resource.state is ResourceState.MISSING:
            parts.append("drift: deleted out of band")
        elif resource.drift:
            parts.append("drift: " + ", ".join(map(str, resource.drift)))
        elif resource.state is ResourceState.LIVE:
            parts.append("in sync")
        if resource.pending:
            parts.append("a publish was interrupted: run `pkg publish`")
        run = resource.last_run
        if run:
            took = "" if run.duration_seconds is None else f", {duration(run.duration_seconds)}"
            started = _when(run.started) if run.started else "start unknown"
            parts.append(f"last run {run.state} ({started}{took})")
        rows.append([*cells, "; ".join(parts)])
    for line in _columns(rows):
        click.echo("  " + line.rstrip())
    count = len(report.resources)
    click.echo(f"{count} {'function or job' if count == 1 else 'functions and jobs'}, {len(report.drifted)} drifted")


def log_event(event: LogEvent, as_json: bool) -> None:
    """`pkg logs`: one event a line, `timestamp stream message`; with `as_json`, one compact JSON object a line."""
    click.echo(json.dumps(event.to_json()) if as_json else event.text())


def history(report: HistoryReport, as_json: bool) -> None:
    """`pkg history`: one line per release, oldest first."""
    if as_json:
        emit_json(
            {"stage": report.stage, "location": report.location, "releases": [r.summary() for r in report.releases]}
        )
        return
    if not report.releases:
        click.echo(f"stage {report.stage} has no release yet ({report.location})")
        return
    rows = [["release", "time", "command", "commit", "runs", "by"]]
    for release in report.releases:
        commit = (release.commit or "-")[:12] + ("+dirty" if release.dirty else "")
        what = release.command + (f" to {release.rolled_back_to}" if release.rolled_back_to else "")
        if release.promoted_from:
            what += f" from {release.promoted_from.stage} {release.promoted_from.release}"
        runs = f"{_plural(len(release.functions), 'function')}, {_plural(len(release.jobs), 'job')}"
        rows.append([str(release.id).rjust(7), _when(release.time), what, commit, runs, release.who or "-"])
    for line in _columns(rows):
        click.echo(line)


def diff(report: DiffReport, as_json: bool) -> None:
    """`pkg diff`: every function and job that differs between two releases, and how."""
    if as_json:
        emit_json(
            {
                "stage": report.stage,
                "old": report.old.id,
                "new": report.new.id,
                "changes": [change.to_json() for change in report.changes],
            }
        )
        return
    click.echo(f"release {report.old.id} -> {report.new.id} of stage {report.stage}:")
    for change in report.changes:
        click.echo(f"  {change.change:<8} {change.name:<48} {', '.join(change.details)}")
    if not report.changes:
        click.echo("  no difference")


def rollback(report: RollbackReport, as_json: bool) -> None:
    """`pkg rollback`: each step with its outcome, and the release it recorded."""
    if as_json:
        emit_json(
            {
                "stage": report.stage,
                "to": report.target.id,
                "actions": [outcome.to_json() for outcome in report.outcomes],
                "release": report.release,
                "summary": {"mutating_calls": report.mutating_calls},
            }
        )
        return
    for outcome in report.outcomes:
        line = outcome.to_json()
        click.echo(f"  {line['action']:<14} {line['name']:<48} {line['reason']}")
    recorded = f"; recorded as release {report.release}" if report.release is not None else ""
    click.echo(
        f"stage {report.stage} back at release {report.target.id}: "
        f"{_plural(report.mutating_calls, 'mutating AWS call')} in {report.elapsed:.2f} s{recorded}"
    )


def confirm_promote(staged: StagePlan) -> bool:
    """Ask on a terminal before promoting to a stage; off a terminal (no --yes) the answer is no."""
    if not sys.stdin.isatty():
        say("not a terminal: pass --yes to promote")
        return False
    target = staged.plan.target
    calls = _plural(staged.plan.mutating_calls, "mutating AWS call")
    return click.confirm(f"make these {calls} in stage {target.stage} ({target.account})?", default=False, err=True)


def promote(report: PromoteReport, as_json: bool) -> None:
    """`pkg promote`: the plan was printed before; the source release, the calls made, the release recorded."""
    source = report.source
    if as_json:
        emit_json(
            {
                "from": {"stage": source.target.stage, "account": source.target.account, "release": source.id},
                **_stage_document(report.staged, report.outcomes),
                "release": report.release,
                "summary": {"built": 0, "mutating_calls": report.mutating_calls, "dry_run": report.dry_run},
            }
        )
        return
    verb = "planned (dry run)" if report.dry_run else "made"
    click.echo(
        f"release {source.id} of stage {source.target.stage} promoted to {report.staged.plan.target.stage}: 0 built,"
        f" {_plural(report.mutating_calls, 'mutating AWS call')} {verb} in {report.elapsed:.2f} s"
    )
    if report.release is not None:
        click.echo(f"release {report.release} of stage {report.staged.plan.target.stage} recorded (`pkg history`)")
