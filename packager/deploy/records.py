"""The one owner of what the index's `published.details` holds for each kind of published resource.

Every row is a typed value with `from_details` / `to_details`; the stored JSON is exactly what
earlier versions wrote (the index sorts keys), so old indexes read unchanged. Row kinds:

- `LayerVersionRow` (`<layer artifact>@<input hash>`): one layer version ever published (and
  whether `pkg gc` has deleted it since);
- `FunctionRow` (`lambda/function/<name>`): a function as last confirmed, or `missing` / `pending`;
  with the alias pkg moves and the version it points at (`AliasState`);
- `UploadRow` (`<artifact>@<key>`): one S3 object ever uploaded (and whether `pkg gc` deleted it);
- `GlueJobRow` (`<glue service>/job/<name>`): a Glue job's definition and tags;
- `EmrRunRow` (`emr/job/<name>`): the run specification `pkg run` starts;
- a removed row (any id): the resource was deleted (`removed_details`); readers treat it as no row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from packager.model import ArtifactId, ArtifactIdError, Role, Service

if TYPE_CHECKING:
    from cache.index import PublishedRecord


def configuration_hash(configuration: dict) -> str:
    """A short digest of a function configuration, stored beside it."""
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()[:32]


# Where a recorded configuration keeps its environment: one digest per variable, never the value.
ENVIRONMENT_DIGESTS = "VariableDigests"
_ENVIRONMENT_DIGEST_SALT = b"pkg-environment-1\0"  # bump to re-digest every recorded environment


def environment_digests(variables: dict) -> dict[str, str]:
    """Each variable's digest (over its name and value), sorted by name: says which keys differ, not their values."""
    return {
        key: hashlib.sha256(_ENVIRONMENT_DIGEST_SALT + f"{key}\0{value}".encode()).hexdigest()[:32]
        for key, value in sorted(variables.items())
    }


def without_environment_values(configuration: dict) -> dict:
    """A function configuration with its Environment variables' values replaced by their digests.

    What the index, the shared index and `pkg plan --json` hold; the planner compares the wanted
    configuration through the same function. Idempotent: a configuration already digested (or a
    row written before digests, which held values) comes out digested.
    """
    environment = configuration.get("Environment") or {}
    if ENVIRONMENT_DIGESTS in environment:
        digests = dict(sorted(environment[ENVIRONMENT_DIGESTS].items()))
    else:
        digests = environment_digests(environment.get("Variables") or {})
    return {**configuration, "Environment": {ENVIRONMENT_DIGESTS: digests}}


def changed_environment_keys(old: dict | None, new: dict | None) -> list[str]:
    """The names of the Environment variables that differ between two (digested) configurations."""
    before = ((old or {}).get("Environment") or {}).get(ENVIRONMENT_DIGESTS, {})
    after = ((new or {}).get("Environment") or {}).get(ENVIRONMENT_DIGESTS, {})
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


@dataclass(frozen=True)
class LayerVersionRow:
    """A layer version published (or adopted) from one input."""

    layer_name: str
    arn: str
    version: int
    code_sha256: str | None = None  # absent for an adopted version (ListLayerVersions doesn't say)
    deleted: bool = False  # `pkg gc` deleted it: a publish of this input publishes a new version

    @classmethod
    def from_details(cls, details: dict) -> LayerVersionRow:
        return cls(
            details["layer_name"],
            details["arn"],
            details["version"],
            details.get("code_sha256"),
            details.get("deleted") is True,
        )

    def to_details(self) -> dict:
        details: dict = {"layer_name": self.layer_name, "arn": self.arn, "version": self.version}
        if self.code_sha256 is not None:
            details["code_sha256"] = self.code_sha256
        if self.deleted:
            details["deleted"] = True
        return details


@dataclass(frozen=True)
class FunctionStatus:
    """Where a live function's last change ended: `State` (its creation) and `LastUpdateStatus`, with AWS's reasons.

    Lambda applies changes asynchronously; a creation that ended Failed leaves a function that can only
    be deleted and created again ("you must delete and recreate the function", Lambda function states).
    """

    state: str | None = None  # Pending | Active | Inactive | Failed
    state_reason: str | None = None
    last_update_status: str | None = None  # InProgress | Successful | Failed
    last_update_reason: str | None = None

    @classmethod
    def from_configuration(cls, configuration: dict) -> FunctionStatus:
        return cls(
            configuration.get("State"),
            configuration.get("StateReason"),
            configuration.get("LastUpdateStatus"),
            configuration.get("LastUpdateStatusReason"),
        )

    @property
    def creation_failed(self) -> bool:
        return self.state == "Failed"

    @property
    def update_failed(self) -> bool:
        return self.last_update_status == "Failed"


