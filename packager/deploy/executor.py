"""Perform a PublishPlan: one AWS call per action, each recorded in the index once AWS confirms it.

Layers and uploads go first (functions need the version ARNs), then functions and jobs. Each
resource's steps run in order in one worker; resources run in parallel. Workers only call AWS,
through the dispatch table of handlers (`packager/deploy/handlers.py`); the calling thread
records every confirmed step, so a failure or a kill leaves the index describing exactly what
AWS did, and the next run resumes from there. The plan is never changed: values known only now
(a layer version's ARN, a function's ARN) are resolved into new parameters for each call.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from cache.index import Index, PublishedRecord
from packager.deploy.actions import SKIP, Action, ActionKind, LayerRef, Outcome, PublishPlan
from packager.deploy.aws import AwsSession, explain_error
from packager.deploy.handlers import HANDLERS, Call, Handler
from packager.deploy.records import (
    AliasState,
    FunctionRow,
    FunctionState,
    GlueJobRow,
    LayerVersionRow,
    UploadRow,
    arn_of,
    missing_details,
    removed_details,
    with_pending,
)
from packager.deploy.republish import LayerRepair, fallback_of, may_be_missing_layer
from packager.errors import Interrupted, PkgError, PublishError

OnDone = Callable[[Outcome], None]
RowUpdate = Callable[[dict, Action, dict], dict]


def _function_update(before: dict, **changes: object) -> dict:
    return FunctionRow.from_details(before).with_state(**changes).to_details()


def _revision(result: dict) -> str | None:
    """The function's RevisionId once a change has ended (a handler reads it after waiting)."""
    return result.get("revision_id") or result["configuration"].get("RevisionId")


def _created_function(before: dict, action: Action, result: dict) -> dict:
    state = FunctionState.from_configuration(result["configuration"], action.params.get("Tags"))
    return FunctionRow.confirmed(replace(state, revision_id=_revision(result))).to_details()


def _updated_code(before: dict, action: Action, result: dict) -> dict:
    state = FunctionState.from_configuration(result["configuration"], None)
    return _function_update(
        before,
        arn=state.arn,
        code_sha256=state.code_sha256,
        architecture=state.architecture,
        revision_id=_revision(result),
    )


def _updated_configuration(before: dict, action: Action, result: dict) -> dict:
    state = FunctionState.from_configuration(result["configuration"], None)
    row = FunctionRow.from_details(before).with_state(
        arn=state.arn, configuration=state.configuration, layers=state.layers, revision_id=_revision(result)
    )
    return row.rehashed().to_details()


def _tagged(before: dict, action: Action, result: dict) -> dict:
    tags = FunctionRow.from_details(before).state
    current = tags.tags if tags is not None else {}
    return _function_update(before, tags=dict(sorted({**current, **action.params["Tags"]}.items())))


def _untagged(before: dict, action: Action, result: dict) -> dict:
    state = FunctionRow.from_details(before).state
    removed = set(action.params["TagKeys"])
    kept = {k: v for k, v in (state.tags if state is not None else {}).items() if k not in removed}
    return _function_update(before, tags=kept)


def _aliased(before: dict, action: Action, result: dict) -> dict:
    """The function's row with its alias where AWS just moved it."""
    row = FunctionRow.from_details(before)
    return replace(row, alias=AliasState.from_details(result["alias"])).to_details()


def _created_job(before: dict, action: Action, result: dict) -> dict:
    definition = {key: value for key, value in action.params.items() if key not in ("Name", "Tags")}
    return GlueJobRow(action.name, definition, action.params.get("Tags", {})).to_details()


def _updated_job(before: dict, action: Action, result: dict) -> dict:
    row = GlueJobRow.from_details(before)
    tags = row.tags if row.tags is not None else (action.record or {}).get("tags")  # a job not recorded before
    return GlueJobRow(action.name, action.params["JobUpdate"], tags).to_details()


def _glue_tags(before: dict, action: Action, result: dict) -> dict:
    row = GlueJobRow.from_details(before)
    return GlueJobRow(row.name, row.definition, (action.record or {})["tags"]).to_details()


