"""pkg gc against a moto server: only unreferenced layer versions and S3 artifacts go, the newest N stay."""

from __future__ import annotations

import json
import sqlite3

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, LAMBDA_ROLE, PUBLISH_PYPROJECT, make_repo

LAYER = "datamart-dev-internal_libs"


def lam():
    return boto3.client("lambda", region_name=AWS_REGION)


def versions(name: str = LAYER) -> list[int]:
    return sorted(v["Version"] for v in lam().list_layer_versions(LayerName=name)["LayerVersions"])


def publish_lib_versions(project, count: int) -> None:
    for n in range(count):
        project.write("src/lambda/internal_libs/version.py", f"VERSION = {n}\n")
        assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] > 0


def test_gc_keeps_what_is_in_use_and_the_newest_n(project, aws):
    publish_lib_versions(project, 5)
    assert versions() == [1, 2, 3, 4, 5]
    # A function made by hand that still runs on version 1: never collected.
    old_arn = lam().get_layer_version(LayerName=LAYER, VersionNumber=1)["LayerVersionArn"]
    lam().create_function(
        FunctionName="someone-elses",
        Runtime="python3.12",
        Role=LAMBDA_ROLE,
        Handler="x.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Layers=[old_arn],
    )
    s3 = boto3.client("s3", region_name=AWS_REGION)
    for n in range(4):
        s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"pkg/lambda/{n:064x}.zip", Body=b"old code")

    dry = project.pkg_json("gc", "--stage", "dev", "--keep", "2", "--dry-run")
    doomed = {a["name"] for a in dry["actions"] if a["action"] != "keep"}
    assert dry["summary"]["deleted"] == 0 and versions() == [1, 2, 3, 4, 5]
    layer_arns = {a["name"].rsplit(":", 1)[-1] for a in dry["actions"] if a["action"] == "delete_layer_version"}
    assert layer_arns == {"3", "2"}  # 5 in use, 4 among the newest 2, 1 in use by someone else's function
    reasons = {a["name"].rsplit(":", 1)[-1]: a["reason"] for a in dry["actions"] if ":layer:" in a["name"]}
    assert reasons["1"] == "in use" and reasons["5"] == "in use"
    assert len([n for n in doomed if n.startswith("s3://")]) == 2  # 4 unused objects, newest 2 kept

    done = project.pkg_json("gc", "--stage", "dev", "--keep", "2")
    # 2 layer versions, 2 objects, and versions 1-3 of both functions (aliases and releases 4-5 run 4 and 5).
    assert done["summary"]["deleted"] == 10
    assert versions() == [1, 4, 5]
    assert len(s3.list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix="pkg/lambda/")["Contents"]) == 2
    # Nothing left to collect; publishing still works and makes no call.
    assert project.pkg_json("gc", "--stage", "dev", "--keep", "2")["summary"]["to_delete"] == 0
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_gc_keep_zero_still_never_deletes_a_version_in_use(project, aws):
    publish_lib_versions(project, 3)
    project.pkg_json("gc", "--stage", "dev", "--keep", "0")
    assert versions() == [3]
    for function in ("ingest", "report"):
        layers = lam().get_function(FunctionName=f"datamart-dev-{function}")["Configuration"]["Layers"]
        assert [layer["Arn"].rsplit(":", 1)[-1] for layer in layers] == ["3"]


def test_gc_keeps_the_objects_glue_jobs_and_emr_run_specifications_name(tmp_path, aws):
    from test_jobs_publish import glue, jobs_project

    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    first = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]["Command"]["ScriptLocation"]
    original = (repo.root / "src/glue_spark/clean_glue_spark.py").read_text()
    repo.write("src/glue_spark/clean_glue_spark.py", "print('v2')\n")
    repo.pkg_json("publish", "--stage", "dev")
    current = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]

    report = repo.pkg_json("gc", "--stage", "dev", "--keep", "0")
    deleted = {a["name"] for a in report["actions"] if a["action"] == "delete_object"}
    assert deleted == {first}  # the replaced script, and nothing else
    s3 = boto3.client("s3", region_name=AWS_REGION)
    live = {f"s3://{ARTIFACT_BUCKET}/{o['Key']}" for o in s3.list_objects_v2(Bucket=ARTIFACT_BUCKET)["Contents"]}
    assert current["Command"]["ScriptLocation"] in live
    for value in current["DefaultArguments"].values():
        for part in value.split(","):
            if part.startswith(f"s3://{ARTIFACT_BUCKET}/"):
                assert part in live
    assert any("/emr/" in name for name in live)  # the EMR run specification's artifacts stay
    assert repo.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0

    # Back to the first script: the object gc deleted is uploaded again before the job points at it.
    repo.write("src/glue_spark/clean_glue_spark.py", original)
    steps = repo.pkg_json("publish", "--stage", "dev")["actions"]
    assert {"action": "put_object", "name": first} in [{k: a[k] for k in ("action", "name")} for a in steps]
    assert glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]["Command"]["ScriptLocation"] == first
    bucket, key = first[len("s3://") :].split("/", 1)
    s3.head_object(Bucket=bucket, Key=key)


