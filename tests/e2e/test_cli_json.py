"""The CLI's manners end to end: `--json` answers on failure too, Ctrl-C exits 130, `pkg run --wait` tells as it goes.

Failures are made on the server side (tests/moto_server.py's fault injection), so the tool has no
test-only path.
"""

from __future__ import annotations

import json
import os

from conftest import interrupt_publish

GLUE_SHELL = """
[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"
"""


def test_a_publish_failing_halfway_answers_json_with_the_error_and_what_completed(project, aws):
    aws.inject("CreateFunction", "error", skip=1)

    failed = project.pkg("publish", "--stage", "dev", "-j", "1", "--json")

    assert failed.exit_code == 1
    assert "error: create_function datamart-dev-report failed" in failed.stderr
    report = failed.json  # one JSON object on stdout
    assert report["error"].startswith("create_function datamart-dev-report failed: InvalidParameterValueException")
    assert report["hint"] and report["type"] == "PublishError"
    assert (report["stage"], report["region"]) == ("dev", "us-east-1")
    statuses = {(action["name"], action["action"]): action["status"] for action in report["actions"]}
    assert statuses[("datamart-dev-internal_libs", "publish_layer_version")] == "done"
    assert statuses[("datamart-dev-ingest", "create_function")] == "done"
    assert statuses[("datamart-dev-report", "create_function")] == "failed"
    assert {artifact["id"] for artifact in report["artifacts"]} >= {"lambda/function/ingest", "lambda/function/report"}


def test_a_config_error_answers_json(project, aws):
    failed = project.pkg("publish", "--stage", "nowhere", "--json")

    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: ")
    report = failed.json
    assert set(report) == {"error", "hint", "type"}
    assert "nowhere" in report["error"] and report["hint"]


def test_a_usage_error_answers_json(project):
    failed = project.pkg("publish", "-j", "0", "--json", "--stage", "dev")

    assert failed.exit_code == 2
    report = failed.json
    assert report["type"] == "UsageError" and "-j" in report["error"]
    assert report["hint"].endswith(" publish --help`")  # the program's name: `pkg` from the console script


def test_a_discovery_error_answers_json_with_every_problem(repo):
    repo.write("src/lambda/bad-name.py", "def handler(event, context):\n    return 1\n")

    failed = repo.pkg("build", "--json")

    assert failed.exit_code == 1
    report = failed.json
    assert report["type"] == "DiscoveryError" and report["problems"]
    assert all(problem in report["error"] for problem in report["problems"])


def test_env_commands_answer_json(repo, no_conda):
    written = repo.pkg("env", "write", "--json")
    assert written.exit_code == 0, written.stderr
    assert written.json["written"]
    assert repo.pkg_json("env", "write", "--check") == {"stale": {}}

    os.remove(repo.root / written.json["written"][0])
    stale = repo.pkg("env", "write", "--check", "--json")
    assert stale.exit_code == 1
    assert stale.json["stale"] == {written.json["written"][0]: "missing"}
    assert stale.json["type"] == "PkgError" and "out of date" in stale.json["error"]

    repo.pkg_json("env", "write")

    created = repo.pkg_json("env", "create", "lambda")
    assert created["command"] and created["ran"] is False and created["manager_found"] is False
    locked = repo.pkg_json("env", "lock")
    assert locked["commands"] and locked["ran"] is False


def test_ctrl_c_exits_130_with_one_line_and_json_tells_what_completed(project, aws):
    process = interrupt_publish(project, aws, "--json")
    stdout, stderr = process.stdout, process.stderr
    assert process.returncode == 130
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert stderr.splitlines()[-1] == "error: interrupted"
    report = json.loads(stdout)  # --json answers even then, with what completed
    assert report["type"] == "Interrupted" and report["stage"] == "dev"
    statuses = {(action["name"], action["action"]): action["status"] for action in report["actions"]}
    assert statuses[("datamart-dev-internal_libs", "publish_layer_version")] == "done"
    assert statuses[("datamart-dev-ingest", "create_function")] == "done"  # the held call, confirmed after Ctrl-C
    assert statuses[("datamart-dev-report", "create_function")] == "not run"


def test_run_wait_tells_the_run_id_at_once_and_each_state_on_stderr(project, aws):
    with open(project.root / "pyproject.toml", "a") as stream:
        stream.write(GLUE_SHELL)
    project.write("src/glue_python_shell/totals.py", "print(sum([1, 2, 3]))\n")
    project.pkg_json("publish", "--stage", "dev")

    result = project.pkg("run", "glue_python_shell/totals", "--stage", "dev", "--wait", "--timeout", "60", "--json")

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    lines = [line for line in result.stderr.splitlines() if line.startswith("glue_python_shell/job/totals run ")]
    assert lines[0] == f"glue_python_shell/job/totals run {report['run_id']}: STARTED"
    assert lines[-1] == f"glue_python_shell/job/totals run {report['run_id']}: SUCCEEDED"
