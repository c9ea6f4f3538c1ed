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
    from packager.deploy.destroy import StageDestroyPlan
    from packager.deploy.gc import GcAction
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
