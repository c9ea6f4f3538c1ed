"""desired artifacts + recorded state (+ live state) -> the actions `pkg publish` performs, each with its reason.

The chalice model: resources are plain data (`LayerResource`, `FunctionResource`), the planner
compares them with what the index recorded for this account/region/stage and, where asked or
where nothing is recorded, with what AWS reports through a read-only `LiveState`. It returns a
list of `Action`s named after the AWS operation each performs; it never calls a mutating API and
never imports boto3 (the executor in packager/deploy/ does both).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from cache.index import PublishedRecord
from packager.config import Config
from packager.errors import ConfigError, PlanError
from packager.runtimes import LAMBDA_LIMITS

FUNCTION_KIND = "lambda-function"
LAYER_KIND = "lambda-layer"
SKIP = "skip"
# Where code too big for a direct upload goes in the artifact bucket (the key holds the sha256).
S3_PREFIX = "pkg/lambda"

_NAME_PART = re.compile(r"[A-Za-z0-9_-]+\Z")


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
class CodeArtifact:
    """A built (or not yet built) zip: what to upload and how to recognise it live."""

    input_hash: str
    sha256: str | None  # hex; None until built
    path: str | None
    size: int | None
    unzipped_size: int | None

    @property
    def code_sha256(self) -> str | None:
        """Lambda's CodeSha256: base64 of the raw SHA-256 digest."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode() if self.sha256 else None

    @property
    def s3_key(self) -> str | None:
        return f"{S3_PREFIX}/{self.sha256}.zip" if self.sha256 else None

    @property
    def needs_s3(self) -> bool:
        return self.size is not None and self.size >= LAMBDA_LIMITS.direct_upload_zip


@dataclass(frozen=True)
class LayerResource:
    """One layer artifact (internal_libs or a dependency chunk) as it should be published."""

    artifact_id: str
    name: str
    code: CodeArtifact
    runtimes: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()

    @property
    def resource_id(self) -> str:
        """Layer versions are immutable facts: one index row per input hash."""
        return f"{self.artifact_id}@{self.code.input_hash}"

    @property
    def description(self) -> str:
        """Carries the input hash so a version published by a run that died before recording is found again."""
        return f"pkg {self.artifact_id} input:{self.code.input_hash}"


@dataclass(frozen=True)
class FunctionResource:
    """One Lambda function as it should be: code, configuration, layers (artifact ids, in order), tags."""

    artifact_id: str
    name: str
    code: CodeArtifact
    architecture: str
    configuration: dict  # UpdateFunctionConfiguration's parameters, minus FunctionName and Layers
    layers: tuple[str, ...]
    tags: dict

    @property
    def configuration_hash(self) -> str:
        return configuration_hash(self.configuration)


