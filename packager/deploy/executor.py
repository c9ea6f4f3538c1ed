"""Perform a PublishPlan: one AWS call per action, each recorded in the index once AWS confirms it.

Layers go first (functions need their version ARNs), then functions. Each resource's steps run
in order in one worker (waiting for the function to settle between updates); resources run in
parallel. Workers only call AWS; the calling thread records every confirmed step, so a failure
or a kill leaves the index describing exactly what AWS did, and the next run resumes from there.
"""

from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from cache.index import Index, PublishedRecord
from packager.errors import PkgError, PublishError
from packager.deploy.lambda_plan import SKIP, Action, LayerRef, PublishPlan, configuration_hash
from packager.deploy.aws import AwsSession, explain_error
from packager.deploy.live import function_state
from packager.builders.job_artifacts import JOB_SERVICES
from packager.deploy.glue import call_job_action

# Steps that change a function already recorded (flagged "pending" in its row until they are done).
_FUNCTION_UPDATES = frozenset({"update_function_code", "update_function_configuration", "tag_resource", "untag_resource"})
# Lambda rejects an update while the previous one is in progress (ResourceConflictException).
_WAIT = {"Delay": 1, "MaxAttempts": 300}


@dataclass
class Outcome:
    """What became of one planned action: done, skipped, or not run (after a failure)."""

    action: Action
    status: str = "not run"
    result: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**self.action.to_json(), "status": self.status, **self.result}


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def _with_zip(params: dict, key: str) -> dict:
    """`params` with the local zip path under params[key]["ZipFile"] replaced by its bytes."""
    content = params.get(key)
    if isinstance(content, dict) and "ZipFile" in content:
        return {**params, key: {**content, "ZipFile": _read(content["ZipFile"])}}
    return params


class _FunctionClient:
    """One resource's calls, in order, with the waits Lambda needs between updates."""

    def __init__(self, aws: AwsSession):
        self.aws = aws
        self.lam = aws.client("lambda")

    def call(self, action: Action, previous: str | None) -> dict:
        if action.id.split("/", 1)[0] in JOB_SERVICES:  # Glue and EMR jobs: packager/deploy/glue.py
            return call_job_action(self.aws, action)
        params = action.params
        lam = self.lam
        if action.action == "put_object":
            with open(params["path"], "rb") as body:
                self.aws.client("s3").put_object(Bucket=params["Bucket"], Key=params["Key"], Body=body)
            return {"s3_uri": f"s3://{params['Bucket']}/{params['Key']}"}
        if action.action == "publish_layer_version":
            answer = lam.publish_layer_version(**_with_zip(params, "Content"))
            return {
                "arn": answer["LayerVersionArn"],
                "version": answer["Version"],
                "code_sha256": answer.get("Content", {}).get("CodeSha256"),
            }
        if action.action in ("update_function_code", "update_function_configuration"):
            if previous == "create_function":
                lam.get_waiter("function_active_v2").wait(FunctionName=action.name, WaiterConfig=_WAIT)
            elif previous in ("update_function_code", "update_function_configuration"):
                lam.get_waiter("function_updated_v2").wait(FunctionName=action.name, WaiterConfig=_WAIT)
        if action.action == "create_function":
            if not params.get("Layers"):
                params = {key: value for key, value in params.items() if key != "Layers"}
            answer = lam.create_function(**_with_zip(params, "Code"))
            return {"configuration": answer}
        if action.action == "update_function_code":
            call = {key: value for key, value in params.items() if key != "ZipFile"}
            if "ZipFile" in params:
                call["ZipFile"] = _read(params["ZipFile"])
            return {"configuration": self._update(lam.update_function_code, action.name, call)}
        if action.action == "update_function_configuration":
            return {"configuration": self._update(lam.update_function_configuration, action.name, params)}
        if action.action in ("tag_resource", "untag_resource"):
            arn = params["Resource"]
            if action.action == "tag_resource":
                lam.tag_resource(Resource=arn, Tags=params["Tags"])
            else:
                lam.untag_resource(Resource=arn, TagKeys=params["TagKeys"])
            return {}
        raise PublishError(f"unknown action {action.action}")

    def _update(self, operation, name: str, params: dict) -> dict:
        """Call an update; if another update of the function is still running (a run killed midway,
        or someone else), wait for it to finish and try once more."""
        try:
            return operation(**params)
        except self.lam.exceptions.ResourceConflictException:
            self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
            return operation(**params)


