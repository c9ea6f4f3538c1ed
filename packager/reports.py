"""What the workflows of packager.app return: typed reports that packager.render prints as text or JSON.

`BuildReport` is a plain class: a no-op `pkg build` returns one and must not pay for building
dataclasses at import; it lives in packager/app.py. This module is imported only by the commands
that do more than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packager.builders.sources import ArtifactSpec
    from packager.builders.builder import PlannedArtifact
    from packager.deploy.executor import Outcome
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
        return sum(outcome.action.kind.calls for outcome in self.outcomes if outcome.status == "done")
