"""Lambda versions and aliases: after a function's own steps, publish a version and move its alias there.

Every function pkg publishes runs behind an alias (`live` unless `[tool.pkg.lambda] alias` says
otherwise): callers and triggers use the alias ARN, a release (packager/deploy/releases.py)
records the version each alias points at, and `pkg rollback` moves the aliases back. A published
version is immutable (code, configuration and layers), so the alias is the one thing that moves.

Planned after the function's steps, from the index row (which records the alias, its version and
that version's digest): a function unchanged since its alias moved needs no call and no read. A
row without an alias (a stage published before aliases existed, or a lost index) is checked
against the live alias once: a version of the running code is published (no code update) when
there is none.
"""

from __future__ import annotations

from dataclasses import replace

from cache.index import PublishedRecord
from packager.deploy.actions import SKIP, Action, ActionKind, StageInputs
from packager.deploy.lambda_plan import FunctionResource
from packager.deploy.records import FunctionRow, version_digest
from packager.model import ArtifactId

DEFAULT_ALIAS = "live"

# The steps after which the function runs something no version holds yet.
_CHANGES_VERSION = frozenset(
    {ActionKind.CREATE_FUNCTION, ActionKind.UPDATE_FUNCTION_CODE, ActionKind.UPDATE_FUNCTION_CONFIGURATION}
)


def plan_function_version(
    function: FunctionResource, alias: str, steps: list[Action], stored: PublishedRecord | None, live
) -> list[Action]:
    """publish_version (then the alias moves) when the function runs something its alias doesn't point at.

    `steps` are the function's own planned actions; `live` (a LiveState) is read only when the row
    records no alias of that name.
    """
    params = {"FunctionName": function.name, "Alias": alias}
    if function.code.code_sha256:
        params["CodeSha256"] = function.code.code_sha256  # Lambda refuses to publish other code

    def publish(reason: str, alias_exists: bool | None) -> list[Action]:
        # Whether the alias exists decides UpdateAlias or CreateAlias; None: unknown, UpdateAlias is tried first.
        action = Action(
            function.artifact_id, ActionKind.PUBLISH_VERSION, reason, function.name,
            {**params, "AliasExists": alias_exists}, resource_id=function.artifact_id,
        )
        return [action]

    recorded = FunctionRow.from_details(stored.details) if stored is not None else None
    known = recorded is not None and recorded.alias is not None and recorded.alias.name == alias
    if any(step.kind is ActionKind.CREATE_FUNCTION for step in steps):
        return publish(f"alias {alias} -> version 1 of the new function", False)
    if any(step.kind in _CHANGES_VERSION for step in steps):
        return publish(f"alias {alias} -> a version of what these steps leave", True if known else None)
    # The state the function keeps: what this plan adopts from AWS, else what the index records.
    adopted = next((step.record for step in reversed(steps) if step.kind is SKIP and step.record), None)
    details = adopted if adopted is not None else (stored.details if stored is not None else None)
    row = FunctionRow.from_details(details) if details is not None else None
    if row is None or row.state is None:
        return publish(f"alias {alias} -> a version of the function", None)
    digest = version_digest(row.state)
    if row.alias is not None and row.alias.name == alias and row.alias.digest == digest:
        return []
    found = live.function_alias(function.name, alias)
    if found is not None and found.digest == digest and all(step.kind is SKIP for step in steps):
        return [
            Action(
                function.artifact_id,
                SKIP,
                f"alias {alias} already points at version {found.version} of what runs: recording it",
                function.name,
                record=replace(row, alias=found).to_details(),
                resource_id=function.artifact_id,
            )
        ]
    if found is None:
        return publish(f"no alias {alias} yet: the running code becomes a version, {alias} points at it", False)
    return publish(f"alias {alias} points at version {found.version}, not at what runs now", True)


def plan_versions(inputs: StageInputs, functions: list[FunctionResource], actions: list[Action]) -> list[Action]:
    """The version and alias step of every function, after its own steps (the executor keeps their order)."""
    steps: dict[str, list[Action]] = {}
    for action in actions:
        steps.setdefault(action.id, []).append(action)
    planned: list[Action] = []
    for function in functions:
        short_name = ArtifactId.parse(function.artifact_id).short_name
        alias = inputs.config.lambda_settings(short_name, inputs.target.stage).get("alias", DEFAULT_ALIAS)
        stored = inputs.recorded.get(function.artifact_id)
        planned += plan_function_version(function, alias, steps.get(function.artifact_id, []), stored, inputs.live)
    return planned
