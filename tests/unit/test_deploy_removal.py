"""The removal planner without any AWS: what `src/` no longer has becomes delete_function / delete_job.

`StageReads` answers the planner's reads from dicts and counts them, so a test can show that a
recorded stage with nothing removed needs no read at all.
"""

from __future__ import annotations

from types import SimpleNamespace

from cache.index import PublishedRecord
from packager.config import Config
from packager.deploy.actions import ActionKind, PublishPlan, StageInputs, Target
from packager.deploy.removal import check_deletions_allowed, plan_removals, refused_deletions
from packager.errors import DeletionProtectedError
from packager.model import ArtifactId, Kind

TARGET = Target("123456789012", "us-east-1", "dev")
OURS = {"pkg:project": "datamart", "pkg:stage": "dev"}
WHEN = "2026-01-01T00:00:00+00:00"


class StageReads:
    """What AWS would answer to ListFunctions, ListTags, ListJobs, GetJob and GetTags (a RemovalReads)."""

    def __init__(self, functions=None, jobs=None):
        self.functions = functions or {}  # name -> tags
        self.jobs = jobs or {}  # name -> (command, tags)
        self.reads = 0

    def stage_functions(self, prefix):
        self.reads += 1
        return {name: arn(name) for name, tags in self.functions.items() if name.startswith(prefix)}

    def function_tags(self, function_arn):
        self.reads += 1
        return self.functions.get(function_arn.rsplit(":", 1)[-1])

    def tagged_glue_jobs(self, tags):
        self.reads += 1
        return [name for name, (_, job_tags) in self.jobs.items() if tags.items() <= job_tags.items()]

    def glue_job(self, name):
        self.reads += 1
        return {"Name": name, "Command": {"Name": self.jobs[name][0]}} if name in self.jobs else None

    def glue_tags(self, job_arn):
        self.reads += 1
        return self.jobs[job_arn.rsplit("/", 1)[-1]][1]


def arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def config(**stage) -> Config:
    raw = {"project": "datamart", "lambda": {}, "glue_python_shell": {}, "stages": {"dev": stage}}
    return Config("/repo", raw)


def item(artifact_id: str):
    kind = Kind.LAMBDA_FUNCTION if artifact_id.startswith("lambda/") else Kind.GLUE_PYTHON_SHELL_JOB
    return SimpleNamespace(spec=SimpleNamespace(id=artifact_id, kind=kind, artifact=ArtifactId.parse(artifact_id)))


def function_row(name: str) -> PublishedRecord:
    details = {"arn": arn(f"datamart-dev-{name}"), "code_sha256": "x", "configuration": {}, "layers": [], "tags": OURS}
    return PublishedRecord(f"lambda/function/{name}", "h", details, WHEN)


def job_row(name: str) -> PublishedRecord:
    details = {"name": f"datamart-dev-{name}", "definition": {"Command": {}}, "tags": OURS}
    return PublishedRecord(f"glue_python_shell/job/{name}", "h", details, WHEN)


def inputs(present, recorded, refresh=False, **stage) -> StageInputs:
    rows = {row.resource_id: row for row in recorded}
    return StageInputs(config(**stage), TARGET, [item(i) for i in present], None, rows, None, refresh, None, {})  # type: ignore[arg-type]


def steps(plan) -> list[tuple[str, str, str]]:
    return [(str(action.kind), action.name, action.reason) for action in plan.actions]


def test_a_recorded_stage_with_nothing_removed_needs_no_read():
    reads = StageReads()
    plan = plan_removals(inputs(["lambda/function/ingest"], [function_row("ingest")]), reads)
    assert plan.actions == [] and reads.reads == 0


def test_removed_function_and_job_are_deleted_with_the_source_as_the_reason():
    reads = StageReads({"datamart-dev-report": OURS}, {"datamart-dev-daily": ("pythonshell", OURS)})
    recorded = [function_row("ingest"), function_row("report"), job_row("daily")]
    plan = plan_removals(inputs(["lambda/function/ingest"], recorded), reads)
    assert steps(plan) == [
        ("delete_job", "datamart-dev-daily", "src/glue_python_shell/daily.py removed"),
        ("delete_function", "datamart-dev-report", "src/lambda/report.py removed"),
    ]
    assert {action.resource_id for action in plan.actions} == {"glue_python_shell/job/daily", "lambda/function/report"}


