"""Releases, aliases and rollback end to end against the local moto server.

Three publishes make three releases in the artifact bucket; `pkg history` and `pkg diff` read them
back; `pkg rollback` restores every alias and job argument of release 1 without building; a stage
published before aliases existed gets release 1 and its aliases without a code update; release
objects that are not this stage's are ignored with a warning. The server counts the calls.
"""

from __future__ import annotations

import json
import os

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT

RELEASES = "pkg-releases/123456789012/us-east-1/dev/"
JOBS = """
[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"

[tool.pkg.emr]
release_label = "emr-7.9.0"
"""
SHELL_JOB = 'if __name__ == "__main__":\n    print("totals v{}")\n'
EMR_JOB = 'if __name__ == "__main__":\n    print("clean v{}")\n'


def client(service: str):
    return boto3.client(service, region_name=AWS_REGION)


def live_alias(name: str) -> tuple[str, str]:
    """(version the `live` alias points at, the CodeSha256 that version runs)."""
    version = client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    configuration = client("lambda").get_function_configuration(FunctionName=name, Qualifier=version)
    return version, configuration["CodeSha256"]


def cached_files(project) -> int:
    """The files of the local store: a build adds some, a rollback none."""
    return sum(len(files) for _, _, files in os.walk(project.cache_dir))


def with_jobs(project):
    project.write("pyproject.toml", PUBLISH_PYPROJECT + JOBS)
    project.write("src/glue_python_shell/totals.py", SHELL_JOB.format(1))
    project.write("src/emr/clean.py", EMR_JOB.format(1))
    return project


def test_three_publishes_make_three_releases_and_rollback_restores_the_first_without_building(project, aws):
    with_jobs(project)
    first = project.pkg_json("publish", "--stage", "dev")
    assert first["release"] == 1
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 2\n")
    project.write("src/glue_python_shell/totals.py", SHELL_JOB.format(2))
    project.write("src/emr/clean.py", EMR_JOB.format(2))
    assert project.pkg_json("publish", "--stage", "dev")["release"] == 2
    project.write("src/lambda/internal_libs/orders.py", "def parse(record):\n    return record\n")
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace("memory = 1024", "memory = 2048") + JOBS)
    third = project.pkg_json("publish", "--stage", "dev")
    assert third["release"] == 3
    assert project.pkg_json("publish", "--stage", "dev")["release"] is None  # a no-op records nothing
    # `pkg status` names the release that deployed what each runs: the jobs are as release 2 left them.
    placed = {r["id"]: r["release"] for r in project.pkg_json("status", "--stage", "dev")["resources"]}
    assert placed == {
        "lambda/function/ingest": 3,
        "lambda/function/report": 3,
        "glue_python_shell/job/totals": 2,
        "emr/job/clean": 2,
    }

    history = project.pkg_json("history", "--stage", "dev")
    assert [(r["id"], r["command"], r["functions"], r["jobs"]) for r in history["releases"]] == [
        (1, "publish", 2, 2),
        (2, "publish", 2, 2),
        (3, "publish", 2, 2),
    ]
    assert history["releases"][0]["who"].startswith("arn:aws:")
    changes = {c["name"]: c for c in project.pkg_json("diff", "--stage", "dev", "1")["changes"]}  # 1 -> current
    assert "code changed" in changes["datamart-dev-ingest"]["details"]
    assert "MemorySize 1024 -> 2048" in ", ".join(changes["datamart-dev-ingest"]["details"])
    report = changes["datamart-dev-report"]["details"]
    assert any(detail.startswith("layer datamart-dev-internal_libs 1 -> 2") for detail in report)
    assert "code changed" not in changes["datamart-dev-report"]["details"]
    assert any(d.startswith("script ") for d in changes["datamart-dev-totals"]["details"])
    assert any(d.startswith("script ") for d in changes["datamart-dev-clean"]["details"])
    assert project.pkg_json("diff", "--stage", "dev", "2", "2")["changes"] == []

    stored = client("s3").get_object(Bucket=ARTIFACT_BUCKET, Key=RELEASES + "00000001.json")
    release_1 = json.loads(stored["Body"].read())
    files = cached_files(project)
    aws.reset_calls()
    rolled = project.pkg_json("rollback", "--stage", "dev", "--to", "1")

    assert cached_files(project) == files  # nothing built, nothing fetched
    assert sorted(aws.mutating_calls()) == ["UpdateAlias", "UpdateAlias", "UpdateJob"]  # EMR: recorded only
    assert rolled["release"] == 4
    for artifact_id, function in release_1["functions"].items():
        assert live_alias(function["name"]) == (function["version"], function["code_sha256"]), artifact_id
    shell = client("glue").get_job(JobName="datamart-dev-totals")["Job"]
    assert shell["Command"]["ScriptLocation"] == release_1["jobs"]["glue_python_shell/job/totals"]["script"]
    after = project.pkg_json("history", "--stage", "dev")["releases"][-1]
    assert (after["id"], after["command"], after["rolled_back_to"]) == (4, "rollback", 1)
    assert project.pkg_json("diff", "--stage", "dev", "1", "4")["changes"] == []  # release 4 runs what 1 ran
    assert "release 4" in project.pkg("status", "--stage", "dev").stdout

    # The next publish rolls forward from the checkout: a version and an alias move, no code upload.
    aws.reset_calls()
    again = project.pkg_json("publish", "--stage", "dev")
    assert "UpdateFunctionCode" not in aws.mutating_calls() and "CreateFunction" not in aws.mutating_calls()
    assert again["release"] == 5
    assert project.pkg_json("diff", "--stage", "dev", "3", "5")["changes"] == []