@dataclass(frozen=True)
class FunctionState:
    """A function's managed state: what the planner compares, live or recorded.

    Its configuration never holds Environment values, only their digests (see
    `without_environment_values`): what is recorded, pushed or printed can't leak them.
    """

    arn: str | None
    code_sha256: str | None
    architecture: str | None
    configuration: dict | None
    layers: tuple[str, ...] = ()
    tags: dict = field(default_factory=dict)
    # Read live only (GetFunction), never recorded or compared: where Lambda's last change ended.
    status: FunctionStatus | None = field(default=None, compare=False)
    # Lambda's RevisionId of this state: an update carries it, so one made by anyone else since is refused.
    revision_id: str | None = None

    def __post_init__(self) -> None:
        if self.configuration is not None:
            object.__setattr__(self, "configuration", without_environment_values(self.configuration))

    @classmethod
    def from_configuration(cls, configuration: dict, tags: dict | None) -> FunctionState:
        """A GetFunction / CreateFunction / Update* answer in the planner's shape (the keys pkg manages)."""
        variables = (configuration.get("Environment") or {}).get("Variables", {})
        return cls(
            configuration["FunctionArn"],
            configuration["CodeSha256"],
            (configuration.get("Architectures") or ["x86_64"])[0],
            {
                "Role": configuration.get("Role"),
                "Handler": configuration.get("Handler"),
                "Runtime": configuration.get("Runtime"),
                "MemorySize": configuration.get("MemorySize"),
                "Timeout": configuration.get("Timeout"),
                "Description": configuration.get("Description", ""),
                "Environment": {"Variables": variables},  # digested by __post_init__
            },
            tuple(layer["Arn"] for layer in configuration.get("Layers", [])),
            # aws:* tags belong to AWS services (e.g. CloudFormation) and can't be changed.
            dict(sorted((k, v) for k, v in (tags or {}).items() if not k.startswith("aws:"))),
            status=FunctionStatus.from_configuration(configuration),
            revision_id=configuration.get("RevisionId"),
        )

    @classmethod
    def from_details(cls, details: dict) -> FunctionState:
        return cls(
            details.get("arn"),
            details.get("code_sha256"),
            details.get("architecture"),
            details.get("configuration"),
            tuple(details.get("layers", [])),
            details.get("tags") or {},
            revision_id=details.get("revision_id"),
        )

    def to_details(self) -> dict:
        details = {
            "arn": self.arn,
            "code_sha256": self.code_sha256,
            "architecture": self.architecture,
            "configuration": self.configuration,
            "layers": list(self.layers),
            "tags": self.tags,
        }
        if self.revision_id is not None:  # absent in rows written before revisions were recorded
            details["revision_id"] = self.revision_id
        return details