def test_gc_with_credentials_that_may_not_list_ends_in_an_error_not_a_traceback(project, aws):
    publish_lib_versions(project, 1)
    aws.inject("ListLayers", "error")

    result = project.pkg("gc", "--stage", "dev")

    assert result.exit_code == 1
    assert "ListLayers" in result.stderr and "injected failure" in result.stderr
    assert "hint:" in result.stderr and "pkg gc" in result.stderr and "Traceback" not in result.stderr


def test_a_deletion_refused_by_aws_ends_in_an_error_not_a_traceback(project, aws):
    publish_lib_versions(project, 3)
    aws.inject("DeleteLayerVersion", "error")

    result = project.pkg("gc", "--stage", "dev", "--keep", "0")

    assert result.exit_code == 1
    assert "DeleteLayerVersion" in result.stderr and "Traceback" not in result.stderr
    assert versions() == [1, 2, 3]


def test_a_gc_failing_midway_says_in_json_what_it_deleted(project, aws):
    publish_lib_versions(project, 3)
    aws.inject("DeleteLayerVersion", "error", skip=1)

    result = project.pkg("gc", "--stage", "dev", "--keep", "0", "--json")

    assert result.exit_code == 1 and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["type"] == "PublishError" and "DeleteLayerVersion" in report["error"]
    layers = [deletion for deletion in report["deleted"] if deletion["action"] == "delete_layer_version"]
    assert len(layers) == 1  # after the function versions that ran on them
    assert len(versions()) == 2


def _publish_report(project) -> tuple[dict, dict]:
    report = project.pkg_json("publish", "--stage", "dev")
    steps = {(a["id"], a["action"]): a for a in report["actions"]}
    return report, steps


def _layer_of(function: str) -> str:
    layers = lam().get_function(FunctionName=f"datamart-dev-{function}")["Configuration"]["Layers"]
    return layers[0]["Arn"].rsplit(":", 1)[-1]


def test_gc_keep_zero_then_revert_publishes_a_new_version(project, aws):
    publish_lib_versions(project, 2)
    collected = project.pkg_json("gc", "--stage", "dev", "--keep", "0")["actions"]
    deleted_layers = [a["name"] for a in collected if a["action"] == "delete_layer_version"]
    assert [arn.split(":layer:")[1] for arn in deleted_layers] == ["datamart-dev-internal_libs:1"]
    assert versions() == [2]

    project.write("src/lambda/internal_libs/version.py", "VERSION = 0\n")  # back to version 1's input
    report, steps = _publish_report(project)

    layer = steps[("lambda/internal_libs", "publish_layer_version")]
    assert layer["reason"] == "layer version 1 was deleted by gc" and layer["status"] == "done"
    assert versions() == [2, 3] and _layer_of("ingest") == _layer_of("report") == "3"
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_a_stale_record_of_a_deleted_version_is_published_again_when_found_missing(project, aws):
    publish_lib_versions(project, 2)
    project.pkg_json("gc", "--stage", "dev", "--keep", "0")
    # A second machine whose index has not seen gc's mark: it still records version 1 as usable.
    conn = sqlite3.connect(project.cache_dir / "index.sqlite")
    with conn:
        changed = conn.execute("UPDATE published SET details = json_remove(details, '$.deleted')").rowcount
    conn.close()
    assert changed
    project.write("src/lambda/internal_libs/version.py", "VERSION = 0\n")
    aws.reset_calls()

    report, steps = _publish_report(project)

    republished = steps[("lambda/internal_libs", "publish_layer_version")]
    assert "was deleted (found missing)" in republished["reason"] and republished["status"] == "done"
    assert versions() == [2, 3] and _layer_of("ingest") == _layer_of("report") == "3"
    assert aws.mutating_calls().count("PublishLayerVersion") == 1  # once, for both functions
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_what_gc_deleted_reaches_another_machine_through_the_shared_index(tmp_path, aws):
    from test_shared_cache import CACHE_URI, clone

    project = make_repo(tmp_path)
    project.write(
        "pyproject.toml", PUBLISH_PYPROJECT.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "{CACHE_URI}"\n')
    )
    publish_lib_versions(project, 2)
    laptop = clone(project, tmp_path, "laptop")
    laptop.pkg_json("cache", "pull")  # knows version 1 as published, before gc
    project.pkg_json("gc", "--stage", "dev", "--keep", "0")

    laptop.write("src/lambda/internal_libs/version.py", "VERSION = 0\n")
    plan = laptop.pkg_json("plan", "--stage", "dev")  # pulls the shared index first

    layer = next(a for a in plan["actions"] if a["id"] == "lambda/internal_libs")
    assert layer["action"] == "publish_layer_version" and layer["reason"] == "layer version 1 was deleted by gc"
