"""Removed sources are removed from AWS, and `pkg destroy`, end to end against the local moto server.

Every function and Glue job pkg creates is tagged `pkg:project` / `pkg:stage`; a publish of the whole
tree deletes the ones whose source is gone (found from the index, or by tag from a fresh clone), and
never a resource it did not tag. What AWS saw is counted by the server (tests/moto_server.py).
"""

from __future__ import annotations

import boto3
from conftest import AWS_REGION, LAMBDA_ROLE, PUBLISH_PYPROJECT

GLUE_ROLE = "arn:aws:iam::123456789012:role/glue"
JOBS = """
[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"
"""
SCRIPT = 'if __name__ == "__main__":\n    print("done")\n'


def lam():
    return boto3.client("lambda", region_name=AWS_REGION)


def glue():
    return boto3.client("glue", region_name=AWS_REGION)


def functions() -> set[str]:
    return {f["FunctionName"] for f in lam().list_functions()["Functions"]}


def jobs() -> set[str]:
    return set(glue().list_jobs()["JobNames"])


def changes(report: dict) -> list[tuple[str, str, str]]:
    """(action, name, reason) of every step that is not a skip."""
    return sorted((a["action"], a["name"], a["reason"]) for a in report["actions"] if a["action"] != "skip")


def with_jobs(project, config: str = PUBLISH_PYPROJECT):
    """The two-function project plus two Glue Python shell jobs (no dependencies)."""
    project.write("pyproject.toml", config + JOBS)
    project.write("src/glue_python_shell/totals.py", SCRIPT)
    project.write("src/glue_python_shell/daily.py", SCRIPT)
    return project