def _resolve_layers(params: dict, layer_arns: dict[str, str]) -> dict:
    if "Layers" not in params:
        return params
    return {**params, "Layers": [layer_arns[l.artifact_id] if isinstance(l, LayerRef) else l for l in params["Layers"]]}


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
        self.remaining = collections.Counter(a.resource_id for a in actions if a.action in _FUNCTION_UPDATES)
        rows = []
        for resource_id in self.remaining:
            if resource_id in self.rows:
                input_hash, details = self.rows[resource_id]
                details = {**details, "pending": True}
                self.rows[resource_id] = (input_hash, details)
                rows.append((resource_id, input_hash, details))
        if rows:
            t = self.target
            self.index.record_published_many(t.account, t.region, t.stage, rows)

    def arn(self, resource_id: str) -> str | None:
        return self.rows.get(resource_id, ("", {}))[1].get("arn")

    def save(self, action: Action, result: dict) -> None:
        if not action.resource_id:
            return
        input_hash, details = self.rows.get(action.resource_id, ("", {}))
        kind = action.action
        if kind == "publish_layer_version":
            details = {"layer_name": action.name, **result}
        elif kind == SKIP:
            details = dict(action.record)
            if "configuration" in details:
                details["configuration_hash"] = configuration_hash(details["configuration"])
        elif kind == "create_function":
            state = function_state(result["configuration"], action.params.get("Tags"))
            details = {**state, "configuration_hash": configuration_hash(state["configuration"])}
        elif kind == "update_function_code":
            state = function_state(result["configuration"], details.get("tags"))
            details = {**details, "arn": state["arn"], "code_sha256": state["code_sha256"],
                       "architecture": state["architecture"]}
        elif kind == "update_function_configuration":
            state = function_state(result["configuration"], details.get("tags"))
            details = {**details, "arn": state["arn"], "configuration": state["configuration"],
                       "layers": state["layers"], "configuration_hash": configuration_hash(state["configuration"])}
        elif kind == "tag_resource":
            details = {**details, "tags": dict(sorted({**details.get("tags", {}), **action.params["Tags"]}.items()))}
        elif kind == "untag_resource":
            removed = set(action.params["TagKeys"])
            details = {**details, "tags": {k: v for k, v in details.get("tags", {}).items() if k not in removed}}
        if "details" in result:  # Glue and EMR job actions say what changed in their row
            details = {**details, **result["details"]}
        if kind in _FUNCTION_UPDATES:
            self.remaining[action.resource_id] -= 1
        if self.remaining[action.resource_id] > 0:
            details = {**details, "pending": True}
        else:
            details = {key: value for key, value in details.items() if key != "pending"}
        input_hash = action.input_hash or input_hash
        self.rows[action.resource_id] = (input_hash, details)
        t = self.target
        self.index.record_published(t.account, t.region, t.stage, action.resource_id, input_hash, details)


def _check_code(action: Action, result: dict, expected: str | None) -> None:
    """AWS must report the CodeSha256 of the zip we sent; anything else means a corrupt upload."""
    live = result.get("code_sha256") or result.get("configuration", {}).get("CodeSha256")
    if expected and live and live != expected:
        raise PublishError(
            f"{action.action} {action.name}: AWS reports CodeSha256 {live}, the local zip has {expected}",
            hint="run `pkg cache verify --repair`, then `pkg publish` again",
        )


OnDone = Callable[[Outcome], None]


