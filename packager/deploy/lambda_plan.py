"""desired artifacts + recorded state (+ live state) -> the actions `pkg publish` performs, each with its reason.

The chalice model: resources are plain data (`LayerResource`, `FunctionResource`), the planner
compares them with what the index recorded for this account/region/stage and, where asked or
where nothing is recorded, with what AWS reports through a read-only `LiveState`. It returns a
list of `Action`s named after the AWS operation each performs; it never calls a mutating API and
never imports boto3 (the executor in packager/deploy/ does both).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

from cache.index import PublishedRecord
from packager.config import Config
from packager.deploy.actions import (
    SKIP,
    Action,
    ActionKind,
    Drift,
    LayerRef,
    PublishPlan,
    ServicePlan,
    StageInputs,
    Target,
)
from packager.deploy.diff import TagDiff, describe_change, describe_layers
from packager.deploy.limits import (
    LAMBDA_REQUEST_MAX_BYTES,
    check_function_configuration,
    check_function_limits,
    fits_inline,
)
from packager.deploy.live import LiveState
from packager.deploy.naming import check_function_name, check_layer_name, check_name_parts, function_name, layer_name
from packager.deploy.naming import lambda_code_key, stage_tags
from packager.deploy.records import (
    FunctionRow,
    FunctionState,
    FunctionStatus,
    LayerVersionRow,
    changed_environment_keys,
    without_environment_values,
)
from packager.deploy.republish import FALLBACK, LayerFallback
from packager.deploy.settings import require_bucket, require_role
from packager.errors import PlanError
from packager.model import Kind
from packager.units import format_size


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
        return lambda_code_key(self.sha256) if self.sha256 else None

    @property
    def needs_s3(self) -> bool:
        return self.size is not None and not fits_inline(self.size)


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


def check_limits(function: FunctionResource, layers: dict[str, LayerResource]) -> None:
    """Lambda's per-function limits (the same check `pkg build` makes), before any AWS call."""
    sizes = [(layer, layers[layer].code.unzipped_size) for layer in function.layers]
    check_function_limits(function.artifact_id, function.code.unzipped_size, sizes)
    check_function_configuration(function.artifact_id, function.configuration)


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
        if spec.kind == Kind.LAMBDA_FUNCTION:
            function_settings[spec.id] = config.lambda_settings(spec.artifact.short_name, stage)
    # A layer is compatible with the runtimes and architectures of the functions that use it.
    users: dict[str, list[dict]] = {}
    for item in artifacts:
        for used in item.spec.uses:
            users.setdefault(used, []).append(function_settings.get(item.spec.id, {}))
    for item in artifacts:
        spec = item.spec
        if spec.kind != Kind.LAMBDA_LAYER:
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
        if spec.kind != Kind.LAMBDA_FUNCTION:
            continue
        function = spec.artifact.short_name
        name = function_name(project, stage, function)
        check_function_name(name, spec.id)
        function_table = function_settings[spec.id]
        role = require_role(function_table, spec.id, "lambda", "function")
        configuration = {
            "Role": role,
            "Handler": spec.meta.get("handler", f"{function}.handler"),
            "Runtime": function_table["runtime"],
            "MemorySize": function_table["memory"],
            "Timeout": function_table["timeout"],
            "Description": function_table.get("description", ""),
            "Environment": {"Variables": dict(sorted(function_table.get("environment", {}).items()))},
        }
        missing = [used for used in spec.uses if used not in layers]
        if missing:
            raise PlanError(f"{spec.id}: uses {', '.join(missing)}, which is not part of this build")
        resource = FunctionResource(
            spec.id,
            name,
            _code(spec, item.record, store),
            function_table["architecture"],
            configuration,
            tuple(spec.uses),
            dict(sorted({**function_table.get("tags", {}), **stage_tags(project, stage)}.items())),
        )
        check_limits(resource, layers)
        functions.append(resource)
    return list(layers.values()), functions


# -- planning ----------------------------------------------------------------------------------------


def _latest_layer_version(recorded: dict[str, PublishedRecord], artifact_id: str) -> LayerVersionRow | None:
    rows = [
        (row.published, LayerVersionRow.from_details(row.details))
        for key, row in recorded.items()
        if key.startswith(artifact_id + "@")
    ]
    latest = max(rows, key=lambda pair: (pair[0], pair[1].version), default=None)
    return None if latest is None else latest[1]


