"""The workflows of pkg as a library: build, plan, publish, gc, the shared cache, invoke, run, dev envs.

Each command of the CLI is one call here (pypa/build's shape): plain arguments in, callbacks for what
a person should see while it works (`warn`, `progress`), a typed report out for the renderer to
print as text or JSON. Nothing here knows about click. The policies live here once:
- the no-op fast path of a plain `pkg build` (packager/builders/noop.py: answer, take, remember);
- the shared cache is pulled only when the local cache misses, and a publish pulls before planning
  and pushes what AWS confirmed even when a later step failed.

Heavy modules (the builders, the deploy package, boto3) are imported inside the functions that need
them: `pkg --help` and a no-op `pkg build` must not pay for them.
"""

from __future__ import annotations

import errno
import os
import time
from contextlib import closing, contextmanager, nullcontext
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator, Protocol, Sequence

from cache import INDEX_NAME
from packager.errors import CacheError, ConfigError, CorruptIndexError, DiskFullError, PkgError

if TYPE_CHECKING:
    from cache.store import Store, VerifyReport
    from packager.builders.builder import PlannedArtifact, Workspace
    from packager.deploy.destroy import StageDestroyPlan
    from packager.deploy.executor import Outcome
    from packager.deploy.lease import UnlockReport
    from packager.deploy.logs import LogEvent
    from packager.deploy.run import RunReport
    from packager.deploy.stage import StagePlan
    from packager.invoke import InvokeResult
    from packager.reports import (
        CachePullReport,
        CachePushReport,
        CacheStatusReport,
        DestroyReport,
        EnvCommand,
        GcReport,
        LocalArtifact,
        PlanReport,
        PublishReport,
        StatusReport,
    )
    from cache.remote import SharedGcReport
    from packager.prune import PruneReport
    from packager.shared import SharedCacheSession

Warn = Callable[[str], None]
OnBuilt = Callable[["PlannedArtifact"], None]

NO_SHARED_CACHE_HINT = 'set cache_uri = "s3://bucket/prefix" in [tool.pkg] (or a stage), or PKG_CACHE_URI'
RUN_SUCCEEDED = frozenset({"SUCCEEDED", "SUCCESS", "COMPLETED"})  # Glue, EMR on EC2, EMR Serverless
STDERR_FD = 2  # a child's stdout sent here keeps ours one JSON object (`--json`)


class Progress(Protocol):
    """How long work shows itself while it runs (the CLI writes it on stderr)."""

    def note(self, message: str) -> None:
        """One line about slow work in progress (a dependency install)."""

    def building(self, count: int) -> ContextManager[OnBuilt]:
        """Around the build of `count` artifacts (maybe 0); yields what to call as each one is built."""


class QuietProgress:
    """Progress that shows nothing: the default for a caller that wants only the report."""

    def note(self, message: str) -> None:
        """Ignore the line."""

    def building(self, count: int) -> ContextManager[OnBuilt]:
        """Nothing to show around a build."""
        return nullcontext(_ignore)


class LineProgress:
    """Progress as lines through one callback: `building 3 artifacts of lambda/function/x...`."""

    def __init__(self, say: Callable[[str], None], subject: str = ""):
        self.say = say
        self.subject = subject  # " of <artifact id>" when building for one artifact

    def note(self, message: str) -> None:
        """Pass the line on."""
        self.say(message)

    def building(self, count: int) -> ContextManager[OnBuilt]:
        """Say how many artifacts are about to be built, if any."""
        if count:
            self.say(f"building {count} artifact{'s' * (count != 1)}{self.subject}...")
        return nullcontext(_ignore)


def _ignore(_value: object) -> None:
    """A callback that drops what it is given."""


QUIET = QuietProgress()


@contextmanager
def _workspace(
    root: str, shared: bool = False, warn: Warn = _ignore, stage: str | None = None, region: str | None = None
) -> Iterator[Workspace]:
    """The workspace of `root` for one command, closed after it; with `shared`, its shared cache session."""
    from packager.builders.builder import open_workspace

    try:
        ws = open_workspace(root)
    except UnicodeDecodeError as error:  # tomllib decodes the whole file first: pyproject.toml is all it reads
        data = bytes(error.object)
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(
            f"pyproject.toml:{line}: not UTF-8 text (byte {data[error.start]:#04x})",
            hint="save pyproject.toml as UTF-8",
        ) from None
    try:
        try:
            if shared:
                ws.shared = _open_shared(ws, warn, stage, region)
            yield ws
        finally:
            ws.close()
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"no space left on the device while writing {error.filename or ws.store.cache_dir}",
                hint=f"free some space (the cache folder is {ws.store.cache_dir}; `pkg cache prune` removes"
                " unused artifacts) and run the command again",
            ) from None
        raise
    except Exception as error:
        import sqlite3

        if isinstance(error, sqlite3.DatabaseError):
            raise _index_failure(os.path.join(ws.store.cache_dir, INDEX_NAME), error) from None
        raise