def execute(
    plan: PublishPlan,
    aws: AwsSession,
    index: Index,
    recorded: dict[str, PublishedRecord],
    expected_sha: dict[str, str | None],
    jobs: int = 8,
    on_done: OnDone | None = None,
) -> list[Outcome]:
    """Run every action of `plan`; raises the first failure after recording everything that completed.

    `expected_sha` maps artifact ids to the CodeSha256 of their local zip, checked against AWS's answer.
    """
    outcomes = [Outcome(action) for action in plan.actions]
    recorder = _Recorder(index, plan, recorded)
    layer_ids = {o.action.id for o in outcomes if o.action.action == "publish_layer_version"}
    layer_ids |= {o.action.id for o in outcomes if "@" in o.action.resource_id}
    layer_arns: dict[str, str] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def settle(outcome: Outcome, result: dict | None, error: PkgError | None) -> None:
        """Record one confirmed step (calling thread only), or note its failure."""
        if error is not None:
            outcome.status = "failed"
            errors.append(error)
            stop.set()
            return
        action = outcome.action
        try:
            if action.action in ("create_function", "update_function_code", "publish_layer_version"):
                _check_code(action, result, expected_sha.get(action.id))
        except PkgError as check_error:
            outcome.status = "failed"
            errors.append(check_error)
            stop.set()
            return
        if action.action == SKIP and action.record is None:
            outcome.status = "skipped"
        else:
            recorder.save(action, result)
            outcome.status = "done" if action.action != SKIP else "skipped"
        if action.id in layer_ids:
            arn = result.get("arn") or (action.record or {}).get("arn") or recorder.arn(action.resource_id)
            if arn and action.action != "put_object":
                layer_arns[action.id] = arn
                outcome.result = {"arn": arn}
        if on_done:
            on_done(outcome)

    def run_phase(groups: list[list[Outcome]]) -> None:
        results: queue.Queue = queue.Queue()

        def work(group: list[Outcome]) -> None:
            previous = None
            try:
                client = _FunctionClient(aws)
                for outcome in group:
                    if stop.is_set():
                        return
                    action = outcome.action
                    if action.action == SKIP:
                        if action.record and action.record.get("arn"):  # adopted: later steps need its ARN
                            recorder_arns[action.resource_id] = action.record["arn"]
                        results.put((outcome, {}, None))
                        continue
                    if action.action in ("tag_resource", "untag_resource") and "Resource" not in action.params:
                        # The ARN is known once the function exists: from the index, or a step just before.
                        action.params["Resource"] = recorder_arns.get(action.resource_id)
                    try:
                        result = client.call(action, previous)
                    except PkgError as error:
                        results.put((outcome, None, error))
                        return
                    except Exception as error:  # botocore's errors, translated for the user
                        results.put((outcome, None, explain_error(error, action.action, action.name)))
                        return
                    if "configuration" in result and "FunctionArn" in result["configuration"]:
                        recorder_arns[action.resource_id] = result["configuration"]["FunctionArn"]
                    previous = action.action
                    results.put((outcome, result, None))
            finally:
                results.put(None)

        recorder_arns = {o.action.resource_id: recorder.arn(o.action.resource_id) for g in groups for o in g}
        workers = max(1, min(jobs, len(groups)))
        finished = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for group in groups:
                pool.submit(work, group)
            interrupted: BaseException | None = None
            while finished < len(groups):
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
            if interrupted is not None:
                raise interrupted

    def groups_of(selected: list[Outcome]) -> list[list[Outcome]]:
        grouped: dict[str, list[Outcome]] = {}
        for outcome in selected:
            grouped.setdefault(outcome.action.id, []).append(outcome)
        return list(grouped.values())

    run_phase(groups_of([o for o in outcomes if o.action.id in layer_ids]))
    if not errors:
        functions = [o for o in outcomes if o.action.id not in layer_ids]
        for outcome in functions:
            outcome.action.params = _resolve_layers(outcome.action.params, layer_arns)
        recorder.mark_pending([outcome.action for outcome in functions])
        run_phase(groups_of(functions))
    if errors:
        raise errors[0]
    return outcomes