def test_without_records_the_stage_is_listed_by_tag_and_only_its_own_resources_are_deleted():
    reads = StageReads(
        {
            "datamart-dev-ingest": OURS,  # still in src/
            "datamart-dev-report": OURS,
            "datamart-dev-legacy": {},  # by hand: the prefix, no tags
            "datamart-dev-eu-report": {"pkg:project": "datamart", "pkg:stage": "dev-eu"},  # another stage
            "datamart-prod-report": {"pkg:project": "datamart", "pkg:stage": "prod"},
        },
        {"datamart-dev-daily": ("pythonshell", OURS), "datamart-dev-handmade": ("pythonshell", {})},
    )
    plan = plan_removals(inputs(["lambda/function/ingest"], []), reads)
    assert [(kind, name) for kind, name, _ in steps(plan)] == [
        ("delete_job", "datamart-dev-daily"),
        ("delete_function", "datamart-dev-report"),
    ]
    assert all(reason.endswith("(found by its tags)") for _, _, reason in steps(plan))


def test_a_recorded_function_without_the_tags_is_left_in_place_and_one_already_gone_is_forgotten():
    reads = StageReads({"datamart-dev-old": {"team": "data"}})
    plan = plan_removals(inputs([], [function_row("old"), function_row("gone")]), reads)
    (gone, old) = plan.actions
    assert gone.kind is ActionKind.SKIP and gone.record == {"removed": True} and "already gone" in gone.reason
    assert old.kind is ActionKind.SKIP and old.record is None and "left in place" in old.reason


def test_a_job_moved_to_another_service_folder_keeps_its_aws_job():
    row = PublishedRecord(
        "glue_spark/job/daily", "h", {"name": "datamart-dev-daily", "definition": {"Command": {}}}, WHEN
    )
    plan = plan_removals(inputs(["glue_python_shell/job/daily"], [row]), StageReads())
    (forget,) = plan.actions
    assert forget.kind is ActionKind.SKIP and forget.record == {"removed": True}


def test_deletion_protection_marks_deletions_refused_and_refuses_the_publish_unless_allowed():
    reads = StageReads({"datamart-dev-report": OURS})
    protected = inputs([], [function_row("report")], deletion_protection=True)
    plan = PublishPlan(TARGET, plan_removals(protected, reads).actions)
    (delete,) = plan.actions
    assert delete.kind is ActionKind.DELETE_FUNCTION and "refused: stage dev has deletion_protection" in delete.reason
    assert refused_deletions(protected.config, plan, allow_delete=False) == [delete]
    try:
        check_deletions_allowed(protected.config, plan, allow_delete=False)
        raise AssertionError("a protected stage must refuse")
    except DeletionProtectedError as refused:
        assert refused.completed["refused"][0]["name"] == "datamart-dev-report"
    check_deletions_allowed(protected.config, plan, allow_delete=True)
    allowed = plan_removals(protected, reads, allow_delete=True).actions
    assert "refused" not in allowed[0].reason


def test_refresh_lists_by_tag_even_with_records():
    reads = StageReads({"datamart-dev-report": OURS})
    plan = plan_removals(inputs(["lambda/function/ingest"], [function_row("ingest")], refresh=True), reads)
    assert steps(plan) == [
        ("delete_function", "datamart-dev-report", "src/lambda/report.py removed (found by its tags)")
    ]


def test_a_removed_function_is_deleted_even_when_a_glue_job_has_its_name():
    reads = StageReads({"datamart-dev-daily": OURS})
    plan = plan_removals(inputs(["glue_python_shell/job/daily"], [function_row("daily")]), reads)
    assert [(kind, name) for kind, name, _ in steps(plan)] == [("delete_function", "datamart-dev-daily")]