# What a confirmed step makes its resource's row say (from the row before it and AWS's answer).
ROW_AFTER: Mapping[ActionKind, RowUpdate] = {
    ActionKind.SKIP: lambda before, action, result: dict(action.record or {}),
    ActionKind.PUT_OBJECT: lambda before, action, result: UploadRow(
        action.params["Bucket"], action.params["Key"]
    ).to_details(),
    ActionKind.PUBLISH_LAYER_VERSION: lambda before, action, result: LayerVersionRow(
        action.name, result["arn"], result["version"], result.get("code_sha256")
    ).to_details(),
    ActionKind.CREATE_FUNCTION: _created_function,
    ActionKind.UPDATE_FUNCTION_CODE: _updated_code,
    ActionKind.UPDATE_FUNCTION_CONFIGURATION: _updated_configuration,
    ActionKind.TAG_RESOURCE: _tagged,
    ActionKind.UNTAG_RESOURCE: _untagged,
    ActionKind.CREATE_JOB: _created_job,
    ActionKind.UPDATE_JOB: _updated_job,
    ActionKind.GLUE_TAG_RESOURCE: _glue_tags,
    ActionKind.GLUE_UNTAG_RESOURCE: _glue_tags,
    ActionKind.DELETE_FAILED_FUNCTION: lambda before, action, result: missing_details(),
    # A deleted resource's row says so (records.removed_details), rather than vanish: see records.py.
    ActionKind.DELETE_FUNCTION: lambda before, action, result: removed_details(),
    ActionKind.DELETE_JOB: lambda before, action, result: removed_details(),
    ActionKind.DELETE_LAYER_VERSION: lambda before, action, result: removed_details(),
    ActionKind.DELETE_OBJECT: lambda before, action, result: removed_details(),
    ActionKind.PUBLISH_VERSION: _aliased,
    ActionKind.UPDATE_ALIAS: _aliased,
}


def resolve(action: Action, layer_arns: Mapping[str, str], resource_arns: Mapping[str, str | None]) -> dict:
    """The parameters of one call: the plan's, with this run's layer version and function ARNs filled in."""
    params = action.params
    if "Layers" in params:
        layers = [layer_arns[layer.artifact_id] if isinstance(layer, LayerRef) else layer for layer in params["Layers"]]
        params = {**params, "Layers": layers}
    if action.kind in (ActionKind.TAG_RESOURCE, ActionKind.UNTAG_RESOURCE) and "Resource" not in params:
        # The ARN is known once the function exists: from the index, or a step just before.
        params = {**params, "Resource": resource_arns.get(action.resource_id)}
    return params


class _Recorder:
    """Turns confirmed steps into index rows (runs in the calling thread only)."""

    def __init__(self, index: Index, plan: PublishPlan, recorded: dict[str, PublishedRecord]):
        self.index = index
        self.target = plan.target
        self.rows = {key: (row.input_hash, dict(row.details)) for key, row in recorded.items()}
        self.remaining: collections.Counter = collections.Counter()

    def mark_pending(self, actions: list[Action]) -> None:
        """Before any call, flag every recorded function about to change (one transaction).

        Each row loses its flag with its last step; a run that dies midway leaves it, and the next
        plan then reads that function live instead of trusting a row AWS may have got ahead of.
        """
        self.remaining = collections.Counter(a.resource_id for a in actions if a.kind.updates_function)
        rows = []
        for resource_id in self.remaining:
            if resource_id in self.rows:
                input_hash, details = self.rows[resource_id]
                details = with_pending(details, True)
                self.rows[resource_id] = (input_hash, details)
                rows.append((resource_id, input_hash, details))
        if rows:
            t = self.target
            self.index.record_published_many(t.account, t.region, t.stage, rows)

    def arn(self, resource_id: str) -> str | None:
        return arn_of(self.rows.get(resource_id, ("", {}))[1])

    def save(self, action: Action, result: dict) -> None:
        if not action.resource_id:
            return
        input_hash, before = self.rows.get(action.resource_id, ("", {}))
        details = ROW_AFTER[action.kind](before, action, result)
        if action.kind.updates_function:
            self.remaining[action.resource_id] -= 1
        details = with_pending(details, self.remaining[action.resource_id] > 0)
        input_hash = action.input_hash or input_hash
        self.rows[action.resource_id] = (input_hash, details)
        t = self.target
        self.index.record_published(t.account, t.region, t.stage, action.resource_id, input_hash, details)