def test_a_stage_published_before_aliases_gets_release_1_and_aliases_without_a_code_update(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    # What the code before releases left: functions without versions or aliases, rows without an alias.
    lam, s3 = client("lambda"), client("s3")
    for name in ("datamart-dev-ingest", "datamart-dev-report"):
        lam.delete_alias(FunctionName=name, Name="live")
        lam.delete_function(FunctionName=name, Qualifier="1")
    s3.delete_object(Bucket=ARTIFACT_BUCKET, Key=RELEASES + "00000001.json")
    from cache.store import Store

    store = Store(str(project.cache_dir))
    for resource_id, row in store.index.published("123456789012", AWS_REGION, "dev").items():
        details = {key: value for key, value in row.details.items() if key != "alias"}
        store.index.record_published("123456789012", AWS_REGION, "dev", resource_id, row.input_hash, details)
    store.close()
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert sorted(aws.mutating_calls()) == ["CreateAlias", "CreateAlias", "PublishVersion", "PublishVersion"]
    assert report["release"] == 1
    assert project.pkg_json("history", "--stage", "dev")["releases"][0]["functions"] == 2
    aws.reset_calls()
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0
    assert aws.calls() == [call for call in aws.calls() if call["operation"] == "GetCallerIdentity"]


def test_release_objects_of_another_shape_or_stage_are_ignored_with_a_warning(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    s3 = client("s3")
    good = json.loads(s3.get_object(Bucket=ARTIFACT_BUCKET, Key=RELEASES + "00000001.json")["Body"].read())
    foreign = {**good, "id": 3, "account": "210987654321"}
    outside = json.loads(json.dumps({**good, "id": 4}))
    outside["functions"]["lambda/function/ingest"]["name"] = "someone-elses-function"
    bad_key = json.loads(json.dumps({**good, "id": 5}))
    bad_key["jobs"] = {"emr/job/x": {"name": "datamart-dev-x", "script": "s3://evil/x.py", "libs": [], "deps": [],
                                     "settings": {}}}  # fmt: skip
    objects = {
        "00000002.json": b"{not json",
        "00000003.json": json.dumps(foreign).encode(),
        "00000004.json": json.dumps(outside).encode(),
        "00000005.json": json.dumps(bad_key).encode(),
        "notes.txt": b"hello",
    }
    for name, body in objects.items():
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=RELEASES + name, Body=body)
    aws.reset_calls()

    result = project.pkg("history", "--stage", "dev", "--json")

    assert result.exit_code == 0, result.stderr
    assert [release["id"] for release in result.json["releases"]] == [1]
    assert "Traceback" not in result.stderr
    for name in ("00000002.json", "00000003.json", "00000004.json", "00000005.json", "notes.txt"):
        assert f"{RELEASES}{name}" in result.stderr
    assert "account '210987654321' is not 123456789012" in result.stderr
    assert "someone-elses-function" in result.stderr and "s3://evil/x.py" in result.stderr
    refused = project.pkg("rollback", "--stage", "dev", "--to", "3", "--json")
    assert refused.exit_code == 1 and refused.json["error"].startswith("no valid release 3 of this stage")
    unknown = project.pkg("diff", "--stage", "dev", "9", "--json")
    assert unknown.exit_code == 1 and unknown.json["error"].startswith("no release 9 of this stage (latest: 1, 2, 3")
    assert aws.mutating_calls() == []


def test_rollback_to_a_version_that_is_gone_is_refused_before_any_change(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 2\n")
    project.pkg_json("publish", "--stage", "dev")
    client("lambda").delete_function(FunctionName="datamart-dev-ingest", Qualifier="1")  # what a gc does
    aws.reset_calls()

    result = project.pkg("rollback", "--stage", "dev", "--json")  # default: the release before the current

    assert result.exit_code == 1
    assert "version 1 of datamart-dev-ingest is gone" in result.json["error"]
    assert "pkg gc" in result.json["hint"] and "Traceback" not in result.stderr
    assert aws.mutating_calls() == []
    assert live_alias("datamart-dev-ingest")[0] == "2"
