"""What pkg sends is what it read and what it built (issue 12).

- Every Lambda update carries the RevisionId pkg read (recorded from AWS's last answer, or read live
  while planning): a change made by anyone else in between is refused (the test server answers 412
  PreconditionFailedException as AWS does), never overwritten.
- Every upload hashes the bytes it is about to send and compares them with the record first: a
  corrupted store file never goes live.

A change "in between" is made while the publish's PublishLayerVersion answer is held by the test
server (`hang_after`): after the plan, before the functions' updates.
"""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
from conftest import AWS_REGION, start_pkg

UPDATES = ("UpdateFunctionCode", "UpdateFunctionConfiguration")


def lam():
    return boto3.client("lambda", region_name=AWS_REGION)


def publish_while_held(project, aws, operation: str, meanwhile) -> subprocess.CompletedProcess:
    """`pkg publish --stage dev` as a console run; `meanwhile()` runs while its `operation` answer is held."""
    aws.inject(operation, "hang_after")
    command = [sys.executable, "-m", "packager", "publish", "--stage", "dev", "-j", "1"]
    process = start_pkg(project, command)
    try:
        aws.wait_held(operation)
        meanwhile()
        aws.release()
        stdout, stderr = process.communicate(timeout=120)
    finally:
        aws.release()
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def edit_handler_and_libs(project) -> None:
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 'v2'\n")
    project.write("src/lambda/internal_libs/extra.py", "VALUE = 2\n")


def test_a_function_changed_by_someone_else_after_the_plan_is_not_overwritten(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    edit_handler_and_libs(project)
    before = lam().get_function(FunctionName="datamart-dev-report")["Configuration"]

    def someone_else_changes_report() -> None:
        lam().update_function_configuration(FunctionName="datamart-dev-report", MemorySize=640)

    run = publish_while_held(project, aws, "PublishLayerVersion", someone_else_changes_report)

    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: datamart-dev-report: the function was changed by someone else since pkg read it;"
        " nothing was overwritten"
    ]
    assert "run `pkg plan` again" in run.stderr and "Traceback" not in run.stderr
    live = lam().get_function(FunctionName="datamart-dev-report")["Configuration"]
    assert live["MemorySize"] == 640 and live["Layers"] == before["Layers"]  # the other change stands

    # The next plan reads the function (its row is left pending) and says what a publish would change.
    plan = project.pkg_json("plan", "--stage", "dev")
    report = [a for a in plan["actions"] if a["name"] == "datamart-dev-report" and a["action"] != "skip"]
    assert [a["action"] for a in report] == ["update_function_configuration", "publish_version"]
    assert "MemorySize 640 -> 128" in report[0]["reason"]
    project.pkg_json("publish", "--stage", "dev")
    assert lam().get_function(FunctionName="datamart-dev-report")["Configuration"]["MemorySize"] == 128


def test_two_updates_of_one_function_carry_the_revision_the_first_left(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    edit_handler_and_libs(project)  # ingest: new code, then the new layer version in its configuration

    report = project.pkg_json("publish", "--stage", "dev")

    steps = [(a["name"], a["action"]) for a in report["actions"] if a["action"] != "skip"]
    assert ("datamart-dev-ingest", "update_function_code") in steps
    assert ("datamart-dev-ingest", "update_function_configuration") in steps
    assert all(a["status"] in ("done", "skipped") for a in report["actions"])
    # The index holds the revision AWS now reports: a no-op plan reads nothing, a refresh finds no drift.
    assert project.pkg_json("plan", "--stage", "dev", "--refresh")["summary"]["mutating_calls"] == 0


def test_a_store_file_corrupted_after_the_plan_is_never_sent(project, aws):
    first = project.pkg_json("publish", "--stage", "dev")
    live_sha = lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["CodeSha256"]
    edit_handler_and_libs(project)
    built = project.pkg_json("build")
    path = next(a["path"] for a in built["artifacts"] if a["id"] == "lambda/function/ingest")
    assert path not in {a["path"] for a in first["artifacts"]}

    def corrupt_the_zip() -> None:
        size = os.path.getsize(path)
        with open(path, "r+b") as stream:  # same size, other bytes
            stream.write(b"\0" * size)

    aws.reset_calls()
    run = publish_while_held(project, aws, "PublishLayerVersion", corrupt_the_zip)

    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not the one built" in errors[0] and "nothing was sent" in errors[0]
    assert "pkg cache verify --repair" in run.stderr and "Traceback" not in run.stderr
    assert "UpdateFunctionCode" not in [call["operation"] for call in aws.calls()]
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["CodeSha256"] == live_sha

    # The repair drops the bad file; the next publish builds it again and sends it.
    project.pkg_json("cache", "verify", "--repair")
    project.pkg_json("publish", "--stage", "dev")
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["CodeSha256"] != live_sha


def test_the_revision_an_update_carries_is_the_one_aws_reports_once_the_update_before_ended(project, aws):
    # Lambda replaces the RevisionId again as an asynchronous update ends (the test server does too):
    # the configuration update after a slow code update must carry that one, not the code update's answer.
    project.pkg_json("publish", "--stage", "dev")
    edit_handler_and_libs(project)
    aws.inject("UpdateFunctionCode", "async_slow")

    report = project.pkg_json("publish", "--stage", "dev")

    ingest = [a["action"] for a in report["actions"] if a["name"] == "datamart-dev-ingest" and a["action"] != "skip"]
    assert ingest == ["update_function_code", "update_function_configuration", "publish_version"]
    assert all(a["status"] in ("done", "skipped") for a in report["actions"])
    live = lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0
    # The next change goes through with the revision recorded: nobody else changed the function.
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 'v3'\n")
    project.pkg_json("publish", "--stage", "dev")
    assert lam().get_function(FunctionName="datamart-dev-ingest")["Configuration"]["CodeSha256"] != live["CodeSha256"]