def _check_code(action: Action, result: dict, expected: str | None) -> None:
    """AWS must report the CodeSha256 of the zip we sent; anything else means a corrupt upload."""
    live = result.get("code_sha256") or result.get("configuration", {}).get("CodeSha256")
    if expected and live and live != expected:
        raise PublishError(
            f"{action.kind.value} {action.name}: AWS reports CodeSha256 {live}, the local zip has {expected}",
            hint="run `pkg cache verify --repair`, then `pkg publish` again",
        )


def _first_phase(action: Action, layer_ids: set[str]) -> bool:
    """Layer versions (with their uploads) and job uploads: immutable facts the functions and jobs point at.

    Decided per action, not per artifact: a job's own script upload goes first, its CreateJob after
    every upload of the phase is confirmed.
    """
    return action.id in layer_ids or "@" in action.resource_id


def execute(
    plan: PublishPlan,
    aws: AwsSession | None,
    index: Index,
    recorded: dict[str, PublishedRecord],
    expected_sha: dict[str, str | None],
    jobs: int = 8,
    on_done: OnDone | None = None,
    handlers: Mapping[ActionKind, Handler] = HANDLERS,
) -> list[Outcome]:
    """Run every action of `plan`; raises the first failure after recording everything that completed.

    The raised PkgError (Interrupted on Ctrl-C) carries every action with its outcome in `completed["actions"]`.

    `expected_sha` maps artifact ids to the CodeSha256 of their local zip, checked against AWS's
    answer; `handlers` performs each kind of action (a test passes fakes, and `aws` may then be None).
    """
    outcomes = [Outcome(action) for action in plan.actions]
    recorder = _Recorder(index, plan, recorded)
    layer_ids = {o.action.id for o in outcomes if o.action.kind is ActionKind.PUBLISH_LAYER_VERSION}
    # Deletions go last, once everything else is confirmed: a renamed function's new one exists first.
    deleting = [o for o in outcomes if o.action.kind.deletes]
    first = [o for o in outcomes if not o.action.kind.deletes and _first_phase(o.action, layer_ids)]
    rest = [o for o in outcomes if not o.action.kind.deletes and not _first_phase(o.action, layer_ids)]
    layer_arns: dict[str, str] = {}
    stop = threading.Event()
    errors: list[PkgError] = []
    repair = LayerRepair({fb.arn: fb for o in outcomes if (fb := fallback_of(o.action)) is not None})

    def settle(outcome: Outcome, result: dict | None, error: PkgError | None) -> None:
        """Record one confirmed step (calling thread only), or note its failure."""
        if error is not None or result is None:
            outcome.status = "failed"
            errors.append(error or PublishError(f"{outcome.action.kind.value} {outcome.action.name} failed"))
            stop.set()
            return
        action = outcome.action
        try:
            if action.kind.sends_code:
                _check_code(action, result, expected_sha.get(action.id))
        except PkgError as check_error:
            outcome.status = "failed"
            errors.append(check_error)
            stop.set()
            return
        if action.kind is SKIP and action.record is None:
            outcome.status = "skipped"
        else:
            recorder.save(action, result)
            outcome.status = "skipped" if action.kind is SKIP else "done"
        if _first_phase(action, layer_ids) and action.kind is not ActionKind.PUT_OBJECT:
            arn = result.get("arn") or arn_of(action.record or {}) or recorder.arn(action.resource_id)
            if arn:
                layer_arns[action.id] = arn
                outcome.result = {"arn": arn}
        if on_done:
            on_done(outcome)

    def run_phase(groups: list[list[Outcome]]) -> None:
        results: queue.Queue = queue.Queue()
        resource_arns = {o.action.resource_id: recorder.arn(o.action.resource_id) for g in groups for o in g}

        def work(group: list[Outcome]) -> None:
            previous: ActionKind | None = None
            revision: str | None = None  # the function's RevisionId after this worker's last update of it
            published: dict | None = None  # the version this worker's CreateFunction published, if it did
            try:
                for outcome in group:
                    if stop.is_set():
                        return
                    action = outcome.action
                    if action.kind is SKIP:
                        if action.record and arn_of(action.record):  # adopted: later steps need its ARN
                            resource_arns[action.resource_id] = arn_of(action.record)
                        results.put((outcome, {}, None))
                        continue
                    code_sha256 = expected_sha.get(action.id) if action.kind.sends_code else None
                    params = resolve(action, layer_arns, resource_arns)
                    call = Call(action, params, previous, revision, code_sha256, published)
                    try:
                        result = perform(call)
                    except PkgError as error:
                        results.put((outcome, None, error))
                        return
                    except Exception as error:  # botocore's errors, translated for the user
                        results.put((outcome, None, explain_error(error, action.kind.value, action.name)))
                        return
                    if "FunctionArn" in result.get("configuration", {}):
                        resource_arns[action.resource_id] = result["configuration"]["FunctionArn"]
                    previous = action.kind
                    revision = result.get("revision_id") or revision
                    published = result.get("published") or published
                    results.put((outcome, result, None))
            finally:
                results.put(None)

        def perform(call: Call) -> dict:
            """One call; a function step refused for a deleted layer version is retried once with it published again."""
            try:
                return handlers[call.action.kind](aws, call)  # type: ignore[arg-type]
            except Exception as error:
                layers = call.params.get("Layers")
                if not layers or not may_be_missing_layer(error):
                    raise
                repaired = repair.repair(
                    aws, list(layers), lambda step, params: handlers[step.kind](aws, Call(step, params))  # type: ignore[arg-type]
                )
                if repaired is None:
                    raise
                new_layers, steps = repaired
                for step, step_result in steps:
                    extra = Outcome(step)
                    outcomes.append(extra)  # in the report, and its row recorded, before the function's step
                    results.put((extra, step_result, None))
                again = replace(call, params={**call.params, "Layers": new_layers})  # its revision and digest too
                return handlers[call.action.kind](aws, again)  # type: ignore[arg-type]

        workers = max(1, min(jobs, len(groups)))
        started = finished = 0
        interrupted: BaseException | None = None
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                for group in groups:
                    pool.submit(work, group)
                    started += 1
            except KeyboardInterrupt as error:
                interrupted = error
                stop.set()
            while finished < started:
                try:
                    item = results.get()
                    if item is None:
                        finished += 1
                    else:
                        settle(*item)
                except KeyboardInterrupt as error:
                    # Ctrl-C: start nothing new, but record what AWS confirms while workers finish their call.
                    interrupted = interrupted or error
                    stop.set()
        # The pool has waited for every worker: record what a worker started by an interrupted loop confirmed.
        while not results.empty():
            item = results.get_nowait()
            if item is not None:
                settle(*item)
        if interrupted is not None:
            raise interrupted

    def groups_of(selected: list[Outcome]) -> list[list[Outcome]]:
        grouped: dict[str, list[Outcome]] = {}
        for outcome in selected:
            grouped.setdefault(outcome.action.id, []).append(outcome)
        return list(grouped.values())

    try:
        run_phase(groups_of(first))
        if not errors:
            recorder.mark_pending([outcome.action for outcome in rest])
            run_phase(groups_of(rest))
        if not errors and deleting:
            run_phase(groups_of(deleting))
    except KeyboardInterrupt:
        interrupted = Interrupted()
        interrupted.completed["actions"] = [outcome.to_json() for outcome in outcomes]
        raise interrupted from None
    if errors:
        # What completed stays reachable from the failure: `--json` reports it beside the error.
        errors[0].completed["actions"] = [outcome.to_json() for outcome in outcomes]
        raise errors[0]
    return outcomes