def _upload(code: CodeArtifact, artifact_id: str, name: str, bucket: str | None, live: LiveState) -> list[Action]:
    """A put_object action when the zip is too big for a direct upload and not yet in the bucket."""
    if not code.needs_s3:
        return []
    bucket = require_bucket(
        bucket,
        f"{artifact_id}: the zip is {code.size:,} bytes; as base64 in a request it would pass the"
        f" {LAMBDA_REQUEST_MAX_BYTES:,} bytes Lambda accepts",
    )
    key = code.s3_key
    assert key is not None  # needs_s3 means built
    if live.object_exists(bucket, key):
        return []
    return [
        Action(
            artifact_id,
            ActionKind.PUT_OBJECT,
            f"{format_size(code.size)} is over the direct-upload limit: through s3://{bucket}",
            name,
            {"Bucket": bucket, "Key": code.s3_key, "path": code.path, "sha256": code.sha256},
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
    return [
        action
        if action.kind is ActionKind.PUT_OBJECT
        else replace(action, resource_id=layer.resource_id, input_hash=layer.code.input_hash)
        for action in actions
    ]


def _plan_layer_steps(
    layer: LayerResource,
    recorded: dict[str, PublishedRecord],
    live: LiveState,
    refresh: bool,
    bucket: str | None,
    why: str | None,
) -> list[Action]:
    stored = recorded.get(layer.resource_id)
    row = LayerVersionRow.from_details(stored.details) if stored is not None else None
    if row is not None and row.layer_name == layer.name:
        version = row.version
        if row.deleted:
            reason = f"layer version {version} was deleted by gc"
        elif refresh and not any(v["arn"] == row.arn for v in live.layer_versions(layer.name)):
            reason = f"drift: version {version} was deleted"
        else:
            fallback = _layer_fallback(layer, row, bucket)
            return [
                Action(
                    layer.artifact_id,
                    SKIP,
                    f"version {version} published from this input",
                    layer.name,
                    {FALLBACK: fallback} if fallback else {},
                )
            ]
    else:
        for found in live.layer_versions(layer.name):
            if f"input:{layer.code.input_hash}" in found["description"]:
                details = LayerVersionRow(layer.name, found["arn"], found["version"]).to_details()
                return [
                    Action(
                        layer.artifact_id,
                        SKIP,
                        f"version {found['version']} already published from this input (not recorded): adopting it",
                        layer.name,
                        record=details,
                    )
                ]
        previous = _latest_layer_version(recorded, layer.artifact_id)
        if row is not None:  # the naming rule changed (a '.' Lambda refuses): a new layer, never a rename
            reason = f"new layer name (was {row.layer_name}, which AWS refuses): a new layer"
        elif previous is None:
            reason = "new layer"
        else:
            reason = f"input changed since version {previous.version}"
            if why:
                reason += f" ({why})"
    actions = _upload(layer.code, layer.artifact_id, layer.name, bucket, live)
    params = _publish_params(layer, bucket)
    actions.append(Action(layer.artifact_id, ActionKind.PUBLISH_LAYER_VERSION, reason, layer.name, params))
    return actions


def _publish_params(layer: LayerResource, bucket: str | None) -> dict:
    """PublishLayerVersion's parameters: the zip inline (its local path) or through the artifact bucket."""
    params: dict = {
        "LayerName": layer.name,
        "Description": layer.description,
        "Content": {"ZipFile": layer.code.path},
    }
    if layer.runtimes:
        params["CompatibleRuntimes"] = list(layer.runtimes)
    if layer.architectures:
        params["CompatibleArchitectures"] = list(layer.architectures)
    if layer.code.needs_s3:
        params["Content"] = {"S3Bucket": bucket, "S3Key": layer.code.s3_key}
    return params


def _layer_fallback(layer: LayerResource, row: LayerVersionRow, bucket: str | None) -> LayerFallback | None:
    """How the executor publishes a recorded version again if it turns out deleted (packager/deploy/republish.py)."""
    code = layer.code
    if code.path is None or (code.needs_s3 and not bucket):
        return None  # not built (`pkg plan`), or no bucket to go through: nothing to publish again from
    upload = {"Bucket": bucket, "Key": code.s3_key, "path": code.path} if code.needs_s3 else None
    return LayerFallback(
        layer.artifact_id,
        layer.resource_id,
        code.input_hash,
        row.layer_name,
        row.version,
        row.arn,
        _publish_params(layer, bucket),
        upload,
    )


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
    steps = _plan_function_steps(function, layer_arns, row, live, refresh, bucket, why, drift)
    actions = []
    for action in steps:
        if action.kind is not ActionKind.PUT_OBJECT:
            sends_code = action.kind in (ActionKind.CREATE_FUNCTION, ActionKind.UPDATE_FUNCTION_CODE)
            adopts_code = action.record is not None and action.record.get("code_sha256") == function.code.code_sha256
            action = replace(
                action,
                resource_id=function.artifact_id,
                input_hash=function.code.input_hash if sends_code or adopts_code else "",
            )
        actions.append(action)
    return actions


def _field(state: FunctionState, key: str) -> object:
    """One compared field of a function's state, as the index stores it (layers as a list)."""
    value = getattr(state, key)
    return list(value) if key == "layers" else value


_COMPARED = ("code_sha256", "architecture", "configuration", "layers", "tags")


def _plan_function_steps(
    function: FunctionResource,
    layer_arns: dict[str, str | LayerRef],
    stored: PublishedRecord | None,
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
    row = FunctionRow.from_details(stored.details) if stored is not None else None
    if row is not None and row.missing:
        row = None  # seen deleted by an earlier `plan --refresh`: plan as if never published
    # A run that died between an AWS call and its record leaves the row flagged: AWS may be ahead of it.
    pending = row is not None and row.pending
    live_state = live.function(name) if (refresh or pending or row is None) else None
    recorded = row.state if row is not None else None

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
        return uploads + [Action(artifact, ActionKind.CREATE_FUNCTION, reason, name, params)]

    if row is None and live_state is None:
        return create("new function")
    if live_state is not None and live_state.status is not None and live_state.status.creation_failed:
        return _recreate_failed(live_state.status, create("created again after its creation ended Failed"))
    if (refresh or pending) and row is not None and live_state is None:
        if refresh:
            drift.append(Drift(artifact, name, "function", "published", "missing"))
        return create("drift: function deleted out of band")

    current = live_state if live_state is not None else recorded
    assert current is not None
    if refresh and recorded is not None and live_state is not None:
        for key in _COMPARED:
            if _field(recorded, key) != _field(live_state, key):
                drift.append(Drift(artifact, name, key, _field(recorded, key), _field(live_state, key)))
    drifted = {d.field for d in drift if d.id == artifact}
    # Adopt what is live (record it first) when the index doesn't know it or may be behind it.
    adopting = row is None or pending
    prefix = "exists but not recorded: " if row is None else "after an interrupted run: " if pending else ""
    if live_state is not None and live_state.status is not None and live_state.status.update_failed:
        # Lambda kept the previous code and configuration: the comparison below plans the update again.
        prefix += f"its last update ended Failed ({live_state.status.last_update_reason or 'no reason given'}): "

    def why_changed(field_name: str, default: str) -> str:
        if field_name in drifted:
            return f"drift: {field_name} was changed out of band"
        return prefix + default

    actions: list[Action] = []
    wanted_sha = function.code.code_sha256
    if wanted_sha is None:
        # Not built yet: a different input hash than the recorded one means different code.
        code_changed = stored is None or row is None or stored.input_hash != function.code.input_hash
        code_changed = code_changed or "code_sha256" in drifted
    else:
        code_changed = current.code_sha256 != wanted_sha
    if code_changed or current.architecture != function.architecture:
        reason = why_changed("code_sha256", f"code changed ({why})" if why else "code changed")
        if not code_changed:
            reason = why_changed("architecture", f"architecture {current.architecture} -> {function.architecture}")
        actions += _upload(function.code, artifact, name, bucket, live)
        actions.append(
            Action(
                artifact,
                ActionKind.UPDATE_FUNCTION_CODE,
                reason,
                name,
                {"FunctionName": name, **code_params, "Architectures": [function.architecture], **_revision(current)},
            )
        )
    wanted_configuration = without_environment_values(function.configuration)  # as recorded and live are
    configuration_changed = current.configuration != wanted_configuration
    layers_changed = list(current.layers) != layers
    if configuration_changed or layers_changed:
        reasons = []
        if configuration_changed:
            change = _configuration_change(current.configuration, wanted_configuration)
            reason = why_changed("configuration", change)
            reasons.append(f"{reason} ({change})" if "configuration" in drifted else reason)
        if layers_changed:
            reasons.append(why_changed("layers", describe_layers(list(current.layers), layers)))
        actions.append(
            Action(
                artifact,
                ActionKind.UPDATE_FUNCTION_CONFIGURATION,
                "; ".join(reasons),
                name,
                {"FunctionName": name, **function.configuration, "Layers": layers, **_revision(current)},
            )
        )
    tags = TagDiff.between(current.tags or {}, function.tags)
    if tags.added:
        actions.append(
            Action(artifact, ActionKind.TAG_RESOURCE, why_changed("tags", tags.added_text), name, {"Tags": tags.added})
        )
    if tags.removed:
        actions.append(
            Action(
                artifact, ActionKind.UNTAG_RESOURCE, why_changed("tags", tags.removed_text), name,
                {"TagKeys": tags.removed},
            )
        )
    if not actions:
        if adopting:
            assert live_state is not None
            details = FunctionRow.confirmed(live_state).to_details()
            return [Action(artifact, SKIP, prefix + "already live as wanted: recording it", name, record=details)]
        return [Action(artifact, SKIP, "up to date (checked live)" if refresh else "up to date", name)]
    if adopting:
        assert live_state is not None
        # Record what is live first, so each later step updates a row that tells the truth.
        details = FunctionRow.confirmed(live_state).to_details()
        actions.insert(0, Action(artifact, SKIP, prefix + "recording what is live", name, record=details))
    return actions


def _recreate_failed(status: FunctionStatus, create: list[Action]) -> list[Action]:
    """DeleteFunction before `create` (uploads, then CreateFunction): Lambda's documented way out of a
    failed creation ("you must delete and recreate the function"); an update of it would be refused."""
    *uploads, created = create
    reason = f"its creation ended Failed ({status.state_reason or 'no reason given'}): AWS requires deleting it"
    delete = Action(created.id, ActionKind.DELETE_FAILED_FUNCTION, reason, created.name, {"FunctionName": created.name})
    return [*uploads, delete, created]


def _revision(state: FunctionState) -> dict:
    """`RevisionId` for an update of the function in `state` (read live, or recorded from AWS's last answer):
    an update made by anyone else since is then refused, not overwritten."""
    return {"RevisionId": state.revision_id} if state.revision_id else {}


def _configuration_change(current: dict | None, wanted: dict) -> str:
    """"MemorySize 128 -> 256, environment API_URL, TOKEN changed": the keys that differ, never a value."""
    if not current:
        return describe_change(current, wanted, "configuration")
    others = [key for key in sorted(set(current) | set(wanted)) if key != "Environment"]
    parts = []
    if any(current.get(key) != wanted.get(key) for key in others):
        parts.append(describe_change(current, wanted, "configuration", others))
    if keys := changed_environment_keys(current, wanted):
        parts.append(f"environment {', '.join(keys)} changed")
    return ", ".join(parts)


def _unsure(stored: PublishedRecord | None) -> bool:
    """A function the planner reads live anyway: never recorded, seen deleted, or left pending."""
    if stored is None:
        return True
    row = FunctionRow.from_details(stored.details)
    return row.missing or row.pending


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
        if last.kind is SKIP:
            source = last.record or recorded[layer.resource_id].details
            layer_arns[layer.artifact_id] = LayerVersionRow.from_details(source).arn
        else:
            layer_arns[layer.artifact_id] = LayerRef(layer.artifact_id)
    unknown = [f.name for f in functions if refresh or _unsure(recorded.get(f.artifact_id))]
    if len(unknown) > 1:
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


def plan_lambda(inputs: StageInputs) -> ServicePlan:
    """The Lambda share of a stage plan: layers, then functions; with each zip's CodeSha256 to check."""
    layers, functions = desired_resources(inputs.config, inputs.target, inputs.planned, inputs.store)
    plan = plan_publish(
        inputs.target, layers, functions, inputs.recorded, inputs.live, inputs.refresh, inputs.bucket, inputs.reasons
    )
    expected = {layer.artifact_id: layer.code.code_sha256 for layer in layers}
    expected.update({function.artifact_id: function.code.code_sha256 for function in functions})
    from packager.deploy.versions import plan_versions  # it builds on this module's resources

    return ServicePlan(plan_versions(inputs, functions, plan.actions), plan.drift, expected)
