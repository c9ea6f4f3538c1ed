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
    """The function's steps, with its version and alias step: publish_version (then the alias moves) when
    the function runs something its alias doesn't point at, or the alias recorded where it is found.

    `steps` are the function's own planned actions; `live` (a LiveState) is read only when the row
    records no alias of that name.
    """
    params = {"FunctionName": function.name, "Alias": alias}
    if function.code.code_sha256:
        params["CodeSha256"] = function.code.code_sha256  # Lambda refuses to publish other code

    def publish(reason: str, alias_exists: bool | None, own_steps: list[Action] = steps) -> list[Action]:
        # Whether the alias exists decides UpdateAlias or CreateAlias; None: unknown, UpdateAlias is tried first.
        by_create = any(step.params.get("Publish") for step in own_steps)
        action = Action(
            function.artifact_id, ActionKind.PUBLISH_VERSION, reason, function.name,
            {**params, "AliasExists": alias_exists, **({"PublishedByCreate": True} if by_create else {})},
            resource_id=function.artifact_id,
        )  # fmt: skip
        return [*own_steps, action]

    recorded = FunctionRow.from_details(stored.details) if stored is not None else None
    known = recorded is not None and recorded.alias is not None and recorded.alias.name == alias
    if any(step.kind is ActionKind.CREATE_FUNCTION for step in steps):
        return publish(f"alias {alias} -> version 1 of the new function", False, _published_by_create(steps))
    if any(step.kind in _CHANGES_VERSION for step in steps):
        return publish(f"alias {alias} -> a version of what these steps leave", True if known else None)
    # The state the function keeps: what this plan adopts from AWS (its first step), else what the index records.
    adopting = bool(steps) and steps[0].kind is SKIP and steps[0].record is not None
    details = steps[0].record if adopting else (stored.details if stored is not None else None)
    row = FunctionRow.from_details(details) if details is not None else None
    if row is None or row.state is None:
        return publish(f"alias {alias} -> a version of the function", None)
    digest = version_digest(row.state)
    if row.alias is not None and row.alias.name == alias and row.alias.digest == digest:
        return steps
    found = live.function_alias(function.name, alias)
    if found is not None and found.digest == digest:
        # Recorded before the other steps (tags): each of them then updates a row that has it.
        record = replace(row, alias=found).to_details()
        noted = f"alias {alias} already points at version {found.version} of what runs: recording it"
        if adopting:
            return [replace(steps[0], record=record, reason=f"{steps[0].reason}; {noted}"), *steps[1:]]
        artifact_id = function.artifact_id
        return [Action(artifact_id, SKIP, noted, function.name, record=record, resource_id=artifact_id), *steps]
    if found is None:
        return publish(f"no alias {alias} yet: the running code becomes a version, {alias} points at it", False)
    return publish(f"alias {alias} points at version {found.version}, not at what runs now", True)


def _published_by_create(steps: list[Action]) -> list[Action]:
    """`steps` with their CreateFunction publishing version 1 itself (`Publish`), when no step after it
    changes what a version holds: the version step then only creates the alias (one call, not two)."""
    created = max(i for i, step in enumerate(steps) if step.kind is ActionKind.CREATE_FUNCTION)
    if any(step.kind in _CHANGES_VERSION for step in steps[created + 1 :]):
        return steps
    create = steps[created]
    return [*steps[:created], replace(create, params={**create.params, "Publish": True}), *steps[created + 1 :]]


def plan_versions(inputs: StageInputs, functions: list[FunctionResource], actions: list[Action]) -> list[Action]:
    """`actions` with every function's version and alias step after its own steps (the executor keeps their order)."""
    steps: dict[str, list[Action]] = {}
    for action in actions:
        steps.setdefault(action.id, []).append(action)
    for function in functions:
        short_name = ArtifactId.parse(function.artifact_id).short_name
        alias = inputs.config.lambda_settings(short_name, inputs.target.stage).get("alias", DEFAULT_ALIAS)
        stored = inputs.recorded.get(function.artifact_id)
        mine = steps.get(function.artifact_id, [])
        steps[function.artifact_id] = plan_function_version(function, alias, mine, stored, inputs.live)
    return [action for group in steps.values() for action in group]
