"""What the workflows of packager.app return: typed reports that packager.render prints as text or JSON.

`BuildReport` is a plain class: a no-op `pkg build` returns one and must not pay for building
dataclasses at import; it lives in packager/app.py. This module is imported only by the commands
that do more than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packager.builders.sources import ArtifactSpec
    from packager.builders.builder import PlannedArtifact
    from packager.deploy.executor import Outcome
    from packager.deploy.destroy import StageDestroyPlan
    from packager.deploy.gc import GcAction
    from packager.deploy.releases import Change, Release
    from packager.deploy.stage import StagePlan


@dataclass
class LocalArtifact:
    """An artifact built (or found) in the local cache, with what it uses."""

    spec: ArtifactSpec
    files: dict[str, str]  # artifact id -> its file in the cache, for it and every artifact it uses
    built: list[str]  # the ids built to get here


@dataclass
class PlanReport:
    """What `pkg build` would do, and with a stage what `pkg publish` would do."""

    planned: list[PlannedArtifact]
    staged: StagePlan | None = None

    @property
    def to_build(self) -> int:
        return sum(item.to_build for item in self.planned)


@dataclass
class PublishReport:
    """What `pkg publish` built, planned and did."""

    artifacts: list[dict]  # build report rows
    built: list[PlannedArtifact]
    staged: StagePlan
    outcomes: list[Outcome] | None  # None when nothing was executed (dry run, or nothing to do)
    dry_run: bool
    elapsed: float = 0.0
    release: int | None = None  # the release this publish recorded (packager/deploy/releases.py)


@dataclass
class GcReport:
    """What `pkg gc` found: every candidate, kept or deleted, and why."""

    actions: list[GcAction]
    doomed: list[GcAction]  # the deletions among them
    deleted: int  # deletions made (0 on a dry run)
    dry_run: bool

    @property
    def kept(self) -> int:
        return len(self.actions) - len(self.doomed)


@dataclass
class DestroyReport:
    """What `pkg destroy` planned and did."""

    staged: StageDestroyPlan
    outcomes: list[Outcome] | None  # None when nothing was executed (dry run, or nothing to delete)
    dry_run: bool

    @property
    def deleted(self) -> int:
        return sum(o.status == "done" and o.action.kind.deletes for o in self.outcomes or [])

    def to_json(self) -> dict:
        plan = self.staged.plan
        actions = [o.to_json() for o in self.outcomes] if self.outcomes else [a.to_json() for a in plan.actions]
        return {
            "stage": plan.target.stage,
            "account": plan.target.account,
            "region": plan.target.region,
            "actions": actions,
            "summary": {
                "to_delete": len(self.staged.deletions),
                "deleted": self.deleted,
                "dry_run": self.dry_run,
                "deletion_protection": self.staged.protected,
            },
        }


@dataclass
class CachePullReport:
    """What `pkg cache pull` merged."""

    uri: str
    changed: bool  # False when the shared index was unchanged since the last pull
    artifacts: int  # artifacts the shared cache holds
    published: int  # publish records merged


@dataclass
class CachePushReport:
    """What `pkg cache push` uploaded and merged."""

    uri: str
    uploaded: list[str]  # artifact keys written
    rows_added: int
    attempts: int


@dataclass
class CacheStatusReport:
    """The local cache beside the shared one."""

    uri: str
    local: int  # artifacts in the local cache
    shared: int  # artifacts in the shared cache
    local_only: int  # local artifacts not shared yet

    def to_json(self) -> dict:
        return {"uri": self.uri, "local": self.local, "shared": self.shared, "local_only": self.local_only}


@dataclass
class EnvCommand:
    """The shell command that creates or updates a dev env."""

    line: str
    manager_found: bool  # False: no micromamba, mamba or conda here; the command is for where one is


# -- pkg status and pkg logs (packager/deploy/status.py, packager/deploy/logs.py) ---------------------


@dataclass(frozen=True)
class Drifted:
    """One way a live function or job differs from what pkg recorded: the field, and which keys (never values)."""

    field: str  # as `pkg plan --refresh` names it: code_sha256, architecture, configuration, layers, tags, definition
    keys: tuple[str, ...] = ()  # configuration keys, `Environment.<NAME>`, `DefaultArguments.<--arg>`, tag keys

    def to_json(self) -> dict:
        return {"field": self.field, "keys": list(self.keys)}

    def __str__(self) -> str:
        return f"{self.field} ({', '.join(self.keys)})" if self.keys else self.field


@dataclass(frozen=True)
class LastRun:
    """The newest run of a job: its id, state, start and duration (so far, while it runs)."""

    run_id: str
    state: str
    started: str | None  # ISO 8601, UTC
    duration_seconds: float | None
    finished: bool

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "state": self.state,
            "started": self.started,
            "duration_seconds": self.duration_seconds,
            "finished": self.finished,
        }


class ResourceState(StrEnum):
    """Where a function or job of a stage stands."""

    LIVE = "live"  # recorded and found live
    MISSING = "missing"  # recorded, but not live (deleted out of band)
    NOT_RECORDED = "not recorded"  # live, but this index has no record of it (another machine published it)
    NOT_PUBLISHED = "not published"  # in src/, neither recorded nor live
    RECORDED = "recorded"  # an EMR run specification: nothing live to compare with


@dataclass
class ResourceStatus:
    """One function or job of a stage: what pkg recorded beside what AWS reports."""

    id: str  # artifact id
    name: str  # the AWS name
    state: ResourceState
    recorded_code: str | None  # Lambda CodeSha256, or the script's S3 location
    live_code: str | None
    last_modified: str | None
    drift: list[Drifted]
    pending: bool = False  # a publish was interrupted between an AWS call and its record
    last_run: LastRun | None = None
    release: int | None = None  # the release that deployed what it runs now (packager/deploy/status.py)

    @property
    def drifted(self) -> bool:
        return bool(self.drift) or self.state is ResourceState.MISSING

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "state": str(self.state),
            "release": self.release,
            "code": {"recorded": self.recorded_code, "live": self.live_code},
            "last_modified": self.last_modified,
            "drifted": self.drifted,
            "drift": [item.to_json() for item in self.drift],
            "pending": self.pending,
            "last_run": self.last_run.to_json() if self.last_run else None,
        }


@dataclass
class StatusReport:
    """`pkg status --stage S`: every function and job of the stage."""

    stage: str
    account: str
    region: str
    resources: list[ResourceStatus]

    @property
    def drifted(self) -> list[ResourceStatus]:
        return [resource for resource in self.resources if resource.drifted]

    def to_json(self) -> dict:
        return {
            "stage": self.stage,
            "account": self.account,
            "region": self.region,
            "resources": [resource.to_json() for resource in self.resources],
            "summary": {"resources": len(self.resources), "drifted": len(self.drifted)},
        }


@dataclass
class HistoryReport:
    """`pkg history`: a stage's releases, oldest first (release objects that failed their checks are left out)."""

    stage: str
    location: str  # s3://bucket/pkg-releases/<account>/<region>/<stage>/
    releases: list[Release]


@dataclass
class DiffReport:
    """`pkg diff`: what changed from one release to another."""

    stage: str
    old: Release
    new: Release
    changes: list[Change]


@dataclass
class RollbackReport:
    """`pkg rollback`: the release restored, every step with its outcome, and the release it recorded."""

    stage: str
    target: Release
    outcomes: list[Outcome]
    release: int | None
    elapsed: float = 0.0

    @property
    def mutating_calls(self) -> int:
        return sum(outcome.action.calls for outcome in self.outcomes if outcome.status == "done")


@dataclass
class PromoteReport:
    """`pkg promote`: the source release, the target stage's plan (and outcomes), the release it recorded."""

    source: Release
    staged: StagePlan
    outcomes: list[Outcome] | None
    dry_run: bool
    release: int | None
    elapsed: float = 0.0

    @property
    def mutating_calls(self) -> int:
        if self.outcomes is None:
            return self.staged.plan.mutating_calls
        return sum(outcome.action.calls for outcome in self.outcomes if outcome.status == "done")
