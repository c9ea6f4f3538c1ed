"""The executor with fake handlers: what it records, in what order, and that the plan is never changed."""

from __future__ import annotations

import pytest

from cache.index import Index
from packager.deploy.actions import Action, ActionKind, LayerRef, PublishPlan, Target
from packager.deploy.executor import execute
from packager.deploy.handlers import Call
from packager.errors import PublishError

TARGET = Target("123456789012", "us-east-1", "dev")
LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:7"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:datamart-dev-ingest"
CONFIGURATION = {"Role": "r", "Handler": "ingest.handler", "Runtime": "python3.12", "MemorySize": 128, "Timeout": 3}


def configuration_answer(call: Call) -> dict:
    params = call.params
    return {
        "FunctionArn": FUNCTION_ARN,
        "CodeSha256": "c0de=",
        "Architectures": params.get("Architectures", ["x86_64"]),
        **{key: params[key] for key in CONFIGURATION if key in params},
        "Layers": [{"Arn": arn} for arn in params.get("Layers", [])],
    }


class FakeAws:
    """Handlers that answer like AWS would and remember every call they got."""

    def __init__(self, fail: ActionKind | None = None):
        self.calls: list[Call] = []
        self.fail = fail

    def handle(self, aws, call: Call) -> dict:
        self.calls.append(call)
        if call.action.kind is self.fail:
            raise PublishError(f"{call.action.kind} refused")
        if call.action.kind is ActionKind.PUBLISH_LAYER_VERSION:
            return {"arn": LAYER_ARN, "version": 7, "code_sha256": "1ayer="}
        if call.action.kind is ActionKind.CREATE_FUNCTION:
            return {"configuration": configuration_answer(call)}
        return {}

    @property
    def handlers(self):
        return {kind: self.handle for kind in ActionKind if kind is not ActionKind.SKIP}


@pytest.fixture
def index(tmp_path):
    index = Index(str(tmp_path / "index.sqlite"))
    yield index
    index.close()


def first_publish() -> PublishPlan:
    layer = Action(
        "lambda/internal_libs",
        ActionKind.PUBLISH_LAYER_VERSION,
        "new layer",
        "datamart-dev-internal_libs",
        {"LayerName": "datamart-dev-internal_libs", "Content": {"ZipFile": "/tmp/l.zip"}},
        resource_id="lambda/internal_libs@l1",
        input_hash="l1",
    )
    create = Action(
        "lambda/function/ingest",
        ActionKind.CREATE_FUNCTION,
        "new function",
        "datamart-dev-ingest",
        {
            "FunctionName": "datamart-dev-ingest",
            **CONFIGURATION,
            "Layers": [LayerRef("lambda/internal_libs")],
            "Tags": {},
        },
        resource_id="lambda/function/ingest",
        input_hash="f1",
    )
    tag = Action(
        "lambda/function/ingest",
        ActionKind.TAG_RESOURCE,
        "tags set: team",
        "datamart-dev-ingest",
        {"Tags": {"team": "data"}},
        resource_id="lambda/function/ingest",
    )
    return PublishPlan(TARGET, [layer, create, tag])


def test_each_confirmed_step_is_recorded_and_the_plan_stays_as_planned(index):
    plan = first_publish()
    planned = [(a.kind, dict(a.params)) for a in plan.actions]
    fake = FakeAws()

    outcomes = execute(plan, None, index, {}, {}, jobs=2, handlers=fake.handlers)

    assert [o.status for o in outcomes] == ["done", "done", "done"]
    assert outcomes[0].result == {"arn": LAYER_ARN}
    # Resolved values went into the calls, not into the plan.
    assert fake.calls[1].params["Layers"] == [LAYER_ARN]
    assert fake.calls[2].params["Resource"] == FUNCTION_ARN and fake.calls[2].previous is ActionKind.CREATE_FUNCTION
    assert [(a.kind, a.params) for a in plan.actions] == planned
    rows = index.published(TARGET.account, TARGET.region, TARGET.stage)
    assert rows["lambda/internal_libs@l1"].details == {
        "layer_name": "datamart-dev-internal_libs",
        "arn": LAYER_ARN,
        "version": 7,
        "code_sha256": "1ayer=",
    }
    function = rows["lambda/function/ingest"]
    assert function.input_hash == "f1"
    assert function.details["arn"] == FUNCTION_ARN and function.details["layers"] == [LAYER_ARN]
    assert function.details["tags"] == {"team": "data"} and "pending" not in function.details