def version_digest(state: FunctionState) -> str:
    """What a published version of a function holds (code, architecture, configuration, layers), as one digest.

    Tags are left out: they belong to the function, not to a version. A version's answer
    (PublishVersion, GetFunction with a Qualifier) digests the same as the $LATEST it was made from.
    """
    held = [state.code_sha256, state.architecture, state.configuration, list(state.layers)]
    return hashlib.sha256(json.dumps(held, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AliasState:
    """The alias pkg moves (`live` by default) and the published version it points at, with that version's digest."""

    name: str
    version: str
    digest: str

    @classmethod
    def from_details(cls, details: object) -> AliasState | None:
        if not isinstance(details, dict):
            return None
        name, version, digest = details.get("name"), details.get("version"), details.get("digest")
        if not all(isinstance(value, str) for value in (name, version, digest)):
            return None
        return cls(name, version, digest)  # type: ignore[arg-type]

    def to_details(self) -> dict:
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class FunctionRow:
    """A function as pkg last confirmed it; `pending` while a run's updates are unfinished,
    `missing` once `plan --refresh` saw it deleted."""

    state: FunctionState | None
    configuration_hash: str | None = None
    pending: bool = False
    alias: AliasState | None = None  # absent in a row written before versions and aliases

    @property
    def missing(self) -> bool:
        return self.state is None

    @classmethod
    def confirmed(cls, state: FunctionState) -> FunctionRow:
        """A row for a state AWS just reported, with its configuration's digest."""
        return cls(state, configuration_hash(state.configuration) if state.configuration is not None else None)

    @classmethod
    def gone(cls) -> FunctionRow:
        return cls(None)

    @classmethod
    def from_details(cls, details: dict) -> FunctionRow:
        if details.get("missing"):
            return cls(None, pending=bool(details.get("pending")))
        return cls(
            FunctionState.from_details(details),
            details.get("configuration_hash"),
            bool(details.get("pending")),
            AliasState.from_details(details.get("alias")),
        )

    def to_details(self) -> dict:
        details: dict = {"missing": True} if self.state is None else self.state.to_details()
        if self.state is not None and self.configuration_hash is not None:
            details["configuration_hash"] = self.configuration_hash
        if self.state is not None and self.alias is not None:
            details["alias"] = self.alias.to_details()
        if self.pending:
            details["pending"] = True
        return details

    def with_state(self, **changes: object) -> FunctionRow:
        """This row with some of its state's fields replaced (its digest and alias are kept: see `rehashed`)."""
        state = replace(self.state or FunctionState(None, None, None, None), **changes)  # type: ignore[arg-type]
        return FunctionRow(state, self.configuration_hash, self.pending, self.alias)

    def rehashed(self) -> FunctionRow:
        """This row with the digest of its current configuration."""
        if self.state is None or self.state.configuration is None:
            return self
        return replace(self, configuration_hash=configuration_hash(self.state.configuration))


@dataclass(frozen=True)
class UploadRow:
    """One object put in the artifact bucket (its key holds the content's hash)."""

    bucket: str
    key: str
    deleted: bool = False  # `pkg gc` deleted the object: a publish that needs it uploads it again

    @classmethod
    def from_details(cls, details: dict) -> UploadRow:
        return cls(details["bucket"], details["key"], details.get("deleted") is True)

    def to_details(self) -> dict:
        details: dict = {"bucket": self.bucket, "key": self.key}
        if self.deleted:
            details["deleted"] = True
        return details


@dataclass(frozen=True)
class GlueJobRow:
    """A Glue job as last confirmed: its definition (None once seen deleted) and its tags."""

    name: str
    definition: dict | None
    tags: dict | None = None  # absent in a row written before tags were recorded

    @classmethod
    def from_details(cls, details: dict) -> GlueJobRow:
        return cls(details.get("name", ""), details.get("definition"), details.get("tags"))

    def to_details(self) -> dict:
        details: dict = {"name": self.name, "definition": self.definition}
        if self.tags is not None:
            details["tags"] = self.tags
        return details


@dataclass(frozen=True)
class EmrRunRow:
    """How `pkg run` starts an EMR job (EMR has no job resource to publish)."""

    name: str
    spec: dict

    @classmethod
    def from_details(cls, details: dict) -> EmrRunRow:
        return cls(details["name"], details["spec"])

    def to_details(self) -> dict:
        return {"name": self.name, "spec": self.spec}


def with_pending(details: dict, pending: bool) -> dict:
    """A row's details flagged (or no longer flagged) as having steps still to confirm."""
    if pending:
        return {**details, "pending": True}
    return {key: value for key, value in details.items() if key != "pending"}


def arn_of(details: dict) -> str | None:
    """The ARN a function or layer version row records, if any."""
    return details.get("arn")


def missing_details() -> dict:
    """The row of a function `plan --refresh` saw deleted."""
    return FunctionRow.gone().to_details()


# A deleted resource's row is overwritten with this, not deleted: the shared index merges rows three
# ways, so a deleted row would come back from the next pull; a changed one wins like any newer write.
REMOVED = "removed"


def removed_details() -> dict:
    """The row of a resource pkg deleted (removed from src/, or its stage destroyed)."""
    return {REMOVED: True}


def is_removed(details: dict) -> bool:
    """Whether a row says its resource was deleted (read it as no row at all)."""
    return details.get(REMOVED) is True


def describes_nothing_live(details: dict) -> bool:
    """Whether a row names nothing that still exists: a resource pkg deleted (`is_removed`), or a layer
    version or object `pkg gc` deleted (its row kept, marked `deleted`, so a publish knows why it is gone)."""
    return is_removed(details) or details.get("deleted") is True


def without_removed(rows: dict[str, PublishedRecord]) -> dict[str, PublishedRecord]:
    """The rows of resources that exist (as far as the index knows): removed rows left out."""
    return {key: row for key, row in rows.items() if not is_removed(row.details)}


def unit_of(resource_id: str) -> ArtifactId | None:
    """The function or job a row describes; None for a layer version or upload row (`<artifact>@…`: a
    fact, not what runs), and for anything else."""
    if "@" in resource_id:
        return None
    try:
        artifact = ArtifactId.parse(resource_id)
    except (ArtifactIdError, ValueError):
        return None
    if (artifact.service is Service.LAMBDA and artifact.role is Role.FUNCTION) or (
        artifact.service.is_job and artifact.role is Role.JOB
    ):
        return artifact
    return None
