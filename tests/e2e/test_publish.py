"""`pkg publish` end to end against a local moto server: only what changed is published, and reruns converge.

Mutating calls are counted on the server side (tests/moto_server.py logs every request), so
the tool has no test-only code path. Live state is read back with boto3 and compared with the
local zips.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys

import boto3
import pytest
from conftest import AWS_REGION, LAMBDA_ROLE, PUBLISH_PYPROJECT, interrupt_publish, run_console

PKG_TAGS = {"pkg:project": "datamart", "pkg:stage": "dev"}  # on everything pkg creates

def lam():
    return boto3.client("lambda", region_name=AWS_REGION)


def code_sha256(path: str) -> str:
    with open(path, "rb") as stream:
        return base64.b64encode(hashlib.sha256(stream.read()).digest()).decode()


def actions_by_name(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for action in report["actions"]:
        found.setdefault(action["name"], []).append(action["action"])
    return found


def mutating(server) -> list[str]:
    return server.mutating_calls()


# After a function's steps, a version is published and its alias moves there (tests/e2e/test_releases.py);
# a new function's CreateFunction publishes version 1 itself (Publish), so only its alias is made after it.
NEW_ALIAS = ["PublishVersion", "CreateAlias"]
MOVED_ALIAS = ["PublishVersion", "UpdateAlias"]
CREATED = ["CreateFunction", "CreateAlias"]


def test_first_publish_creates_everything_and_live_state_matches_the_local_zips(project, aws):
    report = project.pkg_json("publish", "--stage", "dev")

    assert actions_by_name(report) == {
        "datamart-dev-internal_libs": ["publish_layer_version"],
        "datamart-dev-ingest": ["create_function", "publish_version"],
        "datamart-dev-report": ["create_function", "publish_version"],
    }
    assert report["summary"]["mutating_calls"] == 5
    assert all(action["status"] == "done" for action in report["actions"])
    assert sorted(mutating(aws)) == sorted(["PublishLayerVersion", *CREATED * 2])

    paths = {artifact["id"]: artifact["path"] for artifact in report["artifacts"]}
    layer = lam().get_layer_version(LayerName="datamart-dev-internal_libs", VersionNumber=1)
    assert layer["Content"]["CodeSha256"] == code_sha256(paths["lambda/internal_libs"])
    for function, memory in (("ingest", 1024), ("report", 128)):
        live = lam().get_function(FunctionName=f"datamart-dev-{function}")
        config = live["Configuration"]
        assert config["CodeSha256"] == code_sha256(paths[f"lambda/function/{function}"])
        assert config["Handler"] == f"{function}.handler"
        assert config["Runtime"] == "python3.12"
        assert config["MemorySize"] == memory
        assert config["Role"] == LAMBDA_ROLE
        assert config["Environment"]["Variables"] == {"STAGE": "dev"}
        assert [layer["Arn"] for layer in config["Layers"]] == [layer["LayerVersionArn"]]
        assert live["Tags"] == {**PKG_TAGS, "team": "data"}


def test_second_publish_makes_no_mutating_call(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert report["summary"] == {"built": 0, "cached": 3, "mutating_calls": 0, "dry_run": False}
    assert {action["action"] for action in report["actions"]} == {"skip"}
    assert mutating(aws) == []
    # A no-op publish reads only who the credentials belong to.
    assert [call["operation"] for call in aws.calls()] == ["GetCallerIdentity"]


def test_editing_one_handler_updates_exactly_that_function(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/report.py", "def handler(event, context):\n    return 'v2'\n")
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    changed = {a["name"]: a for a in report["actions"] if a["action"] not in ("skip", "publish_version")}
    assert list(changed) == ["datamart-dev-report"]
    assert changed["datamart-dev-report"]["action"] == "update_function_code"
    assert "src/lambda/report.py changed" in changed["datamart-dev-report"]["reason"]
    assert [(c["operation"], c["path"].split("/")[3]) for c in aws.calls() if c["mutating"]] == [
        ("UpdateFunctionCode", "datamart-dev-report"),
        ("PublishVersion", "datamart-dev-report"),
        ("UpdateAlias", "datamart-dev-report"),
    ]
    path = next(a["path"] for a in report["artifacts"] if a["id"] == "lambda/function/report")
    assert lam().get_function(FunctionName="datamart-dev-report")["Configuration"]["CodeSha256"] == code_sha256(path)


def test_editing_internal_libs_publishes_one_layer_version_and_updates_its_users(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/internal_libs/orders.py", "def parse(record):\n    return record\n")
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert actions_by_name(report) == {
        "datamart-dev-internal_libs": ["publish_layer_version"],
        "datamart-dev-ingest": ["update_function_configuration", "publish_version"],
        "datamart-dev-report": ["update_function_configuration", "publish_version"],
    }
    assert sorted(mutating(aws)) == sorted(
        ["PublishLayerVersion", "UpdateFunctionConfiguration", "UpdateFunctionConfiguration", *MOVED_ALIAS * 2]
    )
    versions = lam().list_layer_versions(LayerName="datamart-dev-internal_libs")["LayerVersions"]
    assert sorted(v["Version"] for v in versions) == [1, 2]
    newest = max(versions, key=lambda v: v["Version"])["LayerVersionArn"]
    for function in ("ingest", "report"):
        config = lam().get_function(FunctionName=f"datamart-dev-{function}")["Configuration"]
        assert [layer["Arn"] for layer in config["Layers"]] == [newest]
    assert mutating_after_noop(project, aws) == []


def mutating_after_noop(project, aws) -> list[str]:
    aws.reset_calls()
    project.pkg_json("publish", "--stage", "dev")
    return mutating(aws)


def test_a_setting_change_updates_only_that_functions_configuration(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace("memory = 1024", "memory = 2048\ntimeout = 60"))
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    changed = [a for a in report["actions"] if a["action"] != "skip"]
    assert [(a["name"], a["action"]) for a in changed] == [
        ("datamart-dev-ingest", "update_function_configuration"),
        ("datamart-dev-ingest", "publish_version"),
    ]
    assert "MemorySize 1024 -> 2048" in changed[0]["reason"]
    assert mutating(aws) == ["UpdateFunctionConfiguration", *MOVED_ALIAS]
    config = lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]
    assert (config["MemorySize"], config["Timeout"]) == (2048, 60)


def test_code_and_configuration_changes_wait_for_the_update_in_between(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 'v2'\n")
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace("memory = 1024", "memory = 512"))
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert [(a["name"], a["action"]) for a in report["actions"] if a["action"] != "skip"] == [
        ("datamart-dev-ingest", "update_function_code"),
        ("datamart-dev-ingest", "update_function_configuration"),
        ("datamart-dev-ingest", "publish_version"),
    ]
    # function_updated_v2 polls GetFunction after each update until it has ended (Lambda refuses
    # overlapping ones, and one may end Failed); the version is published after the last one.
    assert [c["operation"] for c in aws.calls()][1:] == [
        "UpdateFunctionCode",
        "GetFunction",
        "UpdateFunctionConfiguration",
        "GetFunction",
        *MOVED_ALIAS,
    ]
    config = lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]
    assert config["MemorySize"] == 512 and config["LastUpdateStatus"] == "Successful"


def test_tags_are_added_and_removed(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('tags = { team = "data" }', 'tags = { owner = "ana" }'))
    aws.reset_calls()

    project.pkg_json("publish", "--stage", "dev")

    assert sorted(mutating(aws)) == ["TagResource", "TagResource", "UntagResource", "UntagResource"]
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Tags"] == {**PKG_TAGS, "owner": "ana"}
    assert mutating_after_noop(project, aws) == []


def test_plan_and_dry_run_make_no_mutating_call(project, aws):
    plan = project.pkg_json("plan", "--stage", "dev")
    first = ["publish_layer_version", "create_function", "publish_version", "create_function", "publish_version"]
    assert [a["action"] for a in plan["actions"]] == first
    assert plan["summary"]["mutating_calls"] == 5  # after a create, a publish_version is one call: CreateAlias
    assert all(a["reason"] for a in plan["actions"])
    assert [a["action"] for a in plan["artifacts"]] == ["build", "build", "build"]  # plan builds nothing

    dry = project.pkg_json("publish", "--stage", "dev", "--dry-run")
    assert [a["action"] for a in dry["actions"]] == first
    assert mutating(aws) == []
    assert lam().list_functions()["Functions"] == []


def test_plan_text_lists_every_action_with_its_reason(project, aws):
    result = project.pkg("plan", "--stage", "dev")
    assert result.exit_code == 0, result.stderr
    assert "publish_layer_version" in result.stdout and "datamart-dev-internal_libs" in result.stdout
    assert "create_function" in result.stdout and "new function" in result.stdout
    assert "publish_version" in result.stdout and "alias live -> version 1 of the new function" in result.stdout
    assert "5 mutating AWS calls" in result.stdout


def test_drift_is_reported_by_plan_refresh_and_repaired_by_publish(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    lam().update_function_configuration(FunctionName="datamart-dev-report", MemorySize=512, Layers=[])
    aws.reset_calls()

    # Without --refresh the index says all is well; with it, the live function is compared.
    assert {a["action"] for a in project.pkg_json("plan", "--stage", "dev")["actions"]} == {"skip"}
    plan = project.pkg_json("plan", "--stage", "dev", "--refresh")
    assert mutating(aws) == []
    assert {(d["name"], d["field"]) for d in plan["drift"]} == {
        ("datamart-dev-report", "configuration"),
        ("datamart-dev-report", "layers"),
    }
    repair = [a for a in plan["actions"] if a["action"] != "skip"]
    assert [(a["name"], a["action"]) for a in repair] == [
        ("datamart-dev-report", "update_function_configuration"),
        ("datamart-dev-report", "publish_version"),
    ]
    assert repair[0]["reason"].startswith("drift:")

    report = project.pkg_json("publish", "--stage", "dev")

    assert mutating(aws) == ["UpdateFunctionConfiguration", *MOVED_ALIAS]
    assert [a["action"] for a in report["actions"] if a["action"] != "skip"] == [
        "update_function_configuration",
        "publish_version",
    ]
    config = lam().get_function(FunctionName="datamart-dev-report")["Configuration"]
    assert config["MemorySize"] == 128 and len(config["Layers"]) == 1
    again = project.pkg_json("plan", "--stage", "dev", "--refresh")
    assert again["drift"] == [] and again["summary"]["mutating_calls"] == 0


def test_code_changed_out_of_band_is_repaired(project, aws):
    first = project.pkg_json("publish", "--stage", "dev")
    other = next(a["path"] for a in first["artifacts"] if a["id"] == "lambda/function/report")
    with open(other, "rb") as stream:
        lam().update_function_code(FunctionName="datamart-dev-ingest", ZipFile=stream.read())

    report = project.pkg_json("publish", "--stage", "dev", "--refresh")

    assert [(a["name"], a["action"]) for a in report["actions"] if a["action"] != "skip"] == [
        ("datamart-dev-ingest", "update_function_code"),
        ("datamart-dev-ingest", "publish_version"),
    ]
    path = next(a["path"] for a in report["artifacts"] if a["id"] == "lambda/function/ingest")
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["CodeSha256"] == code_sha256(path)


def test_a_function_deleted_out_of_band_is_recreated(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    lam().delete_function(FunctionName="datamart-dev-ingest")

    plan = project.pkg_json("plan", "--stage", "dev", "--refresh")
    assert [(a["name"], a["action"]) for a in plan["actions"] if a["action"] != "skip"] == [
        ("datamart-dev-ingest", "create_function"),
        ("datamart-dev-ingest", "publish_version"),
    ]
    project.pkg_json("publish", "--stage", "dev")
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["MemorySize"] == 1024


def test_throttling_is_retried_with_backoff(project, aws):
    aws.inject("CreateFunction", "throttle", times=2)
    aws.inject("PublishLayerVersion", "throttle", times=1)

    report = project.pkg_json("publish", "--stage", "dev")

    assert all(a["status"] == "done" for a in report["actions"])
    operations = [call["operation"] for call in aws.calls()]
    assert operations.count("CreateFunction") == 4 and operations.count("PublishLayerVersion") == 2
    assert len(lam().list_layer_versions(LayerName="datamart-dev-internal_libs")["LayerVersions"]) == 1


def test_an_update_still_in_progress_is_waited_for_then_retried(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/report.py", "def handler(event, context):\n    return 'v2'\n")
    aws.inject("UpdateFunctionCode", "conflict")
    aws.reset_calls()

    project.pkg_json("publish", "--stage", "dev")

    assert [c["operation"] for c in aws.calls()][1:] == [
        "UpdateFunctionCode",
        "GetFunction",  # the conflicting update has ended
        "UpdateFunctionCode",
        "GetFunction",  # and so has this one
        *MOVED_ALIAS,
    ]


def test_an_error_halfway_stops_cleanly_and_a_rerun_finishes_the_job(project, aws):
    aws.inject("CreateFunction", "error", skip=1)

    failed = project.pkg("publish", "--stage", "dev", "-j", "1")

    assert failed.exit_code == 1
    assert "error: create_function datamart-dev-report failed: InvalidParameterValueException" in failed.stderr
    assert "hint:" in failed.stderr and "Traceback" not in failed.stderr
    aws.reset_calls()
    report = project.pkg_json("publish", "--stage", "dev")
    assert [(a["name"], a["action"]) for a in report["actions"] if a["action"] != "skip"] == [
        ("datamart-dev-report", "create_function"),
        ("datamart-dev-report", "publish_version"),
    ]
    assert mutating(aws) == CREATED
    assert mutating_after_noop(project, aws) == []


@pytest.mark.parametrize("operation", ["PublishLayerVersion", "CreateFunction"])
def test_a_publish_killed_after_aws_acted_converges_without_duplicates(project, aws, operation):
    # AWS performs the call, then the response is held until the client is killed: the index
    # never hears of it. The rerun must find it (layer description / live function) and adopt it.
    aws.inject(operation, "hang_after")
    env = {"PKG_CACHE_DIR": str(project.cache_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "publish", "--stage", "dev", "-j", "1"],
        cwd=project.root,
        env={**_environ(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        aws.wait_held(operation)  # AWS did the work; the client has not heard back
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        aws.release()
        if process.poll() is None:
            process.kill()

    report = project.pkg_json("publish", "--stage", "dev")

    assert all(a["status"] in ("done", "skipped") for a in report["actions"])
    versions = lam().list_layer_versions(LayerName="datamart-dev-internal_libs")["LayerVersions"]
    assert [v["Version"] for v in versions] == [1]
    names = sorted(f["FunctionName"] for f in lam().list_functions()["Functions"])
    assert names == ["datamart-dev-ingest", "datamart-dev-report"]
    for function in names:
        layers = lam().get_function(FunctionName=function)["Configuration"]["Layers"]
        assert [layer["Arn"] for layer in layers] == [versions[0]["LayerVersionArn"]]
        # CreateFunction published version 1 before the kill: the rerun's PublishVersion finds it, not a 2.
        published = lam().list_versions_by_function(FunctionName=function)["Versions"]
        assert [v["Version"] for v in published] == ["$LATEST", "1"], function
        assert lam().get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "1"
    assert mutating_after_noop(project, aws) == []


def test_ctrl_c_starts_nothing_new_and_records_what_aws_confirmed(project, aws):
    process = interrupt_publish(project, aws)
    stderr = process.stderr
    assert process.returncode == 130  # the conventional exit code of a run stopped by SIGINT
    assert "Traceback" not in stderr
    assert [c["operation"] for c in aws.calls()].count("CreateFunction") == 1
    aws.reset_calls()

    project.pkg_json("publish", "--stage", "dev")

    # The interrupted run recorded the function AWS created, so the rerun creates only the other one
    # (and publishes the versions and aliases the interrupted run never reached).
    assert sorted(mutating(aws)) == sorted([*CREATED, *NEW_ALIAS])
    # One read to plan the unrecorded function, one to plan again under the stage's lease, one to wait
    # for its creation to end.
    assert [c["operation"] for c in aws.calls()].count("GetFunction") == 3


def test_two_publishes_at_once_publish_each_thing_once(project, aws):
    env = {**_environ(), "PKG_CACHE_DIR": str(project.cache_dir)}
    command = [sys.executable, "-m", "packager", "publish", "--stage", "dev"]
    runs = [
        subprocess.Popen(command, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [run.communicate(timeout=120) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], results
    assert sorted(mutating(aws)) == sorted(["PublishLayerVersion", *CREATED * 2])
    assert len(lam().list_layer_versions(LayerName="datamart-dev-internal_libs")["LayerVersions"]) == 1


@pytest.mark.parametrize("operation", ["UpdateFunctionCode", "UpdateFunctionConfiguration"])
def test_a_publish_killed_after_an_update_reruns_without_repeating_it(project, aws, operation):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/report.py", "def handler(event, context):\n    return 'v2'\n")
    project.write(
        "pyproject.toml", PUBLISH_PYPROJECT.replace('tags = { team = "data" }', 'timeout = 9\ntags = { team = "data" }')
    )
    aws.reset_calls()  # `done` below: the calls of the killed run alone
    aws.inject(operation, "hang_after")
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "publish", "--stage", "dev", "-j", "1"],
        cwd=project.root,
        env={**_environ(), "PKG_CACHE_DIR": str(project.cache_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        aws.wait_held(operation)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        aws.release()
        if process.poll() is None:
            process.kill()
    done = {(c["operation"], c["path"]) for c in aws.calls() if c["mutating"]}
    assert any(op == operation for op, _ in done)
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    # What AWS did before the kill is read back (the rows were flagged) and not done again.
    assert not done & {(c["operation"], c["path"]) for c in aws.calls() if c["mutating"]}
    assert all(a["status"] in ("done", "skipped") for a in report["actions"])
    for function in ("ingest", "report"):
        config = lam().get_function(FunctionName=f"datamart-dev-{function}")["Configuration"]
        assert config["Timeout"] == 9
    assert mutating_after_noop(project, aws) == []


def _environ() -> dict:
    return dict(os.environ)


def test_a_lost_index_is_rebuilt_from_live_state_without_republishing(project, aws, tmp_path):
    project.pkg_json("publish", "--stage", "dev")
    project.cache_dir = tmp_path / "fresh-cache"  # another machine, an empty cache
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    assert mutating(aws) == []
    assert all(a["action"] == "skip" for a in report["actions"])
    assert mutating_after_noop(project, aws) == []


def test_a_lost_index_and_a_changed_setting_adopt_then_update(project, aws, tmp_path):
    project.pkg_json("publish", "--stage", "dev")
    project.cache_dir = tmp_path / "fresh-cache"
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('tags = { team = "data" }', 'tags = { owner = "ana" }'))
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "dev")

    ingest = [a["action"] for a in report["actions"] if a["name"] == "datamart-dev-ingest"]
    assert ingest == ["skip", "tag_resource", "untag_resource"]
    assert sorted(mutating(aws)) == ["TagResource", "TagResource", "UntagResource", "UntagResource"]
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Tags"] == {**PKG_TAGS, "owner": "ana"}
    assert mutating_after_noop(project, aws) == []


def test_publishing_one_function_by_name_takes_its_layers_along(project, aws):
    report = project.pkg_json("publish", "--stage", "dev", "report")

    assert actions_by_name(report) == {
        "datamart-dev-internal_libs": ["publish_layer_version"],
        "datamart-dev-report": ["create_function", "publish_version"],
    }
    assert [f["FunctionName"] for f in lam().list_functions()["Functions"]] == ["datamart-dev-report"]


def test_an_unknown_profile_is_a_clean_error(project, aws):
    result = project.pkg("publish", "--stage", "dev", "--profile", "nope")
    assert result.exit_code == 1
    assert "error: AWS profile 'nope' not found" in result.stderr and "Traceback" not in result.stderr


def test_missing_credentials_is_a_clean_error(project, aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = project.pkg("publish", "--stage", "dev")

    assert result.exit_code == 1
    assert "error: no AWS credentials found" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert not (project.cache_dir / "store").exists()  # found out before building anything


def test_a_missing_role_is_named(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace("role/datamart-lambda", "role/nobody"))

    result = project.pkg("publish", "--stage", "dev")

    assert result.exit_code == 1
    assert "role" in result.stderr and "lambda.amazonaws.com" in result.stderr
    # The layer went out before the failure and is recorded: the rerun publishes it no more.
    project.write("pyproject.toml", PUBLISH_PYPROJECT)
    aws.reset_calls()
    project.pkg_json("publish", "--stage", "dev")
    assert sorted(mutating(aws)) == sorted(CREATED * 2)


def test_credentials_for_another_account_are_refused(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('account = "123456789012"', 'account = "210987654321"'))

    result = project.pkg("publish", "--stage", "dev")

    assert result.exit_code == 1
    assert "account 123456789012" in result.stderr and "210987654321" in result.stderr
    assert mutating(aws) == []


def test_an_unknown_stage_is_refused(project, aws):
    result = project.pkg("publish", "--stage", "prod")
    assert result.exit_code == 1
    assert "unknown stage 'prod'" in result.stderr and "dev" in result.stderr


def test_stages_are_published_and_recorded_apart(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT + '\n[tool.pkg.stages.prod]\nregion = "us-east-1"\n')
    project.pkg_json("publish", "--stage", "dev")
    aws.reset_calls()

    report = project.pkg_json("publish", "--stage", "prod")

    assert actions_by_name(report) == {
        "datamart-prod-internal_libs": ["publish_layer_version"],
        "datamart-prod-ingest": ["create_function", "publish_version"],
        "datamart-prod-report": ["create_function", "publish_version"],
    }
    assert report["summary"]["built"] == 0  # the artifacts are shared; only the AWS side differs
    assert mutating_after_noop(project, aws) == []


def test_names_over_the_aws_limits_are_refused_before_any_call(project, aws):
    long_name = "f" * 52  # datamart-dev-fff...: 65 characters
    project.write(f"src/lambda/{long_name}.py", "def handler(event, context):\n    return 1\n")

    result = project.pkg("plan", "--stage", "dev")

    assert result.exit_code == 1
    assert f"datamart-dev-{long_name}" in result.stderr and "at most 64" in result.stderr
    assert mutating(aws) == []


def test_a_layer_name_over_the_arn_limit_is_refused(project, aws):
    # arn:aws:lambda:us-east-1:123456789012:layer:<name>:<version> must stay within 140 characters.
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('project = "datamart"', f'project = "{"p" * 80}"'))
    result = project.pkg("plan", "--stage", "dev")
    assert result.exit_code == 1
    assert "lambda/internal_libs: layer name" in result.stderr and "at most 90" in result.stderr


def test_a_project_name_that_cant_name_a_function_is_refused(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace('project = "datamart"', 'project = "data mart"'))
    result = project.pkg("plan", "--stage", "dev")
    assert result.exit_code == 1
    assert "tool.pkg.project" in result.stderr


def test_a_missing_role_setting_is_a_config_error(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace(f'role = "{LAMBDA_ROLE}"\n', ""))
    result = project.pkg("plan", "--stage", "dev")
    assert result.exit_code == 1
    assert "tool.pkg.lambda.role" in result.stderr


def test_the_console_script_publishes_too(project, aws):
    result = run_console(["publish", "--stage", "dev"], cwd=project.root, env={"PKG_CACHE_DIR": str(project.cache_dir)})
    assert result.returncode == 0, result.stderr
    assert "5 mutating AWS calls made" in result.stdout, result.stdout + result.stderr
