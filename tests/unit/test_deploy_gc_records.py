"""gc never breaks a later publish: its deletions are marked, the planner avoids them, the executor repairs them.

No AWS: the planner reads an in-memory live view, the executor calls fake handlers, and the
missing-version check reads a fake Lambda client.
"""

from __future__ import annotations

import pytest
from test_deploy_executor import FakeAws, configuration_answer
from test_publish_plan import TARGET, MemoryLive, function, kinds, layer, recorded_function, recorded_layer

from cache.index import Index
from packager.deploy.actions import ActionKind, PublishPlan
from packager.deploy.executor import execute
from packager.deploy.gc import GcAction, GcKind, record_deletions
from packager.deploy.handlers import Call
from packager.deploy.lambda_plan import plan_publish
from packager.deploy.records import LayerVersionRow, UploadRow
from packager.deploy.republish import FALLBACK, LayerFallback

OLD_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:1"
NEW_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:7"


@pytest.fixture
def index(tmp_path):
    index = Index(str(tmp_path / "index.sqlite"))
    yield index
    index.close()


def test_gc_marks_the_rows_of_what_it_deleted_in_every_stage_and_nothing_else(index):
    layer_row = LayerVersionRow("datamart-dev-internal_libs", OLD_ARN, 1).to_details()
    kept_row = LayerVersionRow("datamart-dev-internal_libs", OLD_ARN[:-1] + "2", 2).to_details()
    upload = UploadRow("bucket", "pkg/glue/s/a.py").to_details()
    index.record_published_many(
        TARGET.account,
        TARGET.region,
        "dev",
        [("lambda/internal_libs@l1", "l1", layer_row), ("lambda/internal_libs@l2", "l2", kept_row)],
    )
    index.record_published_many(TARGET.account, TARGET.region, "prod", [("glue/job/a@pkg/glue/s/a.py", "a1", upload)])
    deleted = [
        GcAction(GcKind.DELETE_LAYER_VERSION, OLD_ARN, "unused", {"LayerName": "x", "VersionNumber": 1}),
        GcAction(
            GcKind.DELETE_OBJECT,
            "s3://bucket/pkg/glue/s/a.py",
            "unused",
            {"Bucket": "bucket", "Key": "pkg/glue/s/a.py"},
        ),
    ]

    assert record_deletions(index, deleted) == 2
    assert record_deletions(index, deleted) == 0  # already marked: nothing new to push

    dev = index.published(TARGET.account, TARGET.region, "dev")
    assert LayerVersionRow.from_details(dev["lambda/internal_libs@l1"].details).deleted
    assert not LayerVersionRow.from_details(dev["lambda/internal_libs@l2"].details).deleted
    prod = index.published(TARGET.account, TARGET.region, "prod")
    assert UploadRow.from_details(prod["glue/job/a@pkg/glue/s/a.py"].details).deleted
    assert len(index.changed_published("s3://shared/cache")) == 3  # the marks reach the shared index like any row


def test_a_version_gc_deleted_is_never_attached_again_a_new_one_is_published():
    lib, ingest = layer("l1"), function("ingest")
    row = recorded_layer(lib, version=1)
    deleted = type(row)(row.resource_id, row.input_hash, {**row.details, "deleted": True}, row.published)
    recorded = {lib.resource_id: deleted, ingest.artifact_id: recorded_function(ingest, [OLD_ARN[:-1] + "2"])}

    plan = plan_publish(TARGET, [lib], [ingest], recorded, MemoryLive())

    assert kinds(plan) == [
        ("datamart-dev-internal_libs", "publish_layer_version"),
        ("datamart-dev-ingest", "update_function_configuration"),
    ]
    assert plan.actions[0].reason == "layer version 1 was deleted by gc"


def test_a_skipped_layer_carries_how_to_publish_it_again():
    lib, ingest = layer("l1"), function("ingest")
    recorded = {
        lib.resource_id: recorded_layer(lib, version=1),
        ingest.artifact_id: recorded_function(ingest, [OLD_ARN]),
    }

    plan = plan_publish(TARGET, [lib], [ingest], recorded, MemoryLive())

    skip = plan.actions[0]
    assert skip.kind is ActionKind.SKIP and plan.mutating_calls == 0
    fallback = skip.params[FALLBACK]
    assert fallback.arn == OLD_ARN and fallback.publish["Content"] == {"ZipFile": "/tmp/layer.zip"}


class MissingVersions:
    """A Lambda client whose GetLayerVersion knows only `present` (LayerName, VersionNumber) pairs."""

    class NotFound(Exception):
        response = {"Error": {"Code": "ResourceNotFoundException"}}

    def __init__(self, present=()):
        self.present = set(present)
        self.reads = 0

    def client(self, service):
        return self

    def get_layer_version(self, LayerName, VersionNumber):
        self.reads += 1
        if (LayerName, VersionNumber) not in self.present:
            raise self.NotFound("not found")
        return {}


class RefusedLayer(Exception):
    response = {"Error": {"Code": "InvalidParameterValueException", "Message": "Layer version does not exist"}}


