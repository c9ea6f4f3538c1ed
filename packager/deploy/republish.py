"""A recorded layer version that turns out deleted is published again, instead of failing the publish.

`pkg gc` marks what it deleted in the index, and the planner publishes a new version instead of
attaching a marked one. A machine whose index has not seen the mark yet (or a version deleted by
hand) still plans to attach the old ARN: Lambda then refuses the CreateFunction or
UpdateFunctionConfiguration ("One or more LayerVersion does not exist"). The planner gives each
skipped layer a `LayerFallback` (how to publish it again from the same local zip); the executor,
told of such a refusal, checks which recorded versions are gone, publishes each once, and retries
the function's step once with the new ARNs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from packager.deploy.actions import Action, ActionKind

# The key of a skipped layer action's params that holds its LayerFallback.
FALLBACK = "fallback"
# What Lambda answers when a function step names a layer version that does not exist:
# InvalidParameterValueException on AWS, ResourceNotFoundException on some endpoints.
_MISSING_LAYER_CODES = frozenset({"InvalidParameterValueException", "ResourceNotFoundException"})


@dataclass(frozen=True)
class LayerFallback:
    """How to publish a recorded layer version again, should it turn out deleted."""

    artifact_id: str
    resource_id: str  # the layer version row: `<artifact>@<input hash>`
    input_hash: str
    layer_name: str
    version: int
    arn: str
    publish: dict  # PublishLayerVersion's parameters (Content.ZipFile is the local zip's path)
    upload: dict | None = None  # PutObject's ({Bucket, Key, path}), when the zip goes through S3

    def actions(self, reason: str) -> list[Action]:
        """The steps that publish it again (the upload first, when there is one)."""
        steps = []
        if self.upload is not None:
            steps.append(Action(self.artifact_id, ActionKind.PUT_OBJECT, reason, self.layer_name, self.upload))
        publish = Action(
            self.artifact_id,
            ActionKind.PUBLISH_LAYER_VERSION,
            reason,
            self.layer_name,
            self.publish,
            resource_id=self.resource_id,
            input_hash=self.input_hash,
        )
        return steps + [publish]


def fallback_of(action: Action) -> LayerFallback | None:
    """The fallback a skipped layer action carries, if any."""
    if action.kind is not ActionKind.SKIP:
        return None
    fallback = action.params.get(FALLBACK)
    return fallback if isinstance(fallback, LayerFallback) else None


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def may_be_missing_layer(error: Exception) -> bool:
    """Whether a function step's error may mean one of its layer versions does not exist."""
    return _error_code(error) in _MISSING_LAYER_CODES


# Performs one step: (action, parameters) -> what AWS answered (the executor's handlers).
Perform = Callable[[Action, dict], dict]


class LayerRepair:
    """Publishes again, once per run, the recorded layer versions a function step found deleted.

    Shared by the executor's workers: two functions on the same missing version get one new version.
    """

    def __init__(self, fallbacks: Mapping[str, LayerFallback]):
        self.fallbacks = dict(fallbacks)  # recorded ARN -> its fallback
        self.replaced: dict[str, str] = {}  # recorded ARN -> the ARN of the version published again
        self._lock = threading.Lock()

    def _exists(self, aws, fallback: LayerFallback) -> bool:
        client = aws.client("lambda")
        try:
            client.get_layer_version(LayerName=fallback.layer_name, VersionNumber=fallback.version)
        except Exception as error:
            if _error_code(error) == "ResourceNotFoundException":
                return False
            raise
        return True

    def repair(self, aws, layers: list[str], perform: Perform) -> tuple[list[str], list[tuple[Action, dict]]] | None:
        """The layer ARNs with each deleted recorded version replaced by a new one, and the steps that
        published them (with AWS's answers, to record); None when none of `layers` is a deleted version."""
        steps: list[tuple[Action, dict]] = []
        with self._lock:
            for arn in layers:
                fallback = self.fallbacks.get(arn)
                if fallback is None or arn in self.replaced or self._exists(aws, fallback):
                    continue
                reason = f"layer version {fallback.version} was deleted (found missing): published again"
                for action in fallback.actions(reason):
                    result = perform(action, action.params)
                    steps.append((action, result))
                    if action.kind is ActionKind.PUBLISH_LAYER_VERSION:
                        self.replaced[arn] = result["arn"]
            if not any(arn in self.replaced for arn in layers):
                return None
            return [self.replaced.get(arn, arn) for arn in layers], steps