def test_a_failure_stops_the_run_and_leaves_exactly_what_completed_recorded(index):
    plan = first_publish()
    fake = FakeAws(fail=ActionKind.TAG_RESOURCE)

    with pytest.raises(PublishError, match="tag_resource refused"):
        execute(plan, None, index, {}, {}, handlers=fake.handlers)

    rows = index.published(TARGET.account, TARGET.region, TARGET.stage)
    assert set(rows) == {"lambda/internal_libs@l1", "lambda/function/ingest"}
    assert rows["lambda/function/ingest"].details["tags"] == {}


def test_a_skip_that_records_writes_its_row_without_a_call(index):
    record = {"name": "datamart-dev-clean", "spec": {"entry_point": "s3://b/k.py"}}
    skip = Action("emr/job/clean", ActionKind.SKIP, "new run specification", "datamart-dev-clean",
                  record=record, resource_id="emr/job/clean")
    fake = FakeAws()

    outcomes = execute(PublishPlan(TARGET, [skip]), None, index, {}, {}, handlers=fake.handlers)

    assert [o.status for o in outcomes] == ["skipped"] and fake.calls == []
    assert index.published(TARGET.account, TARGET.region, TARGET.stage)["emr/job/clean"].details == record


def test_a_code_mismatch_reported_by_aws_is_refused(index):
    plan = first_publish()

    with pytest.raises(PublishError, match="CodeSha256"):
        execute(plan, None, index, {}, {"lambda/internal_libs": "other="}, handlers=FakeAws().handlers)

    assert index.published(TARGET.account, TARGET.region, TARGET.stage) == {}


def test_a_job_is_created_only_after_every_upload_is_confirmed(index):
    upload = Action(
        "glue_spark/job/orders",
        ActionKind.PUT_OBJECT,
        "new content",
        "s3://bucket/pkg/glue_spark/job-orders/s/orders.py",
        {"Bucket": "bucket", "Key": "pkg/glue_spark/job-orders/s/orders.py", "path": "/tmp/orders.py"},
        resource_id="glue_spark/job/orders@pkg/glue_spark/job-orders/s/orders.py",
    )
    libs = Action(
        "glue_spark/internal_libs",
        ActionKind.PUT_OBJECT,
        "new content",
        "s3://bucket/pkg/glue_spark/internal_libs/s/internal_libs.zip",
        {"Bucket": "bucket", "Key": "pkg/glue_spark/internal_libs/s/internal_libs.zip", "path": "/tmp/l.zip"},
        resource_id="glue_spark/internal_libs@pkg/glue_spark/internal_libs/s/internal_libs.zip",
    )
    create = Action(
        "glue_spark/job/orders",
        ActionKind.CREATE_JOB,
        "new job",
        "datamart-dev-orders",
        {"Name": "datamart-dev-orders"},
        resource_id="glue_spark/job/orders",
    )
    aws = FakeAws()

    def refuse_libs(session, call: Call) -> dict:
        if call.action.id == "glue_spark/internal_libs":
            raise PublishError("PutObject refused")
        return aws.handle(session, call)

    handlers = {**aws.handlers, ActionKind.PUT_OBJECT: refuse_libs}
    with pytest.raises(PublishError):
        execute(PublishPlan(TARGET, [upload, libs, create]), None, index, {}, {}, jobs=4, handlers=handlers)
    assert ActionKind.CREATE_JOB not in [call.action.kind for call in aws.calls]


def test_deletions_run_after_every_other_step_and_leave_a_removed_row(index):
    from cache.index import PublishedRecord

    when = "2026-01-01T00:00:00+00:00"
    old = PublishedRecord("lambda/function/report", "r1", {"arn": FUNCTION_ARN, "tags": {}}, when)
    index.record_published(TARGET.account, TARGET.region, TARGET.stage, old.resource_id, "r1", old.details)
    delete = Action(
        "lambda/function/report", ActionKind.DELETE_FUNCTION, "src/lambda/report.py removed", "datamart-dev-report",
        {"FunctionName": "datamart-dev-report"}, resource_id="lambda/function/report",
    )  # fmt: skip
    plan = first_publish()
    plan = PublishPlan(TARGET, [delete, *plan.actions])
    fake = FakeAws()

    execute(plan, None, index, {old.resource_id: old}, {}, handlers=fake.handlers)

    assert [call.action.kind for call in fake.calls][-1] is ActionKind.DELETE_FUNCTION
    assert index.published(*TARGET.__dict__.values())["lambda/function/report"].details == {"removed": True}

    failing = FakeAws(fail=ActionKind.CREATE_FUNCTION)  # a failure before: nothing is deleted
    with pytest.raises(PublishError):
        execute(PublishPlan(TARGET, [delete, *first_publish().actions]), None, index, {}, {}, handlers=failing.handlers)
    assert ActionKind.DELETE_FUNCTION not in [call.action.kind for call in failing.calls]