def stale_plan():
    """Two functions moved back onto version 1 of a layer, which the index still records as usable."""
    fallback = LayerFallback(
        "lambda/internal_libs",
        "lambda/internal_libs@l1",
        "l1",
        "datamart-dev-internal_libs",
        1,
        OLD_ARN,
        {"LayerName": "datamart-dev-internal_libs", "Content": {"ZipFile": "/tmp/l.zip"}},
    )
    from packager.deploy.actions import Action

    skip = Action(
        "lambda/internal_libs",
        ActionKind.SKIP,
        "version 1 published from this input",
        "datamart-dev-internal_libs",
        {FALLBACK: fallback},
        resource_id="lambda/internal_libs@l1",
        input_hash="l1",
    )
    updates = [
        Action(
            f"lambda/function/{name}",
            ActionKind.UPDATE_FUNCTION_CONFIGURATION,
            "layers",
            f"datamart-dev-{name}",
            {"FunctionName": f"datamart-dev-{name}", "Layers": [OLD_ARN]},
            resource_id=f"lambda/function/{name}",
        )
        for name in ("ingest", "report")
    ]
    return PublishPlan(TARGET, [skip, *updates])


def refusing_deleted(fake: FakeAws):
    def update(aws, call: Call) -> dict:
        fake.calls.append(call)
        if OLD_ARN in call.params["Layers"]:
            raise RefusedLayer("One or more LayerVersion does not exist")
        return {"configuration": configuration_answer(call)}

    return {**fake.handlers, ActionKind.UPDATE_FUNCTION_CONFIGURATION: update}


def test_a_recorded_version_found_missing_is_published_once_and_the_steps_retried(index):
    fake = FakeAws()

    outcomes = execute(stale_plan(), MissingVersions(), index, {}, {}, jobs=2, handlers=refusing_deleted(fake))

    published = [c for c in fake.calls if c.action.kind is ActionKind.PUBLISH_LAYER_VERSION]
    assert len(published) == 1  # one new version for both functions
    retried = [c.params["Layers"] for c in fake.calls if c.action.kind is ActionKind.UPDATE_FUNCTION_CONFIGURATION]
    assert retried.count([NEW_ARN]) == 2
    assert [o.status for o in outcomes].count("done") == 3
    row = index.published(TARGET.account, TARGET.region, TARGET.stage)["lambda/internal_libs@l1"]
    assert row.details["arn"] == NEW_ARN and not row.details.get("deleted")


def test_a_step_retried_with_the_layer_published_again_keeps_the_digest_it_checks_before_sending(index):
    from dataclasses import replace

    fake = FakeAws()
    skip, update, _ = stale_plan().actions
    create = replace(update, kind=ActionKind.CREATE_FUNCTION, params={**update.params, "Code": {"ZipFile": "/tmp/f"}})

    def create_refusing_deleted(aws, call: Call) -> dict:
        fake.calls.append(call)
        if OLD_ARN in call.params["Layers"]:
            raise RefusedLayer("One or more LayerVersion does not exist")
        return {"configuration": configuration_answer(call)}

    handlers = {**fake.handlers, ActionKind.CREATE_FUNCTION: create_refusing_deleted}
    plan = PublishPlan(TARGET, [skip, create])
    execute(plan, MissingVersions(), index, {}, {create.id: "c0de="}, jobs=1, handlers=handlers)

    creates = [c for c in fake.calls if c.action.kind is ActionKind.CREATE_FUNCTION]
    assert [c.params["Layers"] for c in creates] == [[OLD_ARN], [NEW_ARN]]
    assert [c.code_sha256 for c in creates] == ["c0de=", "c0de="]  # the zip is checked before the retry too


def test_a_refusal_for_another_reason_is_not_retried(index):
    fake = FakeAws()

    with pytest.raises(Exception, match="does not exist"):
        execute(
            stale_plan(),
            MissingVersions(present={("datamart-dev-internal_libs", 1)}),
            index,
            {},
            {},
            handlers=refusing_deleted(fake),
        )

    assert not [c for c in fake.calls if c.action.kind is ActionKind.PUBLISH_LAYER_VERSION]


def test_a_recorded_upload_no_job_names_yet_is_checked_and_uploaded_again_if_gone():
    from cache.index import PublishedRecord
    from packager.deploy.jobs_plan import S3Upload, plan_upload

    upload = S3Upload("glue_spark/job/orders", "bucket", "pkg/glue_spark/s/orders.py", "/tmp/orders.py")
    row = PublishedRecord(
        upload.resource_id, "o1", UploadRow("bucket", upload.key).to_details(), "2026-01-01T00:00:00+00:00"
    )
    marked = PublishedRecord(row.resource_id, "o1", {**row.details, "deleted": True}, row.published)
    live = MemoryLive()

    assert plan_upload(upload, {row.resource_id: row}, live, refresh=False).kind is ActionKind.SKIP
    assert live.reads == 0  # what the stage's jobs name is in use: gc never deleted it
    gone = plan_upload(upload, {row.resource_id: row}, live, refresh=False, check=True)
    assert gone.kind is ActionKind.PUT_OBJECT and gone.reason == "the object was deleted (found missing)"
    by_gc = plan_upload(upload, {row.resource_id: marked}, MemoryLive(), refresh=False)
    assert by_gc.kind is ActionKind.PUT_OBJECT and by_gc.reason == "the object was deleted by gc"
    there = MemoryLive(objects=[("bucket", upload.key)])
    assert plan_upload(upload, {row.resource_id: row}, there, refresh=False, check=True).kind is ActionKind.SKIP