def foreign_function(name: str, tags: dict | None = None) -> None:
    """A function made outside pkg (by hand, another tool), with the stage's name prefix."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("x.py", "def handler(event, context):\n    return 1\n")
    lam().create_function(
        FunctionName=name, Runtime="python3.12", Role=LAMBDA_ROLE, Handler="x.handler",
        Code={"ZipFile": code.getvalue()}, Tags=tags or {},
    )  # fmt: skip


def test_removed_function_and_job_are_deleted_and_nothing_else(project, aws):
    with_jobs(project).pkg_json("publish", "--stage", "dev")
    foreign_function("datamart-dev-legacy")  # made by hand: no pkg tags
    (project.root / "src/lambda/report.py").unlink()
    (project.root / "src/glue_python_shell/daily.py").unlink()
    aws.reset_calls()

    plan = project.pkg_json("plan", "--stage", "dev")
    assert aws.mutating_calls() == []
    assert changes(plan) == [
        ("delete_function", "datamart-dev-report", "src/lambda/report.py removed"),
        ("delete_job", "datamart-dev-daily", "src/glue_python_shell/daily.py removed"),
    ]
    report = project.pkg_json("publish", "--stage", "dev")
    assert sorted(aws.mutating_calls()) == ["DeleteFunction", "DeleteJob"]
    assert all(a["status"] == "done" for a in report["actions"] if a["action"] != "skip")
    assert functions() == {"datamart-dev-ingest", "datamart-dev-legacy"}
    assert jobs() == {"datamart-dev-totals"}

    aws.reset_calls()  # the records of the deleted ones are gone: nothing more to do
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0
    assert aws.mutating_calls() == []
    # Publishing some NAMES never deletes: it publishes only those.
    (project.root / "src/glue_python_shell/totals.py").unlink()
    assert changes(project.pkg_json("plan", "--stage", "dev", "ingest")) == []
    assert [n for _, n, _ in changes(project.pkg_json("plan", "--stage", "dev"))] == ["datamart-dev-totals"]


def test_a_fresh_clone_finds_what_to_delete_by_tag_and_never_touches_foreign_resources(project, aws, tmp_path):
    with_jobs(project).pkg_json("publish", "--stage", "dev")
    foreign_function("datamart-dev-legacy")  # the stage's prefix, no tags
    foreign_function("datamart-dev-eu-report", {"pkg:project": "datamart", "pkg:stage": "dev-eu"})  # another stage
    foreign_function("datamart-dev-old", {"pkg:project": "other", "pkg:stage": "dev"})  # another project
    glue().create_job(Name="datamart-dev-handmade", Role=GLUE_ROLE, Command={"Name": "pythonshell"})
    (project.root / "src/lambda/report.py").unlink()
    (project.root / "src/glue_python_shell/daily.py").unlink()
    project.cache_dir = tmp_path / "fresh-clone-cache"  # an empty cache, no shared cache
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert changes(report) == [
        ("delete_function", "datamart-dev-report", "src/lambda/report.py removed (found by its tags)"),
        ("delete_job", "datamart-dev-daily", "src/glue_python_shell/daily.py removed (found by its tags)"),
    ]
    assert sorted(aws.mutating_calls()) == ["DeleteFunction", "DeleteJob"]
    assert functions() == {"datamart-dev-ingest", "datamart-dev-legacy", "datamart-dev-eu-report", "datamart-dev-old"}
    assert jobs() == {"datamart-dev-totals", "datamart-dev-handmade"}
    aws.reset_calls()
    assert project.pkg_json("publish", "--stage", "dev", "--refresh")["summary"]["mutating_calls"] == 0


def test_rename_is_a_create_then_a_delete_and_a_protected_stage_refuses_without_allow_delete(project, aws):
    stage = 'account = "123456789012"\n'
    protected = PUBLISH_PYPROJECT.replace(stage, stage + "deletion_protection = true\n")
    project.write("pyproject.toml", protected)
    project.pkg_json("publish", "--stage", "dev")
    (project.root / "src/lambda/report.py").rename(project.root / "src/lambda/reports.py")
    aws.reset_calls()

    plan = project.pkg_json("plan", "--stage", "dev")
    assert [(a, n) for a, n, _ in changes(plan)] == [
        ("create_function", "datamart-dev-reports"),
        ("delete_function", "datamart-dev-report"),
        ("publish_version", "datamart-dev-reports"),
    ]
    refused = next(a for a in plan["actions"] if a["action"] == "delete_function")
    assert "refused: stage dev has deletion_protection = true" in refused["reason"]
    assert "refused" not in project.pkg_json("plan", "--stage", "dev", "--allow-delete")["actions"][-1]["reason"]

    failed = project.pkg("publish", "--stage", "dev", "--json")
    assert failed.exit_code == 1
    assert failed.json["type"] == "DeletionProtectedError" and "--allow-delete" in failed.json["hint"]
    assert [a["name"] for a in failed.json["refused"]] == ["datamart-dev-report"]
    assert [c for c in aws.calls(locks=True) if c["mutating"]] == []  # not even the stage's lock

    project.pkg_json("publish", "--stage", "dev", "--allow-delete")
    assert aws.mutating_calls() == ["CreateFunction", "CreateAlias", "DeleteFunction"]  # new first
    assert functions() == {"datamart-dev-ingest", "datamart-dev-reports"}


def test_a_deletion_reaches_the_shared_cache_so_a_teammate_does_not_delete_again(project, aws, tmp_path):
    uri = 'project = "datamart"\ncache_uri = "s3://datamart-artifacts/team-cache"'
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('project = "datamart"', uri))
    project.pkg_json("publish", "--stage", "dev")
    (project.root / "src/lambda/report.py").unlink()
    assert [n for _, n, _ in changes(project.pkg_json("publish", "--stage", "dev"))] == ["datamart-dev-report"]
    project.cache_dir = tmp_path / "teammate-cache"  # another machine: only the shared cache knows the stage
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert changes(report) == [] and "DeleteFunction" not in aws.mutating_calls()
    assert functions() == {"datamart-dev-ingest"}


PROD = """
[tool.pkg.stages.prod]
region = "us-east-1"
account = "123456789012"
deletion_protection = true
"""


def test_destroy_removes_one_stage_and_leaves_another_in_the_same_account_and_bucket_untouched(project, aws):
    with_jobs(project, PUBLISH_PYPROJECT + PROD)
    project.pkg_json("publish", "--stage", "dev")
    project.pkg_json("publish", "--stage", "prod", "--allow-delete")
    project.write("src/glue_python_shell/daily.py", SCRIPT + "# v2: an object only dev uses\n")
    project.pkg_json("publish", "--stage", "dev")
    foreign_function("datamart-dev-legacy")
    s3 = boto3.client("s3", region_name=AWS_REGION)

    def objects() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket="datamart-artifacts").get("Contents", [])}

    before = objects()
    aws.reset_calls()

    dry = project.pkg_json("destroy", "--stage", "dev", "--dry-run")
    assert aws.mutating_calls() == []
    deleting = {(a["action"], a["name"]) for a in dry["actions"] if a["action"] != "skip"}
    named = {kind: {name for k, name in deleting if k == kind} for kind, _ in deleting}
    assert named["delete_function"] == {"datamart-dev-ingest", "datamart-dev-report"}
    assert named["delete_job"] == {"datamart-dev-totals", "datamart-dev-daily"}
    assert {kind for kind, _ in deleting} == {"delete_function", "delete_job", "delete_layer_version", "delete_object"}
    left = next(a for a in dry["actions"] if a["name"] == "datamart-dev-legacy")
    assert left["action"] == "skip" and "left in place" in left["reason"]
    # Only what prod's records don't name: the second version of daily.py.
    dev_only = [f"s3://datamart-artifacts/{key}" for key in before if "daily" in key and key not in prod_keys(project)]
    assert len(dev_only) == 1 and sorted(named["delete_object"]) == dev_only

    text = project.pkg("destroy", "--stage", "dev", "--dry-run")
    assert "delete_function        datamart-dev-ingest" in text.stdout
    assert f"{len(deleting)} would be deleted (dry run)" in text.stdout
    unconfirmed = project.pkg("destroy", "--stage", "dev", "--json")  # not a terminal, no --yes
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.json["hint"]
    refused = project.pkg("destroy", "--stage", "prod", "--yes", "--json")
    assert refused.exit_code == 1 and refused.json["type"] == "DeletionProtectedError"
    assert [c for c in aws.calls(locks=True) if c["mutating"]] == []

    report = project.pkg_json("destroy", "--stage", "dev", "--yes")
    assert report["summary"]["deleted"] == report["summary"]["to_delete"] == len(deleting)
    assert functions() == {"datamart-prod-ingest", "datamart-prod-report", "datamart-dev-legacy"}
    assert jobs() == {"datamart-prod-totals", "datamart-prod-daily"}
    layers = {layer["LayerName"] for layer in lam().list_layers()["Layers"]}
    assert layers == {"datamart-prod-internal_libs"}
    assert objects() == before - {name.removeprefix("s3://datamart-artifacts/") for _, name in deleting}
    assert prod_keys(project) <= objects()

    project.write("src/glue_python_shell/daily.py", SCRIPT)  # the sources prod was published from
    aws.reset_calls()  # prod is untouched: its publish has nothing to do; dev starts afresh
    assert project.pkg_json("publish", "--stage", "prod")["summary"]["mutating_calls"] == 0
    planned = project.pkg_json("plan", "--stage", "dev")["actions"]
    functions_planned = {a["action"] for a in planned if a["id"].startswith("lambda/function/")}
    assert functions_planned == {"create_function", "publish_version"}
    assert project.pkg_json("destroy", "--stage", "dev", "--yes")["summary"]["to_delete"] == 0


def prod_keys(project) -> set[str]:
    """The S3 keys prod's publish records name."""
    import json
    import sqlite3

    with sqlite3.connect(project.cache_dir / "index.sqlite") as conn:
        rows = conn.execute("SELECT details FROM published WHERE stage = 'prod'").fetchall()
    return {json.loads(d)["key"] for (d,) in rows if "key" in json.loads(d)}
