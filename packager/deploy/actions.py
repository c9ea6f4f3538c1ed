"""The vocabulary every planner and the executor share: where a publish goes, its typed steps, their outcomes.

An `Action` is one instruction of a plan (chalice's `APICall`): an AWS operation named by an
`ActionKind` with its parameters, or a `skip` that may record a state without calling AWS. Actions
are frozen: executing a plan never changes it; values known only while executing (the ARN of a
layer version this plan publishes, a function's ARN) are resolved into new parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cache.index import PublishedRecord
    from cache.store import Store
    from packager.builders.builder import PlannedArtifact
    from packager.config import Config
    from packager.deploy.live import LiveState


class ActionKind(StrEnum):
    """What one step does; the values are the action names `pkg plan --json` prints."""

    SKIP = "skip"
    PUT_OBJECT = "put_object"
    PUBLISH_LAYER_VERSION = "publish_layer_version"
    CREATE_FUNCTION = "create_function"
    UPDATE_FUNCTION_CODE = "update_function_code"
    UPDATE_FUNCTION_CONFIGURATION = "update_function_configuration"
    TAG_RESOURCE = "tag_resource"  # Lambda TagResource
    UNTAG_RESOURCE = "untag_resource"
    CREATE_JOB = "create_job"
    UPDATE_JOB = "update_job"
    GLUE_TAG_RESOURCE = "glue_tag_resource"  # Glue TagResource (another call than Lambda's)
    GLUE_UNTAG_RESOURCE = "glue_untag_resource"
    # Removals (packager/deploy/removal.py) and `pkg destroy` (packager/deploy/destroy.py): run after every other step.
    DELETE_FUNCTION = "delete_function"
    DELETE_JOB = "delete_job"
    DELETE_LAYER_VERSION = "delete_layer_version"
    DELETE_OBJECT = "delete_object"
    # DeleteFunction of a function whose creation ended Failed, just before it is created again (AWS's
    # documented way out): part of the create, so neither run last nor a deletion protection refuses.
    DELETE_FAILED_FUNCTION = "delete_failed_function"

    @property
    def deletes(self) -> bool:
        """A step that deletes a resource: refused on a stage with deletion_protection, run last."""
        return self in _DELETIONS
    # PublishVersion, then the alias moved to it: UpdateAlias (CreateAlias the first time). Two calls.
    PUBLISH_VERSION = "publish_version"
    UPDATE_ALIAS = "update_alias"  # a rollback: the alias back to a version a release ran

    @property
    def mutating(self) -> bool:
        """Whether performing it calls a mutating AWS API."""
        return self is not ActionKind.SKIP

    @property
    def calls(self) -> int:
        """How many mutating AWS calls performing it makes."""
        return 2 if self is ActionKind.PUBLISH_VERSION else int(self.mutating)

    @property
    def updates_function(self) -> bool:
        """A step that changes a function already recorded (its row is flagged pending until done)."""
        return self in _FUNCTION_UPDATES

    @property
    def sends_code(self) -> bool:
        """A step whose answer carries the CodeSha256 of the zip it sent."""
        return self in _SENDS_CODE


_FUNCTION_UPDATES = frozenset(
    {
        ActionKind.UPDATE_FUNCTION_CODE,
        ActionKind.UPDATE_FUNCTION_CONFIGURATION,
        ActionKind.TAG_RESOURCE,
        ActionKind.UNTAG_RESOURCE,
        # Not PUBLISH_VERSION: a row whose alias is behind AWS is found out by its digest (versions.py).
        # A rollback's alias move is: after a kill, the row would still say the alias runs $LATEST.
        ActionKind.UPDATE_ALIAS,
    }
)
_SENDS_CODE = frozenset(
    {ActionKind.CREATE_FUNCTION, ActionKind.UPDATE_FUNCTION_CODE, ActionKind.PUBLISH_LAYER_VERSION}
)
_DELETIONS = frozenset(
    {ActionKind.DELETE_FUNCTION, ActionKind.DELETE_JOB, ActionKind.DELETE_LAYER_VERSION, ActionKind.DELETE_OBJECT}
)
SKIP = ActionKind.SKIP


@dataclass(frozen=True)
class Target:
    """Where a stage publishes: the index keys every published row by these three."""

    account: str
    region: str
    stage: str

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"


@dataclass(frozen=True)
class LayerRef:
    """The ARN of a layer version this very plan publishes; the executor resolves it."""

    artifact_id: str

    def __str__(self) -> str:
        return f"<new version of {self.artifact_id}>"


@dataclass(frozen=True)
class Action:
    """One step of a publish: an AWS operation (or `skip`), why, and what it needs."""

    id: str  # artifact id
    kind: ActionKind
    reason: str
    name: str  # the AWS resource name
    params: dict = field(default_factory=dict)
    record: dict | None = None  # details to record without calling AWS (adoption), or a Glue tag step's new tags
    resource_id: str = ""  # the index row this action updates once AWS confirms ("" for none)
    input_hash: str = ""  # the input the row then stands for ("" keeps the row's)
    notice: bool = False  # a skip the user must read (pkg leaves something to them): always shown

    def to_json(self) -> dict:
        return {"id": self.id, "action": self.kind.value, "reason": self.reason, "name": self.name}

    @property
    def calls(self) -> int:
        """How many mutating AWS calls performing it makes: a version step after a CreateFunction that
        published version 1 itself only creates the alias."""
        return 1 if self.kind is ActionKind.PUBLISH_VERSION and self.published_by_create else self.kind.calls

    @property
    def published_by_create(self) -> bool:
        return bool(self.params.get("PublishedByCreate"))


@dataclass(frozen=True)
class Drift:
    """A live resource that differs from what pkg published."""

    id: str
    name: str
    field: str
    recorded: object
    live: object

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "field": self.field, "recorded": self.recorded, "live": self.live}


@dataclass
class PublishPlan:
    """Every action of one publish, in order, and the drift `--refresh` found."""

    target: Target
    actions: list[Action]
    drift: list[Drift] = field(default_factory=list)

    @property
    def mutating_calls(self) -> int:
        return sum(action.calls for action in self.actions)


@dataclass
class Outcome:
    """What became of one planned action: done, skipped, or not run (after a failure)."""

    action: Action
    status: str = "not run"
    result: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**self.action.to_json(), "status": self.status, **self.result}


@dataclass(frozen=True)
class StageInputs:
    """What every service's planner reads to plan one stage (reads only: the index rows and `live`)."""

    config: Config
    target: Target
    planned: list[PlannedArtifact]  # the build plan's artifacts
    store: Store  # resolves their files
    recorded: dict[str, PublishedRecord]  # the index rows of this account/region/stage
    live: LiveState
    refresh: bool
    bucket: str | None  # the stage's artifact bucket
    reasons: dict[str, str]  # artifact id -> why it is being built, for the actions' reasons


@dataclass
class ServicePlan:
    """One service planner's share of a stage plan."""

    actions: list[Action] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    expected_sha: dict[str, str | None] = field(default_factory=dict)  # artifact id -> local CodeSha256
