"""The Glue/EMR planner without AWS: resources as data, recorded rows, and a fake read-only LiveState."""

from __future__ import annotations

from cache.index import PublishedRecord
from packager.deploy.actions import ActionKind, Drift
from packager.deploy.jobs_plan import EmrRunSpec, GlueJobResource, S3Upload, plan_emr_job, plan_glue_job, plan_upload

ARN = "arn:aws:glue:us-east-1:123456789012:job/datamart-dev-orders"
DEFINITION = {
    "Role": "arn:aws:iam::123456789012:role/glue",
    "Command": {
        "Name": "glueetl",
        "ScriptLocation": "s3://b/pkg/glue_spark/job-orders/ab/orders.py",
        "PythonVersion": "3",
    },
    "DefaultArguments": {"--extra-py-files": "s3://b/pkg/glue_spark/internal_libs/cd/internal_libs.zip"},
    "GlueVersion": "5.0",
    "WorkerType": "G.1X",
    "NumberOfWorkers": 2,
    "Timeout": 60,
    "MaxRetries": 0,
    "Description": "",
}


class FakeLive:
    """Glue jobs, their tags and bucket objects from dicts; counts every read."""

    def __init__(self, jobs=None, tags=None, objects=()):
        self.jobs = jobs or {}
        self.tags = tags or {}
        self.objects = set(objects)
        self.reads = 0

    def function(self, name):
        raise AssertionError("the job planner reads no Lambda function")

    def prefetch_functions(self, names):
        raise AssertionError("the job planner reads no Lambda function")

    def layer_versions(self, name):
        raise AssertionError("the job planner reads no layer")

    def object_exists(self, bucket, key):
        self.reads += 1
        return (bucket, key) in self.objects

    def glue_job(self, name):
        self.reads += 1
        return self.jobs.get(name)

    def glue_tags(self, arn):
        self.reads += 1
        return dict(self.tags.get(arn, {}))


def job(definition=DEFINITION, tags=None) -> GlueJobResource:
    return GlueJobResource("glue_spark/job/orders", "datamart-dev-orders", definition, tags or {})


def row(definition=DEFINITION, tags=None) -> PublishedRecord:
    details = {"name": "datamart-dev-orders", "definition": definition, "tags": tags or {}}
    return PublishedRecord("glue_spark/job/orders", "h1", details, "2026-01-01T00:00:00+00:00")


def plan(resource, recorded, live, refresh=False, why=None):
    drift: list[Drift] = []
    actions = plan_glue_job(resource, ARN, recorded, live, refresh, why, drift)
    return [(a.kind, a.reason) for a in actions], actions, drift


def test_a_new_job_is_created_with_its_tags_in_one_call():
    kinds, actions, _ = plan(job(tags={"team": "data"}), None, FakeLive())
    assert kinds == [(ActionKind.CREATE_JOB, "new job")]
    assert actions[0].params == {"Name": "datamart-dev-orders", **DEFINITION, "Tags": {"team": "data"}}
    assert actions[0].resource_id == "glue_spark/job/orders"


def test_a_recorded_job_as_wanted_is_a_no_op_without_a_single_read():
    live = FakeLive()
    kinds, _, _ = plan(job(), row(), live)
    assert kinds == [(ActionKind.SKIP, "up to date")]
    assert live.reads == 0


def test_a_changed_definition_is_an_update_saying_what_changed_and_why():
    wanted = {**DEFINITION, "NumberOfWorkers": 10, "Timeout": 30}
    kinds, actions, _ = plan(job(wanted), row(), FakeLive(), why="orders.py changed")
    assert kinds == [(ActionKind.UPDATE_JOB, "NumberOfWorkers 2 -> 10, Timeout 60 -> 30 (orders.py changed)")]
    assert actions[0].params == {"JobName": "datamart-dev-orders", "JobUpdate": wanted}


def test_a_job_live_as_wanted_but_not_recorded_is_adopted_with_its_tags():
    live = FakeLive(jobs={"datamart-dev-orders": {**DEFINITION, "CreatedOn": "x"}}, tags={ARN: {"team": "data"}})
    kinds, actions, _ = plan(job(tags={"team": "data"}), None, live)
    assert kinds == [(ActionKind.SKIP, "already live as wanted (not recorded): adopting it")]
    assert actions[0].record == {"name": "datamart-dev-orders", "definition": DEFINITION, "tags": {"team": "data"}}


def test_refresh_reports_drift_and_plans_the_repair():
    changed = {**DEFINITION, "Timeout": 5}
    live = FakeLive(jobs={"datamart-dev-orders": changed}, tags={ARN: {"owner": "someone"}})
    kinds, actions, drift = plan(job(), row(), live, refresh=True)
    assert [(d.field, d.live) for d in drift] == [("definition", changed), ("tags", {"owner": "someone"})]
    assert kinds == [
        (ActionKind.UPDATE_JOB, "drift: Timeout 5 -> 60 out of band"),
        (ActionKind.GLUE_UNTAG_RESOURCE, "drift: tags changed out of band; tags removed: owner"),
    ]
    assert actions[1].params == {"ResourceArn": ARN, "TagsToRemove": ["owner"]}


def test_a_job_deleted_out_of_band_is_created_again():
    kinds, _, drift = plan(job(), row(), FakeLive(), refresh=True)
    assert kinds == [(ActionKind.CREATE_JOB, "drift: job deleted out of band")]
    assert [(d.field, d.live) for d in drift] == [("definition", None)]


def test_tag_changes_alone_are_tag_calls_that_record_the_new_tags():
    kinds, actions, _ = plan(job(tags={"team": "data", "cost": "1"}), row(tags={"team": "ops"}), FakeLive())
    assert kinds == [(ActionKind.GLUE_TAG_RESOURCE, "tags set: cost, team")]
    assert actions[0].record == {"tags": {"cost": "1", "team": "data"}}


def test_uploads_are_skipped_when_recorded_adopted_when_found_and_put_otherwise():
    key = "pkg/glue_spark/internal_libs/cd/internal_libs.zip"
    upload = S3Upload("glue_spark/internal_libs", "b", key, "/tmp/l.zip")
    put = plan_upload(upload, {}, FakeLive(), refresh=False)
    assert (put.kind, put.reason, put.params["Key"]) == (ActionKind.PUT_OBJECT, "new content", upload.key)
    adopted = plan_upload(upload, {}, FakeLive(objects=[("b", upload.key)]), refresh=False)
    assert adopted.kind is ActionKind.SKIP and adopted.record == {"bucket": "b", "key": upload.key}
    recorded = {upload.resource_id: PublishedRecord(upload.resource_id, "", adopted.record, "then")}
    live = FakeLive()
    assert plan_upload(upload, recorded, live, refresh=False).reason == "uploaded from this input"
    assert live.reads == 0


def test_an_emr_run_specification_is_recorded_only_when_it_changed():
    run = EmrRunSpec("emr/job/clean", "datamart-dev-clean", {"entry_point": "s3://b/k.py"})
    first = plan_emr_job(run, None)
    assert first.kind is ActionKind.SKIP and first.record == {"name": "datamart-dev-clean", "spec": run.spec}
    same = plan_emr_job(run, PublishedRecord("emr/job/clean", "h", first.record, "then"))
    assert same.record is None and same.reason == "run specification up to date"