def _index_failure(index_path: str, error: Exception) -> PkgError:
    """The error for an SQLite failure: the local index is corrupt, or it failed some other way (locked...)."""
    import sqlite3

    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFullError(
            f"no space left on the device while writing {index_path}",
            hint="free some space (`pkg cache prune` removes unused artifacts) and run the command again",
        )
    try:
        with closing(sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.OperationalError:  # locked or busy: not a reason to call it corrupt (and move it aside)
        verdict = "ok"
    except sqlite3.DatabaseError as check:
        verdict = str(check)
    if verdict != "ok":
        return CorruptIndexError(index_path, verdict)
    return CacheError(
        f"{index_path}: the local index failed: {error}",
        hint="another pkg may hold it for long; run the command again, or `pkg cache verify`",
    )


def move_index_aside(index_path: str) -> str:
    """Rename the index and its companion files to `<name>.corrupt-<time>`; a fresh index starts on next use."""
    aside = f"{index_path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
    for suffix in ("", "-wal", "-shm", "-journal", "-generation"):
        if os.path.exists(index_path + suffix):
            os.replace(index_path + suffix, aside + suffix)
    return aside


def _open_shared(
    ws: Workspace, warn: Warn, stage: str | None = None, region: str | None = None
) -> SharedCacheSession | None:
    """The shared cache session a command uses, or None when no cache_uri is set."""
    from packager.shared import open_shared_cache

    return open_shared_cache(ws, enabled=True, warn=warn, stage=stage, region=region)


def artifact_row(item: PlannedArtifact, store: Store) -> dict:
    """One artifact of a build report as JSON (the shape the no-op answer stores too)."""
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


def _fetch_and_build(
    ws: Workspace, planned: list[PlannedArtifact], progress: Progress, jobs: int | None = None
) -> list[PlannedArtifact]:
    """Fetch from the shared cache what it holds (its index is pulled only now, on a local miss), build
    the rest; returns the artifacts built."""
    from packager.builders.builder import build as run_build

    todo = [item for item in planned if item.to_build]
    if todo and ws.shared and ws.shared.fetch_planned(planned):
        todo = [item for item in planned if item.to_build]
    with progress.building(len(todo)) as on_built:
        run_build(ws, planned, on_built=on_built, jobs=jobs)
    return todo


def _build_step(
    ws: Workspace,
    names: Sequence[str],
    force: bool,
    refresh_deps: bool,
    jobs: int | None,
    warn: Warn,
    progress: Progress,
) -> tuple[list[PlannedArtifact], list[PlannedArtifact]]:
    """collect -> plan -> fetch from the shared cache -> build; returns (planned, built)."""
    from packager.builders.builder import collect, plan_build

    collected = collect(ws, list(names), refresh_deps=refresh_deps, progress=progress.note, force=force)
    ws.warnings = collected.warnings
    for warning in collected.warnings:
        warn(warning)
    planned = plan_build(ws, collected, force)
    built = _fetch_and_build(ws, planned, progress, jobs)
    for item in built:  # what writing an artifact found worth saying (e.g. job dependencies left out)
        for note in item.record.meta.get("notes", []) if item.record else []:
            warn(note)
    return planned, built


class BuildReport:
    """What `pkg build` did: every artifact (as JSON rows) and the ones it built.

    A plain class, not a dataclass: the no-op path returns one and pays for nothing it doesn't use.
    """

    __slots__ = ("artifacts", "built", "elapsed")

    def __init__(self, artifacts: list[dict], built: list[PlannedArtifact], elapsed: float):
        self.artifacts = artifacts
        self.built = built
        self.elapsed = elapsed  # seconds

    @property
    def cached(self) -> int:
        return len(self.artifacts) - len(self.built)

    def to_json(self) -> dict:
        return {"artifacts": self.artifacts, "summary": {"built": len(self.built), "cached": self.cached}}


def build(
    root: str,
    names: Sequence[str] = (),
    force: bool = False,
    refresh_deps: bool = False,
    jobs: int | None = None,
    shared_cache: bool = True,
    warn: Warn = _ignore,
    progress: Progress = QUIET,
) -> BuildReport:
    """Build the artifacts of the repo at `root` whose inputs changed (all, or `names` and their layers).

    A plain build (no names, no force, no refresh) answers from the last all-cached build when no
    input changed since, without opening the index. The shared cache (unless `shared_cache` is
    False) is pulled only when the local cache misses, and pushed to when something was built.
    """
    from packager.builders import noop
    from packager.repo import cache_dir_of

    started = time.perf_counter()
    cache_dir = cache_dir_of(root)
    plain = not (names or force or refresh_deps)
    if plain:  # nothing changed since a build that left everything cached: answer from its report
        try:
            summary = noop.answer(root, cache_dir)
            taken = noop.take(root) if summary is None else None
        except (OSError, UnicodeError, RecursionError):
            # an unreadable input (a link loop, a name or file that isn't UTF-8): the full path names it
            summary, taken, plain = None, None, False
        if summary is not None:
            for warning in summary["warnings"]:
                warn(warning)
            return BuildReport(summary["report"]["artifacts"], [], time.perf_counter() - started)
    with _workspace(root, shared=shared_cache, warn=warn) as ws:
        planned, built = _build_step(ws, names, force, refresh_deps, jobs, warn, progress)
        if ws.shared and built:
            ws.shared.push()
        artifacts = [artifact_row(item, ws.store) for item in planned]
        if plain:
            ws.close()  # first: closing voids the saved answer when this build wrote to the index
            cached = [{**artifact, "status": "cached"} for artifact in artifacts]
            answer = {"artifacts": cached, "summary": {"built": 0, "cached": len(cached)}}
            assert taken is not None  # a plain build took its fingerprint above
            noop.remember(cache_dir, taken, {"report": answer, "warnings": ws.warnings})
    return BuildReport(artifacts, built, time.perf_counter() - started)


def ensure_built(
    ws: Workspace, artifact_id: str, on_progress: Callable[[str], None] = _ignore, warn: Warn = _ignore
) -> LocalArtifact:
    """Build `artifact_id` and what it uses, if needed (what `ws.shared` holds is fetched instead).

    Each cached file is checked to be the bytes built before it is used; one that is not is built again
    (and `warn`ed about)."""
    from packager.builders.builder import collect, plan_build, rebuild_corrupt
    from packager.reports import LocalArtifact

    planned = plan_build(ws, collect(ws, [artifact_id]))
    for line in rebuild_corrupt(ws, planned):
        warn(line)
    built = _fetch_and_build(ws, planned, LineProgress(on_progress, f" of {artifact_id}"))
    files = {}
    for item in planned:
        if item.record is None:
            raise CacheError(f"{item.spec.id} has no file in the cache after its build", hint="run `pkg cache verify`")
        files[item.spec.id] = ws.store.abspath(item.record.path)
    spec = next(item.spec for item in planned if item.spec.id == artifact_id)
    return LocalArtifact(spec, files, [item.spec.id for item in built])


def plan(
    root: str,
    names: Sequence[str] = (),
    force: bool = False,
    stage: str | None = None,
    refresh: bool = False,
    profile: str | None = None,
    region: str | None = None,
    warn: Warn = _ignore,
    progress: Progress = QUIET,
    allow_delete: bool = False,
) -> PlanReport:
    """Say what a build would build and why; with `stage`, plan its publish too (read-only AWS calls).

    A plan of the whole tree (no `names`) lists the deletions of what `src/` no longer has; on a
    stage with deletion_protection they are shown refused unless `allow_delete`.
    """
    from packager.builders.builder import collect, plan_build
    from packager.reports import PlanReport

    if refresh and not stage:
        raise PkgError("--refresh compares with a stage's live functions", hint="add --stage NAME")
    with _workspace(root) as ws:
        collected = collect(ws, list(names), progress=progress.note)
        for warning in collected.warnings:
            warn(warning)
        planned = plan_build(ws, collected, force)
        staged = None
        if stage:
            from packager.deploy.stage import plan_stage

            shared = _open_shared(ws, warn, stage, region)
            if shared:
                shared.pull()  # what teammates and CI already published
            staged = plan_stage(
                ws,
                stage,
                planned,
                refresh=refresh,
                profile=profile,
                region=region,
                warn=warn,
                prune=not names,
                allow_delete=allow_delete,
            )
    return PlanReport(planned, staged)


def publish(
    root: str,
    stage: str,
    names: Sequence[str] = (),
    refresh: bool = False,
    profile: str | None = None,
    region: str | None = None,
    dry_run: bool = False,
    jobs: int = 8,
    shared_cache: bool = True,
    warn: Warn = _ignore,
    progress: Progress = QUIET,
    on_planned: Callable[[StagePlan], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    lock_timeout: float | None = None,
    allow_delete: bool = False,
) -> PublishReport:
    """Build what changed, then make in AWS exactly the calls the stage's plan lists (unless `dry_run`).

    The stage and its credentials are checked before the build; a plan with something to change is
    made again under the stage's lease, so one publish of a stage runs at a time across machines
    (waited for up to `lock_timeout` seconds) and plans from what the one before it did; a no-op
    publish takes no lease (it writes nothing). What AWS confirmed is pushed to the shared cache even
    when a later step failed. A publish of the whole tree (no `names`) deletes the functions and jobs
    `src/` no longer has; on a stage with deletion_protection it fails before any mutating call
    unless `allow_delete` (packager/deploy/removal.py).
    """
    from packager.deploy.removal import check_deletions_allowed
    from packager.deploy.stage import open_stage_session, plan_stage, stage_lease_lock, stage_lock
    from packager.reports import PublishReport

    started = time.perf_counter()
    with _workspace(root, shared=shared_cache, warn=warn, stage=stage, region=region) as ws:
        # Stage, credentials and account are checked before a possibly long build, not after it.
        aws = open_stage_session(ws, stage, profile, region, jobs)
        planned, built = _build_step(ws, names, False, False, None, warn, progress)
        outcomes = None
        release = None
        # A concurrent publish of this stage on this machine waits (the flock), then plans from what it did.
        with stage_lock(ws, stage):
            if ws.shared:
                ws.shared.pull()  # what teammates and CI already published: not again
            prune = not names  # a publish of some NAMES removes nothing
            staged = plan_stage(
                ws, stage, planned, refresh=refresh, jobs=jobs, aws=aws, warn=warn, prune=prune,
                allow_delete=allow_delete,
            )
            if not dry_run:
                check_deletions_allowed(ws.config, staged.plan, allow_delete)
            if not dry_run and _has_work(staged):
                # Something to change: under the stage's lease across machines, planned again from what
                # a publisher that held it did meanwhile. A no-op publish never writes the lease.
                with stage_lease_lock(ws, stage, aws, "pkg publish", lock_timeout, progress.note, warn):
                    if ws.shared:
                        ws.shared.pull(again=True)
                    staged = plan_stage(
                        ws,
                        stage,
                        planned,
                        refresh=refresh,
                        jobs=jobs,
                        aws=aws,
                        warn=warn,
                        prune=prune,
                        allow_delete=allow_delete,
                    )
                    check_deletions_allowed(ws.config, staged.plan, allow_delete)
                    if on_planned:
                        on_planned(staged)
                    if _has_work(staged):
                        outcomes = _publish_planned(ws, staged, planned, jobs, on_done)
                        release = _record_release(ws, stage, aws, warn)
                    elif ws.shared and built:
                        ws.shared.push()
            else:
                if on_planned:
                    on_planned(staged)
                if ws.shared and built:
                    ws.shared.push()
        artifacts = [artifact_row(item, ws.store) for item in planned]
    return PublishReport(artifacts, built, staged, outcomes, dry_run, time.perf_counter() - started, release)


def _has_work(staged: StagePlan) -> bool:
    """Whether executing the plan calls AWS or records anything."""
    to_record = sum(action.record is not None for action in staged.plan.actions)
    return bool(staged.plan.mutating_calls + to_record)


def _record_release(ws: Workspace, stage: str, aws, warn: Warn, rolled_back_to=None, known: Sequence = ()):
    """Record what the stage runs now as its next release (under the lease, after AWS confirmed); its id.

    `rolled_back_to`: the Release a rollback restored; `known`: releases describing older versions an alias may run.
    """
    from packager.deploy.releases import record_release

    command = "publish" if rolled_back_to is None else "rollback"
    back = None if rolled_back_to is None else rolled_back_to.id
    known = [*known, rolled_back_to] if rolled_back_to is not None else list(known)
    release = record_release(ws, stage, aws, command, warn, back, known)
    return None if release is None else release.id


def _publish_planned(
    ws: Workspace, staged: StagePlan, planned: list, jobs: int, on_done: Callable[[Outcome], None] | None
) -> list[Outcome]:
    """Execute the stage plan; what AWS confirmed is pushed to the shared cache, even when a later step failed."""
    from packager.deploy.stage import publish_stage

    try:
        return publish_stage(ws, staged, jobs=jobs, on_done=on_done)
    except PkgError as failure:  # what completed, for `--json` beside the error
        target = staged.plan.target
        done = {"stage": target.stage, "account": target.account, "region": target.region}
        artifacts = [artifact_row(item, ws.store) for item in planned]
        failure.completed = {**done, "artifacts": artifacts, **failure.completed}
        raise
    finally:
        if ws.shared:
            ws.shared.push()


def gc(
    root: str,
    stage: str,
    keep: int = 3,
    dry_run: bool = False,
    profile: str | None = None,
    region: str | None = None,
    warn: Warn = _ignore,
    note: Callable[[str], None] = _ignore,
    lock_timeout: float | None = None,
) -> GcReport:
    """Delete a stage's layer versions and S3 artifacts that nothing uses, beyond the newest `keep`.

    It holds the stage lock (as a publish does) unless `dry_run`: what it deletes is not in use then.
    What it deleted is marked in the index and pushed to the shared cache, even when a later deletion failed.
    """
    from packager.deploy.aws import open_session
    from packager.deploy.gc import GcAction, execute_gc, plan_gc, record_deletions
    from packager.deploy.stage import stage_lease_lock, stage_lock
    from packager.reports import GcReport

    with _workspace(root) as ws:
        shared = _open_shared(ws, warn, stage, region)
        if shared:
            shared.pull()  # what teammates published is in use too
        aws = open_session(stage, ws.config.stage(stage), profile, region)
        lease = nullcontext() if dry_run else stage_lease_lock(ws, stage, aws, "pkg gc", lock_timeout, note, warn)
        with stage_lock(ws, stage), lease:
            actions = plan_gc(aws, ws.config, stage, ws.store.index, keep, warn)
            doomed = [action for action in actions if action.kind.deletes]
            done: list[GcAction] = []
            try:
                deleted = 0 if dry_run else execute_gc(aws, doomed, on_deleted=done.append)
            finally:
                if record_deletions(ws.store.index, done) and shared:
                    shared.push()  # under the lease: no publish attaches what is gone
    return GcReport(actions, doomed, deleted, dry_run)


def destroy(
    root: str,
    stage: str,
    dry_run: bool = False,
    allow_delete: bool = False,
    profile: str | None = None,
    region: str | None = None,
    jobs: int = 8,
    warn: Warn = _ignore,
    note: Callable[[str], None] = _ignore,
    lock_timeout: float | None = None,
    confirm: Callable[[StageDestroyPlan], bool] = lambda staged: True,
    on_planned: Callable[[StageDestroyPlan], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> DestroyReport:
    """Delete every function, layer version, Glue job, S3 object and record of `stage`, and nothing of another.

    Planned first (reads only) and shown to `on_planned`; `confirm` must agree before anything is
    deleted. Like a publish, it runs under the stage's lock (planned again under it) and pushes what it
    recorded to the shared cache. A stage with deletion_protection is refused unless `allow_delete`.
    """
    from packager.deploy.destroy import check_destroy_allowed, plan_destroy
    from packager.deploy.executor import execute
    from packager.deploy.stage import open_stage_session, stage_lease_lock, stage_lock
    from packager.reports import DestroyReport

    with _workspace(root, shared=True, warn=warn, stage=stage, region=region) as ws:
        aws = open_stage_session(ws, stage, profile, region, jobs)
        if not dry_run:
            check_destroy_allowed(ws.config, stage, allow_delete)
        with stage_lock(ws, stage):
            if ws.shared:
                ws.shared.pull()  # what teammates published belongs to the stage too
            staged = plan_destroy(ws, stage, aws, jobs, warn)
            if on_planned:
                on_planned(staged)
            if dry_run or not staged.has_work:
                return DestroyReport(staged, None, dry_run)
            if not confirm(staged):
                raise PkgError(
                    f"pkg destroy --stage {stage} was not confirmed: nothing was deleted",
                    hint="answer yes on a terminal, or pass --yes",
                )
            with stage_lease_lock(ws, stage, aws, "pkg destroy", lock_timeout, note, warn):
                if ws.shared:
                    ws.shared.pull(again=True)
                staged = plan_destroy(ws, stage, aws, jobs, warn)
                try:
                    outcomes = execute(staged.plan, aws, ws.store.index, staged.recorded, {}, jobs, on_done)
                finally:
                    if ws.shared:
                        ws.shared.push()
    return DestroyReport(staged, outcomes, dry_run)


def unlock(
    root: str,
    stage: str,
    profile: str | None = None,
    region: str | None = None,
    confirm: Callable[[UnlockReport], bool] = lambda report: True,
) -> UnlockReport:
    """Break the stage's lock: show its holder, and delete the lock object if `confirm` agrees.

    For a holder that is gone (a killed runner) before its lease ran out; a live holder loses its lock.
    """
    from packager.deploy.actions import Target
    from packager.deploy.lease import UnlockReport, delete_lock, read_lock
    from packager.deploy.naming import lock_key
    from packager.deploy.settings import artifact_bucket, require_bucket
    from packager.deploy.stage import open_stage_session

    with _workspace(root) as ws:
        aws = open_stage_session(ws, stage, profile, region)
        why = f"the {stage} lock is an object in the artifact bucket"
        bucket = require_bucket(artifact_bucket(ws.config, stage), why)
        key = lock_key(Target(aws.account, aws.region, stage))
        held = read_lock(aws, bucket, key)
        report = UnlockReport(stage, f"s3://{bucket}/{key}", None if held is None else held.describe(), False)
        if held is not None and confirm(report):
            report.removed = delete_lock(aws, bucket, key, held.etag)
    return report


@contextmanager
def _shared_session(root: str, stage: str | None, warn: Warn) -> Iterator[tuple[Workspace, SharedCacheSession]]:
    """The workspace and its shared cache session for a `pkg cache` command; a PkgError when none is set."""
    with _workspace(root) as ws:
        session = _open_shared(ws, warn, stage)
        if session is None:
            raise PkgError("no shared cache configured", hint=NO_SHARED_CACHE_HINT)
        yield ws, session


def _sync(session: SharedCacheSession, operation: str):
    """Run the shared cache's `pull` or `push`, its failure as a PkgError."""
    from cache import SharedCacheError

    try:
        return getattr(session.cache, operation)()
    except SharedCacheError as error:
        raise PkgError(str(error), hint="check credentials, the bucket and AWS_ENDPOINT_URL") from None


def cache_pull(root: str, stage: str | None = None, warn: Warn = _ignore) -> CachePullReport:
    """Merge the shared index into the local one (artifacts are fetched when a build needs them)."""
    from packager.reports import CachePullReport

    with _shared_session(root, stage, warn) as (ws, session):
        report = _sync(session, "pull")
        known = ws.store.index.count_remote_artifacts(session.uri)
    return CachePullReport(session.uri, report.changed, known, report.published)


def cache_push(root: str, stage: str | None = None, warn: Warn = _ignore) -> CachePushReport:
    """Upload local artifacts the shared cache lacks, and merge the local index into the shared one."""
    from packager.reports import CachePushReport

    with _shared_session(root, stage, warn) as (_ws, session):
        report = _sync(session, "push")
    for warning in report.warnings:
        warn(warning)
    return CachePushReport(session.uri, report.uploaded, report.rows_added, report.attempts)


def cache_status(root: str, stage: str | None = None, warn: Warn = _ignore) -> CacheStatusReport:
    """Compare the local cache with the shared one (pulling the shared index first)."""
    from packager.reports import CacheStatusReport

    with _shared_session(root, stage, warn) as (ws, session):
        _sync(session, "pull")
        index = ws.store.index
        local = {record.input_hash for record in index.all_artifacts()}
        shared = set(index.remote_artifacts(session.uri, local)) if local else set()
        known = index.count_remote_artifacts(session.uri)
        return CacheStatusReport(session.uri, len(local), known, len(local - shared))


def cache_verify(root: str, repair: bool = False) -> VerifyReport:
    """Check every index row against its artifact file; with `repair`, drop bad rows and orphan files."""
    from cache.store import VerifyReport, verify

    try:
        with _workspace(root) as ws:
            return verify(ws.store, repair=repair)
    except CorruptIndexError as corrupt:
        if not repair:
            raise
        # The rows can't be read, so nothing can be salvaged: a fresh index rebuilds or re-adopts it all.
        aside = move_index_aside(corrupt.path)
        problem = f"{corrupt.path}: not a readable SQLite index; moved aside to {aside}, a fresh index starts empty"
        return VerifyReport(0, [problem], [problem])


def gc_shared(
    root: str, stage: str | None = None, grace: float = 7 * 86400, dry_run: bool = False, warn: Warn = _ignore
) -> SharedGcReport:
    """Delete the shared cache's artifacts that no stage's records nor the current tree use, none
    younger than `grace` seconds; their shared index rows go first, in one conditional write."""
    from cache import S3ObjectStore, SharedCacheError
    from packager.prune import needed_input_hashes
    from packager.shared import shared_in_use

    with _shared_session(root, stage, warn) as (ws, session):
        needed = needed_input_hashes(ws)
        lister = session.cache.objects
        assert isinstance(lister, S3ObjectStore)  # the session's store lists and deletes too
        try:
            return session.cache.collect_garbage(
                lister, lambda artifacts, published: shared_in_use(needed, artifacts, published), grace, dry_run
            )
        except SharedCacheError as error:
            raise PkgError(str(error), hint="check credentials, the bucket and AWS_ENDPOINT_URL") from None


def cache_prune(root: str, older_than: float | None, max_size: int | None, dry_run: bool = False) -> PruneReport:
    """Remove from the local cache what the current tree doesn't need, least recently used first."""
    from packager.prune import prune_cache

    with _workspace(root) as ws:
        return prune_cache(ws, older_than, max_size, dry_run)


def invoke(
    root: str,
    service: str,
    name: str,
    event: object = None,
    args: Sequence[str] = (),
    stage: str | None = None,
    timeout: int | None = None,
    shared_cache: bool = True,
    on_output: Callable[[str], None] = _ignore,
    on_stdout: Callable[[str], None] = _ignore,
    warn: Warn = _ignore,
    on_progress: Callable[[str], None] = _ignore,
) -> InvokeResult:
    """Run lambda/<name> with `event`, or glue_python_shell/<name> with `args`, locally from its artifacts."""
    from packager.invoke import invoke_glue_python_shell, invoke_lambda

    with _workspace(root, shared=shared_cache, warn=warn) as ws:
        if service == "lambda":
            return invoke_lambda(
                ws, name, event, stage, timeout, on_output=on_output, on_warning=warn, on_progress=on_progress
            )
        return invoke_glue_python_shell(
            ws,
            name,
            list(args),
            stage,
            timeout,
            on_output=on_output,
            on_stdout=on_stdout,
            on_warning=warn,
            on_progress=on_progress,
        )


def run(
    root: str,
    stage: str,
    job: str,
    args: Sequence[str] = (),
    wait: bool = False,
    timeout: float = 3600,
    profile: str | None = None,
    region: str | None = None,
    on_state: Callable[[RunReport], None] | None = None,
) -> RunReport:
    """Start a run of a published Glue or EMR job; with `wait`, until it ends or `timeout` seconds pass.

    While waiting, `on_state` hears of the run once started and of each state change.
    """
    from packager.deploy.run import run_job

    with _workspace(root) as ws:
        return run_job(ws, stage, job, list(args), wait, timeout, profile, region, on_state=on_state)


def env_create(
    root: str, name: str, run: bool = False, say: Callable[[str], None] = _ignore, output_to_stderr: bool = False
) -> EnvCommand:
    """The command that creates or updates dev env `name` (an env or a service name); with `run`, run it.

    `output_to_stderr`: the manager's output goes to stderr, so that stdout stays one JSON object.
    """
    import subprocess

    from packager.envs import NO_MANAGER_HINT, command_environment, create_command, shell_line
    from packager.errors import EnvError
    from packager.reports import EnvCommand

    command, manager = create_command(root, name)
    line = shell_line(root, command)
    if run:
        if manager is None:
            raise EnvError("no conda-compatible manager (micromamba, mamba, conda) on PATH", hint=NO_MANAGER_HINT)
        say(f"running: {line}")
        stdout = STDERR_FD if output_to_stderr else None
        code = subprocess.run(command, env=command_environment(root), stdout=stdout).returncode
        if code:
            raise EnvError(f"{manager.kind} exited with code {code}", hint="see its output above")
    return EnvCommand(line, manager_found=manager is not None)


def env_lock(
    root: str,
    names: Sequence[str] = (),
    run: bool = False,
    say: Callable[[str], None] = _ignore,
    output_to_stderr: bool = False,
) -> list[str]:
    """The conda-lock commands that lock the dev envs (all, or `names`); with `run`, run them in turn.

    A failure carries the commands that ran in `completed["ran"]`; `output_to_stderr` as for env_create.
    """
    import shlex
    import shutil
    import subprocess

    from packager.envs import lock_commands

    commands = lock_commands(root, list(names))
    if run:
        if shutil.which("conda-lock") is None:
            raise PkgError(
                "conda-lock is not on PATH", hint="pip install conda-lock (the pkg env has it), then run this again"
            )
        ran: list[str] = []
        for command in commands:
            say(f"running: {shlex.join(command)}")
            code = subprocess.run(command, cwd=root, stdout=STDERR_FD if output_to_stderr else None).returncode
            if code:
                failure = PkgError(f"conda-lock exited with code {code}", hint="see its output above")
                failure.completed = {"ran": ran}
                raise failure
            ran.append(shlex.join(command))
    return [shlex.join(command) for command in commands]


def status(
    root: str,
    stage: str,
    profile: str | None = None,
    region: str | None = None,
    jobs: int = 8,
    warn: Warn = _ignore,
) -> StatusReport:
    """Each function and job of `stage`: recorded beside live, drift, and each job's newest run; read calls only.

    The shared index is pulled first (as `pkg plan --stage` does): what teammates published is recorded too.
    """
    from packager.deploy.stage import open_stage_session
    from packager.deploy.status import stage_status

    with _workspace(root) as ws:
        shared = _open_shared(ws, warn, stage, region)
        if shared:
            shared.pull()
        aws = open_stage_session(ws, stage, profile, region, jobs)
        return stage_status(ws, stage, aws, jobs, warn)


def logs(
    root: str,
    target: str,
    stage: str,
    since: str | None = None,
    follow: bool = False,
    run_id: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    on_event: Callable[[LogEvent], None] = _ignore,
) -> None:
    """Hand each log event of a function or a Glue run (`target`) in `stage` to `on_event`, in time order.

    With `follow`, keep polling for new events until Ctrl-C (KeyboardInterrupt). Read calls only.
    """
    from datetime import datetime, timezone

    from packager.deploy import logs as stage_logs
    from packager.deploy.aws import aws_errors
    from packager.deploy.stage import open_stage_session

    now = datetime.now(timezone.utc)
    artifact = stage_logs.parse_target(target)  # a mistyped target or time fails before any AWS call
    start = stage_logs.parse_since(since, now) if since else None
    with _workspace(root) as ws:
        aws = open_stage_session(ws, stage, profile, region)
        source = stage_logs.stage_log_source(ws.config, stage, aws, artifact, start, run_id, now)

    def fetch(start_ms: int | None) -> list[LogEvent]:
        with aws_errors(source.name, stage_logs.RETRY_LOGS):
            return stage_logs.read_events(aws, source, start_ms)

    if follow:
        stage_logs.follow(fetch, on_event, source.start_ms)
        return
    for event in fetch(source.start_ms):
        on_event(event)


def _release_store(ws: Workspace, stage: str, aws, warn: Warn):
    """The stage's releases, or a ConfigError: they live in its artifact bucket."""
    from packager.deploy.releases import stage_releases
    from packager.deploy.settings import BUCKET_HINT

    store = stage_releases(ws, stage, aws, warn)
    if store is None:
        raise ConfigError(f"stage {stage} has no artifact bucket, where its releases are kept", hint=BUCKET_HINT)
    return store


def history(root: str, stage: str, profile: str | None = None, region: str | None = None, warn: Warn = _ignore):
    """The releases of `stage`, oldest first, read from its artifact bucket (each checked; others warned about)."""
    from packager.deploy.releases import release_prefix
    from packager.deploy.stage import open_stage_session
    from packager.reports import HistoryReport

    with _workspace(root) as ws:
        aws = open_stage_session(ws, stage, profile, region)
        store = _release_store(ws, stage, aws, warn)
        location = f"s3://{store.bucket}/{release_prefix(store.scope.target)}"
        return HistoryReport(stage, location, store.all())


def diff(
    root: str,
    stage: str,
    old: str,
    new: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    warn: Warn = _ignore,
):
    """What changed between two releases of `stage` (`new` defaults to the current, i.e. latest, one)."""
    from packager.deploy.releases import diff_releases
    from packager.deploy.stage import open_stage_session
    from packager.reports import DiffReport

    with _workspace(root) as ws:
        aws = open_stage_session(ws, stage, profile, region)
        store = _release_store(ws, stage, aws, warn)
        before = store.get(old)
        latest = store.latest(1) if new is None else [store.get(new)]
        if not latest:
            raise PkgError(f"stage {stage} has no release yet", hint=f"`pkg publish --stage {stage}` records one")
        return DiffReport(stage, before, latest[-1], diff_releases(before, latest[-1]))


def rollback(
    root: str,
    stage: str,
    to: str | None = None,
    names: Sequence[str] = (),
    profile: str | None = None,
    region: str | None = None,
    jobs: int = 8,
    warn: Warn = _ignore,
    note: Callable[[str], None] = _ignore,
    lock_timeout: float | None = None,
):
    """Bring `stage` back to release `to` (default: the one before the current): aliases, Glue jobs and
    EMR run specifications point at what it ran again. No checkout, no build; under the stage's lease;
    recorded as a release itself. Refused before any change when something it needs is gone."""
    from dataclasses import replace

    from packager.deploy.actions import Outcome
    from packager.deploy.executor import execute
    from packager.deploy.rollback import RollbackError, flag_aliases, plan_rollback, record_aliases
    from packager.deploy.stage import open_stage_session, stage_lease_lock, stage_lock
    from packager.deploy.trust import check_recorded
    from packager.reports import RollbackReport

    started = time.perf_counter()
    with _workspace(root, shared=True, warn=warn, stage=stage, region=region) as ws:
        aws = open_stage_session(ws, stage, profile, region, jobs)
        store = _release_store(ws, stage, aws, warn)
        with stage_lock(ws, stage), stage_lease_lock(ws, stage, aws, "pkg rollback", lock_timeout, note, warn):
            if ws.shared:
                ws.shared.pull()  # the rows teammates recorded: a job's definition, a function's alias
            releases = store.latest(2)  # the current one, and the one before it (the default target)
            if to is not None:
                target = store.get(to)
            elif len(releases) < 2:
                raise RollbackError(
                    f"stage {stage} has {len(releases)} release{'s' * (len(releases) != 1)}: nothing before it",
                    hint=f"`pkg history --stage {stage}` lists them",
                )
            else:
                target = releases[-2]
            t = store.scope.target
            recorded = check_recorded(ws.store.index.published(t.account, t.region, stage), store.scope, warn)
            plan = plan_rollback(aws, store.scope, recorded, target, names, jobs)
            flag_aliases(ws.store.index, plan, recorded)
            outcomes = [Outcome(action) for action in plan.actions]
            try:
                outcomes = execute(plan, aws, ws.store.index, recorded, {}, jobs)
            except PkgError as failure:
                done = {item["id"] for item in failure.completed.get("actions", []) if item["status"] == "done"}
                outcomes = [replace(o, status="done") if o.action.id in done else o for o in outcomes]
                raise
            finally:
                record_aliases(ws.store.index, plan, recorded, outcomes)
                if ws.shared:
                    ws.shared.push()
            changed = any(outcome.status == "done" or outcome.action.record for outcome in outcomes)
            release = _record_release(ws, stage, aws, warn, target, releases[-1:]) if changed else None
    return RollbackReport(stage, target, outcomes, release, time.perf_counter() - started)


def promote(
    root: str,
    source: str,
    stage: str,
    names: Sequence[str] = (),
    dry_run: bool = False,
    profile: str | None = None,
    region: str | None = None,
    jobs: int = 8,
    warn: Warn = _ignore,
    note: Callable[[str], None] = _ignore,
    lock_timeout: float | None = None,
    confirm: Callable[[StagePlan], bool] = lambda staged: True,
    on_planned: Callable[[StagePlan], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
):
    """Deploy to `stage` exactly the artifacts `source`'s current release runs (all, or NAMES), with
    `stage`'s own settings: nothing is built, whatever the checkout holds (packager/deploy/promote.py).

    The source stage is read with its own credentials (profile, region, account of its table);
    `profile` and `region` are the target stage's. The plan is the publish planner's, made from the
    release's artifacts instead of a build; it runs under the target's lease, records its rows and
    aliases as a publish would, and a release that says which release of `source` it promoted.
    """
    from packager.deploy.promote import gather, plan_promotion, promoted_plan
    from packager.deploy.releases import PromotedFrom, record_release
    from packager.deploy.settings import artifact_bucket
    from packager.deploy.stage import open_stage_session, plan_stage, stage_lease_lock, stage_lock
    from packager.deploy.trust import check_recorded
    from packager.reports import PromoteReport

    if source == stage:
        raise PkgError(f"--from and --to are both {stage}", hint="promote from one stage to another")
    started = time.perf_counter()
    with _workspace(root, shared=True, warn=warn, stage=stage, region=region) as ws:
        source_aws = open_stage_session(ws, source, None, None, jobs)
        aws = open_stage_session(ws, stage, profile, region, jobs)
        store = _release_store(ws, source, source_aws, warn)
        latest = store.latest(1)
        if not latest:
            raise PkgError(f"stage {source} has no release yet", hint=f"`pkg publish --stage {source}` records one")
        release = latest[-1]
        if ws.shared:
            ws.shared.pull()  # the source stage's rows: which artifact each layer version and zip is
        scope = store.scope
        rows = ws.store.index.published(scope.target.account, scope.target.region, source)
        wanted = plan_promotion(ws.config, release, check_recorded(rows, scope, warn), stage, names)
        records = gather(ws, wanted, source_aws, artifact_bucket(ws.config, source), release, warn)
        planned = promoted_plan(wanted, records, release)
        promoted_from = PromotedFrom(source, scope.target.account, scope.target.region, release.id)
        outcomes = None
        recorded = None
        with stage_lock(ws, stage):
            staged = plan_stage(ws, stage, planned, jobs=jobs, aws=aws, warn=warn)
            if on_planned:
                on_planned(staged)
            if not dry_run and _has_work(staged):
                if not confirm(staged):
                    raise PkgError(
                        f"pkg promote --to {stage} was not confirmed: nothing was changed",
                        hint="answer yes on a terminal, or pass --yes",
                    )
                with stage_lease_lock(ws, stage, aws, "pkg promote", lock_timeout, note, warn):
                    if ws.shared:
                        ws.shared.pull(again=True)
                    staged = plan_stage(ws, stage, planned, jobs=jobs, aws=aws, warn=warn)
                    if _has_work(staged):
                        outcomes = _publish_planned(ws, staged, planned, jobs, on_done)
                        written = record_release(ws, stage, aws, "promote", warn, promoted_from=promoted_from)
                        recorded = None if written is None else written.id
    return PromoteReport(release, staged, outcomes, dry_run, recorded, time.perf_counter() - started)