def configuration_hash(configuration: dict) -> str:
    return hashlib.sha256(json.dumps(configuration, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LayerRef:
    """The ARN of a layer version this very plan publishes; the executor resolves it."""

    artifact_id: str

    def __str__(self) -> str:
        return f"<new version of {self.artifact_id}>"


@dataclass
class Action:
    """One step of a publish: an AWS operation (or `skip`), why, and what it needs."""

    id: str  # artifact id
    action: str
    reason: str
    name: str  # the AWS resource name
    params: dict = field(default_factory=dict)
    record: dict | None = None  # for `skip`: a state to record without calling AWS (adoption)
    resource_id: str = ""  # the index row this action updates once AWS confirms ("" for none)
    input_hash: str = ""  # the input the row then stands for ("" keeps the row's)

    @property
    def kind(self) -> str:
        """The AWS operation (or skip); callers outside packager/deploy read this, not `action`."""
        return self.action

    def to_json(self) -> dict:
        return {"id": self.id, "action": self.action, "reason": self.reason, "name": self.name}


@dataclass
class Drift:
    """A live function that differs from what pkg published."""

    id: str
    name: str
    field: str
    recorded: object
    live: object

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "field": self.field, "recorded": self.recorded, "live": self.live}


@dataclass
class PublishPlan:
    target: Target
    actions: list[Action]
    drift: list[Drift] = field(default_factory=list)

    @property
    def mutating_calls(self) -> int:
        return sum(action.action != SKIP for action in self.actions)


class LiveState(Protocol):
    """Read-only views of AWS the planner may consult (GetFunction, ListLayerVersions, HeadObject)."""

    def function(self, name: str) -> dict | None:
        """{"code_sha256", "architecture", "configuration", "layers", "tags", "arn"} or None if absent."""

    def layer_versions(self, name: str) -> list[dict]:
        """[{"arn", "version", "description"}] of one layer, newest first."""

    def object_exists(self, bucket: str, key: str) -> bool:
        """Whether s3://bucket/key exists."""


# -- naming and limits ---------------------------------------------------------------------------


def function_name(project: str, stage: str, function: str) -> str:
    return f"{project}-{stage}-{function}"


def layer_name(project: str, stage: str, artifact_id: str) -> str:
    """Stable names: internal_libs, internal_libs_deps-<k>, <function>-deps-<k>."""
    parts = artifact_id.split("/")
    if parts[0] == "lambda":
        parts = parts[1:]
    if parts[0] == "function_deps" and len(parts) == 3:
        suffix = f"{parts[1]}-deps-{parts[2]}"
    else:
        suffix = "-".join(parts)
    return f"{project}-{stage}-{suffix}"


def check_name_parts(project: str, stage: str) -> None:
    for label, value in (("tool.pkg.project", project), (f"tool.pkg.stages.{stage}", stage)):
        if not _NAME_PART.match(value):
            raise ConfigError(
                f"{label}: '{value}' can't be part of a Lambda name",
                hint="use letters, digits, '-' and '_' only",
            )


def check_function_name(name: str, artifact_id: str) -> None:
    limit = LAMBDA_LIMITS.function_name_length
    if len(name) > limit:
        raise PlanError(
            f"{artifact_id}: function name '{name}' is {len(name)} characters; Lambda takes at most {limit}",
            hint="shorten the project, stage or file name (the name is <project>-<stage>-<function>)",
        )


def check_layer_name(name: str, artifact_id: str, target: Target) -> None:
    prefix = f"arn:{target.partition}:lambda:{target.region}:{target.account}:layer:"
    # Leave room for a 5-digit version number: the ARN of every future version must fit.
    room = LAMBDA_LIMITS.layer_version_arn_length - len(prefix) - len(":99999")
    limit = min(room, LAMBDA_LIMITS.layer_name_length)
    if len(name) > limit:
        raise PlanError(
            f"{artifact_id}: layer name '{name}' is {len(name)} characters; in {target.region} it can take"
            f" at most {limit} (Lambda caps a layer version ARN at {LAMBDA_LIMITS.layer_version_arn_length})",
            hint="shorten the project, stage or function name",
        )


def _check_function_limits(function: FunctionResource, layers: dict[str, LayerResource]) -> None:
    limits = LAMBDA_LIMITS
    if len(function.layers) > limits.layers_per_function:
        raise PlanError(
            f"{function.artifact_id}: {len(function.layers)} layers; Lambda allows {limits.layers_per_function}"
            " per function",
            hint="merge dependency sets so internal_libs, its deps and the function's deps fit in 5 layers",
        )
    sizes = [function.code.unzipped_size] + [layers[layer].code.unzipped_size for layer in function.layers]
    if all(size is not None for size in sizes) and sum(sizes) > limits.unzipped_total:
        parts = ", ".join(
            f"{artifact} {size / 1e6:.1f} MB"
            for artifact, size in zip((function.artifact_id, *function.layers), sizes)
        )
        raise PlanError(
            f"{function.artifact_id}: code plus layers unzip to {sum(sizes):,} bytes; Lambda allows"
            f" {limits.unzipped_total:,} ({parts})",
            hint="drop dependencies from the function or internal_libs requirements",
        )
    description = function.configuration.get("Description", "")
    if len(description) > limits.description_length:
        raise PlanError(
            f"{function.artifact_id}: description is {len(description)} characters; Lambda takes at most"
            f" {limits.description_length}"
        )
    variables = function.configuration.get("Environment", {}).get("Variables", {})
    size = sum(len(key.encode()) + len(value.encode()) for key, value in variables.items())
    if size > limits.environment_bytes:
        raise PlanError(
            f"{function.artifact_id}: environment variables take {size} bytes; Lambda allows"
            f" {limits.environment_bytes} per function",
            hint="move large values to SSM Parameter Store or S3",
        )


# -- desired state ---------------------------------------------------------------------------------


def _code(spec, record, store) -> CodeArtifact:
    if record is None:
        return CodeArtifact(spec.input_hash, None, None, None, None)
    return CodeArtifact(spec.input_hash, record.sha256, store.abspath(record.path), record.size, record.unzipped_size)


def desired_resources(
    config: Config, target: Target, artifacts: list, store
) -> tuple[list[LayerResource], list[FunctionResource]]:
    """The layers and functions a stage should have, from the build plan's artifacts.

    Each item of `artifacts` has `.spec` (ArtifactSpec) and `.record` (ArtifactRecord, or None when
    not built yet); `store` resolves record paths. Names and limits are checked here, before any AWS call.
    """
    stage = target.stage
    project = config.project
    check_name_parts(project, stage)
    layers: dict[str, LayerResource] = {}
    functions: list[FunctionResource] = []
    function_settings: dict[str, dict] = {}
    for item in artifacts:
        spec = item.spec
        if spec.kind == FUNCTION_KIND:
            function = spec.id.rsplit("/", 1)[-1]
            function_settings[spec.id] = config.lambda_settings(function, stage)
    # A layer is compatible with the runtimes and architectures of the functions that use it.
    users: dict[str, list[dict]] = {}
    for item in artifacts:
        for used in item.spec.uses:
            users.setdefault(used, []).append(function_settings.get(item.spec.id, {}))
    for item in artifacts:
        spec = item.spec
        if spec.kind != LAYER_KIND:
            continue
        name = layer_name(project, stage, spec.id)
        check_layer_name(name, spec.id, target)
        settings = users.get(spec.id, [])
        runtimes = spec.settings.get("runtime")
        layers[spec.id] = LayerResource(
            spec.id,
            name,
            _code(spec, item.record, store),
            tuple(sorted({runtimes} if runtimes else {s["runtime"] for s in settings if "runtime" in s})),
            tuple(sorted({s["architecture"] for s in settings if "architecture" in s})),
        )
    for item in artifacts:
        spec = item.spec
        if spec.kind != FUNCTION_KIND:
            continue
        function = spec.id.rsplit("/", 1)[-1]
        name = function_name(project, stage, function)
        check_function_name(name, spec.id)
        settings = function_settings[spec.id]
        role = settings.get("role")
        if not role:
            raise ConfigError(
                f"{spec.id}: no execution role: set tool.pkg.lambda.role",
                hint='e.g. role = "arn:aws:iam::123456789012:role/datamart-lambda" (per stage or function too)',
            )
        configuration = {
            "Role": role,
            "Handler": spec.meta.get("handler", f"{function}.handler"),
            "Runtime": settings["runtime"],
            "MemorySize": settings["memory"],
            "Timeout": settings["timeout"],
            "Description": settings.get("description", ""),
            "Environment": {"Variables": dict(sorted(settings.get("environment", {}).items()))},
        }
        missing = [used for used in spec.uses if used not in layers]
        if missing:
            raise PlanError(f"{spec.id}: uses {', '.join(missing)}, which is not part of this build")
        resource = FunctionResource(
            spec.id,
            name,
            _code(spec, item.record, store),
            settings["architecture"],
            configuration,
            tuple(spec.uses),
            dict(sorted(settings.get("tags", {}).items())),
        )
        _check_function_limits(resource, layers)
        functions.append(resource)
    return list(layers.values()), functions


# -- planning ----------------------------------------------------------------------------------------


def _latest_layer_record(recorded: dict[str, PublishedRecord], artifact_id: str) -> PublishedRecord | None:
    rows = [row for key, row in recorded.items() if key.startswith(artifact_id + "@")]
    return max(rows, key=lambda row: (row.published, row.details.get("version", 0)), default=None)


def _upload(code: CodeArtifact, artifact_id: str, name: str, bucket: str | None, live: LiveState) -> list[Action]:
    """A put_object action when the zip is too big for a direct upload and not yet in the bucket."""
    if not code.needs_s3:
        return []
    if not bucket:
        raise ConfigError(
            f"{artifact_id}: the zip is {code.size:,} bytes, over Lambda's {LAMBDA_LIMITS.direct_upload_zip:,}"
            " direct-upload limit, and no artifact bucket is configured",
            hint="set tool.pkg.artifact_bucket (or tool.pkg.stages.<stage>.artifact_bucket)",
        )
    if live.object_exists(bucket, code.s3_key):
        return []
    return [
        Action(
            artifact_id,
            "put_object",
            f"{code.size / 1e6:.1f} MB is over the direct-upload limit: through s3://{bucket}",
            name,
            {"Bucket": bucket, "Key": code.s3_key, "path": code.path},
        )
    ]


def plan_layer(
    layer: LayerResource,
    recorded: dict[str, PublishedRecord],
    live: LiveState,
    refresh: bool,
    bucket: str | None,
    why: str | None,
) -> list[Action]:
    """publish_layer_version unless a version from this input is recorded or found live (adopted)."""
    actions = _plan_layer_steps(layer, recorded, live, refresh, bucket, why)
    for action in actions:
        if action.action != "put_object":
            action.resource_id, action.input_hash = layer.resource_id, layer.code.input_hash
    return actions


def _plan_layer_steps(
    layer: LayerResource,
    recorded: dict[str, PublishedRecord],
    live: LiveState,
    refresh: bool,
    bucket: str | None,
    why: str | None,
) -> list[Action]:
    row = recorded.get(layer.resource_id)
    if row is not None and row.details.get("layer_name") == layer.name:
        version = row.details["version"]
        if refresh and not any(v["arn"] == row.details["arn"] for v in live.layer_versions(layer.name)):
            reason = f"drift: version {version} was deleted"
        else:
            return [Action(layer.artifact_id, SKIP, f"version {version} published from this input", layer.name)]
    else:
        for version in live.layer_versions(layer.name):
            if f"input:{layer.code.input_hash}" in version["description"]:
                details = {"layer_name": layer.name, "arn": version["arn"], "version": version["version"]}
                return [
                    Action(
                        layer.artifact_id,
                        SKIP,
                        f"version {version['version']} already published from this input (not recorded): adopting it",
                        layer.name,
                        record=details,
                    )
                ]
        previous = _latest_layer_record(recorded, layer.artifact_id)
        if previous is None:
            reason = "new layer"
        else:
            reason = f"input changed since version {previous.details.get('version')}"
            if why:
                reason += f" ({why})"
    params = {
        "LayerName": layer.name,
        "Description": layer.description,
        "Content": {"ZipFile": layer.code.path},
    }
    if layer.runtimes:
        params["CompatibleRuntimes"] = list(layer.runtimes)
    if layer.architectures:
        params["CompatibleArchitectures"] = list(layer.architectures)
    actions = _upload(layer.code, layer.artifact_id, layer.name, bucket, live)
    if layer.code.needs_s3:
        params["Content"] = {"S3Bucket": bucket, "S3Key": layer.code.s3_key}
    actions.append(Action(layer.artifact_id, "publish_layer_version", reason, layer.name, params))
    return actions


def _state_of(details: dict) -> dict:
    """The comparable state of a function, from an index row's details or a live read."""
    return {
        "code_sha256": details.get("code_sha256"),
        "architecture": details.get("architecture"),
        "configuration": details.get("configuration"),
        "layers": list(details.get("layers", [])),
        "tags": details.get("tags", {}),
    }


def _describe_change(old: dict | None, new: dict) -> str:
    if not old:
        return "configuration changed"
    keys = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    shown = []
    for key in keys[:3]:
        before, after = old.get(key), new.get(key)
        if key == "Environment":
            shown.append("environment changed")
        else:
            shown.append(f"{key} {before} -> {after}")
    return ", ".join(shown) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def plan_function(
    function: FunctionResource,
    layer_arns: dict[str, str | LayerRef],
    row: PublishedRecord | None,
    live: LiveState,
    refresh: bool,
    bucket: str | None,
    why: str | None,
    drift: list[Drift],
) -> list[Action]:
    """create_function, or the updates (code, configuration, tags) that bring it to the wanted state.

    `drift` collects what `refresh` found live that differs from the index.
    """
    actions = _plan_function_steps(function, layer_arns, row, live, refresh, bucket, why, drift)
    for action in actions:
        if action.action == "put_object":
            continue
        action.resource_id = function.artifact_id
        if action.action in ("create_function", "update_function_code"):
            action.input_hash = function.code.input_hash
        elif action.record is not None and action.record.get("code_sha256") == function.code.code_sha256:
            action.input_hash = function.code.input_hash
    return actions


def _plan_function_steps(
    function: FunctionResource,
    layer_arns: dict[str, str | LayerRef],
    row: PublishedRecord | None,
    live: LiveState,
    refresh: bool,
    bucket: str | None,
    why: str | None,
    drift: list[Drift],
) -> list[Action]:
    name, artifact = function.name, function.artifact_id
    layers = [layer_arns[layer] for layer in function.layers]
    code_params = (
        {"S3Bucket": bucket, "S3Key": function.code.s3_key}
        if function.code.needs_s3
        else {"ZipFile": function.code.path}
    )
    if row is not None and row.details.get("missing"):
        row = None  # seen deleted by an earlier `plan --refresh`: plan as if never published
    # A run that died between an AWS call and its record leaves the row flagged: AWS may be ahead of it.
    pending = row is not None and bool(row.details.get("pending"))
    live_state = live.function(name) if (refresh or pending or row is None) else None
    recorded = _state_of(row.details) if row is not None else None

    def create(reason: str) -> list[Action]:
        params = {
            "FunctionName": name,
            **function.configuration,
            "Code": code_params,
            "Architectures": [function.architecture],
            "Layers": layers,
            "Tags": function.tags,
        }
        uploads = _upload(function.code, artifact, name, bucket, live)
        return uploads + [Action(artifact, "create_function", reason, name, params)]

    if row is None and live_state is None:
        return create("new function")
    if (refresh or pending) and row is not None and live_state is None:
        if refresh:
            drift.append(Drift(artifact, name, "function", "published", "missing"))
        return create("drift: function deleted out of band")

    current = live_state if live_state is not None else recorded
    if refresh and recorded is not None:
        for key in ("code_sha256", "architecture", "configuration", "layers", "tags"):
            if recorded[key] != live_state[key]:
                drift.append(Drift(artifact, name, key, recorded[key], live_state[key]))
    drifted = {d.field for d in drift if d.id == artifact}
    # Adopt what is live (record it first) when the index doesn't know it or may be behind it.
    adopting = row is None or pending
    prefix = "exists but not recorded: " if row is None else "after an interrupted run: " if pending else ""

    def why_changed(field_name: str, default: str) -> str:
        if field_name in drifted:
            return f"drift: {field_name} was changed out of band"
        return prefix + default

    actions: list[Action] = []
    wanted_sha = function.code.code_sha256
    if wanted_sha is None:
        # Not built yet: a different input hash than the recorded one means different code.
        code_changed = row is None or row.input_hash != function.code.input_hash or "code_sha256" in drifted
    else:
        code_changed = current["code_sha256"] != wanted_sha
    if code_changed or current["architecture"] != function.architecture:
        reason = why_changed("code_sha256", f"code changed ({why})" if why else "code changed")
        if not code_changed:
            reason = why_changed("architecture", f"architecture {current['architecture']} -> {function.architecture}")
        actions += _upload(function.code, artifact, name, bucket, live)
        actions.append(
            Action(
                artifact,
                "update_function_code",
                reason,
                name,
                {"FunctionName": name, **code_params, "Architectures": [function.architecture]},
            )
        )
    configuration_changed = current["configuration"] != function.configuration
    layers_changed = current["layers"] != layers
    if configuration_changed or layers_changed:
        reasons = []
        if configuration_changed:
            reasons.append(
                why_changed("configuration", _describe_change(current["configuration"], function.configuration))
            )
        if layers_changed:
            reasons.append(why_changed("layers", _describe_layers(current["layers"], layers)))
        actions.append(
            Action(
                artifact,
                "update_function_configuration",
                "; ".join(reasons),
                name,
                {"FunctionName": name, **function.configuration, "Layers": layers},
            )
        )
    live_tags = current["tags"] or {}
    added = {key: value for key, value in function.tags.items() if live_tags.get(key) != value}
    removed = sorted(key for key in live_tags if key not in function.tags)
    if added:
        actions.append(
            Action(artifact, "tag_resource", why_changed("tags", f"tags set: {', '.join(sorted(added))}"), name,
                   {"Tags": added})
        )
    if removed:
        actions.append(
            Action(artifact, "untag_resource", why_changed("tags", f"tags removed: {', '.join(removed)}"), name,
                   {"TagKeys": removed})
        )
    if not actions:
        if adopting:
            details = {"arn": live_state["arn"], **live_state}
            return [Action(artifact, SKIP, prefix + "already live as wanted: recording it", name, record=details)]
        return [Action(artifact, SKIP, "up to date (checked live)" if refresh else "up to date", name)]
    if adopting:
        # Record what is live first, so each later step updates a row that tells the truth.
        actions.insert(0, Action(artifact, SKIP, prefix + "recording what is live", name,
                                 record={"arn": live_state["arn"], **live_state}))
    return actions


def _describe_layers(old: list, new: list) -> str:
    def short(arn) -> str:
        return str(arn).rsplit(":layer:", 1)[-1]

    return "layers " + (", ".join(map(short, old)) or "(none)") + " -> " + (", ".join(map(short, new)) or "(none)")


_MISSING = PublishedRecord("", "", {"missing": True}, "")


def plan_publish(
    target: Target,
    layers: list[LayerResource],
    functions: list[FunctionResource],
    recorded: dict[str, PublishedRecord],
    live: LiveState,
    refresh: bool = False,
    bucket: str | None = None,
    reasons: dict[str, str] | None = None,
) -> PublishPlan:
    """Every action a publish of `target` needs, layers first; reads only (index rows, `live` reads)."""
    reasons = reasons or {}
    actions: list[Action] = []
    drift: list[Drift] = []
    layer_arns: dict[str, str | LayerRef] = {}
    for layer in layers:
        steps = plan_layer(layer, recorded, live, refresh, bucket, reasons.get(layer.artifact_id))
        actions += steps
        last = steps[-1]
        if last.action == SKIP:
            source = last.record or recorded[layer.resource_id].details
            layer_arns[layer.artifact_id] = source["arn"]
        else:
            layer_arns[layer.artifact_id] = LayerRef(layer.artifact_id)
    unknown = [
        f.name
        for f in functions
        if refresh or any((recorded.get(f.artifact_id) or _MISSING).details.get(flag) for flag in ("missing", "pending"))
    ]
    if len(unknown) > 1 and hasattr(live, "prefetch_functions"):
        live.prefetch_functions(unknown)
    for function in functions:
        actions += plan_function(
            function,
            layer_arns,
            recorded.get(function.artifact_id),
            live,
            refresh,
            bucket,
            reasons.get(function.artifact_id),
            drift,
        )
    return PublishPlan(target, actions, drift)
