"""`pkg status` and `pkg logs` end to end against the local moto server.

Both only read: the server counts no mutating call. Drift is named by field and key, never by
value. moto's Lambda runs no code without Docker, so the log lines a function or a Glue run would
write are put into moto's CloudWatch Logs by the test; the server answers GetJobRuns newest first
and honours FilterLogEvents' logStreamNamePrefix, as AWS does (tests/moto_server.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
from conftest import AWS_ACCOUNT, AWS_REGION, INTERRUPTIBLE_PKG, PUBLISH_PYPROJECT, start_pkg

from packager.deploy.aws import AwsSession
from packager.deploy.status import AwsStatusReader

GLUE_CONFIG = """
[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"
"""


def now_ms() -> int:
    return int(time.time() * 1000)


def put_events(group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Write log events as a function or a Glue run would (moto's Lambda runs no code)."""
    client = boto3.client("logs", region_name=AWS_REGION)
    if not client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": stamp, "message": message} for stamp, message in events],
    )


def by_id(report: dict) -> dict[str, dict]:
    return {resource["id"]: resource for resource in report["resources"]}


def test_status_names_the_function_changed_out_of_band_and_what_changed_never_a_value(project, aws):
    """Drift by field and key (an environment value never shown), read with GetFunction or with listing pages."""
    project.pkg_json("publish", "--stage", "dev")
    lam = boto3.client("lambda", region_name=AWS_REGION)
    lam.update_function_configuration(
        FunctionName="datamart-dev-report", MemorySize=512, Environment={"Variables": {"STAGE": "s3cr3t"}}
    )
    report_arn = lam.get_function(FunctionName="datamart-dev-report")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=report_arn, Tags={"owner": "ops"})
    aws.reset_calls()

    result = project.pkg("status", "--stage", "dev", "--json")

    assert result.exit_code == 0, result.stderr
    resources = by_id(result.json)
    ingest, drifted = resources["lambda/function/ingest"], resources["lambda/function/report"]
    assert ingest["state"] == "live" and not ingest["drifted"] and ingest["drift"] == []
    assert ingest["code"]["live"] == ingest["code"]["recorded"] is not None
    assert ingest["last_modified"] and ingest["release"] == 1  # the publish recorded release 1
    assert drifted["drifted"]
    assert drifted["drift"] == [
        {"field": "configuration", "keys": ["MemorySize", "Environment.STAGE"]},
        {"field": "tags", "keys": ["owner"]},
    ]
    assert result.json["summary"] == {"resources": 2, "drifted": 1}
    assert "s3cr3t" not in result.stdout + result.stderr
    assert aws.mutating_calls() == []

    text = project.pkg("status", "--stage", "dev").stdout
    assert "drift: configuration (MemorySize, Environment.STAGE), tags (owner)" in text
    assert "in sync" in text and "2 functions and jobs, 1 drifted" in text

    # A stage of many functions is read from listing pages instead (ListFunctions, the tagging API): the same answer.
    names = ["datamart-dev-ingest", "datamart-dev-report", "datamart-dev-never-published"]
    reader = AwsStatusReader(AwsSession(boto3.Session(), AWS_ACCOUNT, AWS_REGION))
    aws.reset_calls()
    listed = reader.list_functions(names)
    assert {call["operation"] for call in aws.calls()} == {"ListFunctions", "GetResources"}
    assert sorted(listed) == names[:2]
    assert listed == reader.get_functions(names)


def test_a_function_deleted_out_of_band_is_missing_and_a_new_source_not_published(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    boto3.client("lambda", region_name=AWS_REGION).delete_function(FunctionName="datamart-dev-report")
    project.write("src/lambda/fresh.py", "def handler(event, context):\n    return 1\n")

    resources = by_id(project.pkg_json("status", "--stage", "dev"))

    assert resources["lambda/function/report"]["state"] == "missing" and resources["lambda/function/report"]["drifted"]
    assert resources["lambda/function/fresh"]["state"] == "not published"
    assert not resources["lambda/function/fresh"]["drifted"]


def test_glue_job_status_shows_its_last_run_and_tag_drift_and_logs_merge_output_and_errors(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT + GLUE_CONFIG)
    project.write("src/glue_python_shell/totals.py", "print(sum([1, 2, 3]))\n")
    project.pkg_json("publish", "--stage", "dev")
    project.pkg_json("run", "glue_python_shell/totals", "--stage", "dev")
    run_id = project.pkg_json("run", "glue_python_shell/totals", "--stage", "dev")["run_id"]  # the newest
    glue = boto3.client("glue", region_name=AWS_REGION)
    glue.tag_resource(
        ResourceArn=f"arn:aws:glue:{AWS_REGION}:{AWS_ACCOUNT}:job/datamart-dev-totals", TagsToAdd={"owner": "ops"}
    )
    aws.reset_calls()

    job = by_id(project.pkg_json("status", "--stage", "dev"))["glue_python_shell/job/totals"]

    assert job["state"] == "live" and job["drift"] == [{"field": "tags", "keys": ["owner"]}]
    assert job["code"]["live"] == job["code"]["recorded"]
    assert job["code"]["live"].endswith("/totals.py")
    assert job["last_run"]["run_id"] == run_id
    assert job["last_run"]["state"] and job["last_run"]["started"]
    runs_read = [call for call in aws.calls() if call["operation"] == "GetJobRuns"]
    assert len(runs_read) == 1 and aws.mutating_calls() == []

    start = now_ms() - 60_000
    put_events("/aws-glue/python-jobs/output", run_id, [(start + 1000, "reading input"), (start + 3000, "6")])
    put_events("/aws-glue/python-jobs/error", run_id, [(start + 2000, "WARNING slow disk")])
    put_events("/aws-glue/python-jobs/output", "jr_another_run", [(start + 1500, "not this run")])

    lines = project.pkg("logs", "glue_python_shell/totals", "--stage", "dev").stdout.splitlines()

    assert [line.split(" ", 2)[1:] for line in lines] == [
        [run_id, "reading input"],
        [run_id, "WARNING slow disk"],
        [run_id, "6"],
    ]
    assert lines[0].split(" ", 1)[0].endswith("Z")
    events = [json.loads(line) for line in project.pkg("logs", "glue_python_shell/job/totals", "--stage", "dev",
                                                       "--run", run_id, "--json").stdout.splitlines()]  # fmt: skip
    assert [(event["group"], event["message"]) for event in events] == [
        ("/aws-glue/python-jobs/output", "reading input"),
        ("/aws-glue/python-jobs/error", "WARNING slow disk"),
        ("/aws-glue/python-jobs/output", "6"),
    ]


def test_function_logs_since_a_time_and_a_clear_error_for_a_group_never_written(project, aws):
    now = now_ms()
    put_events(
        "/aws/lambda/datamart-dev-ingest",
        "2026/01/01/[$LATEST]abc",
        [(now - 2 * 3600_000, "START old"), (now - 30 * 60_000, "half an hour ago"), (now - 60_000, "just now")],
    )
    aws.reset_calls()

    def messages(*args: str) -> list[str]:
        result = project.pkg("logs", "lambda/ingest", "--stage", "dev", *args)
        assert result.exit_code == 0, result.stderr
        return [line.split(" ", 2)[2] for line in result.stdout.splitlines()]

    assert messages() == ["just now"]  # the last 10 minutes
    assert messages("--since", "1h") == ["half an hour ago", "just now"]
    assert messages("--since", "3h") == ["START old", "half an hour ago", "just now"]
    assert messages("--since", "2000-01-01T00:00:00Z") == ["START old", "half an hour ago", "just now"]

    aws.reset_calls()
    bad = project.pkg("logs", "lambda/ingest", "--stage", "dev", "--since", "yesterday")
    assert bad.exit_code == 1 and "neither a duration nor an ISO time" in bad.stderr
    assert aws.calls() == []  # refused before any AWS call

    missing = project.pkg("logs", "lambda/report", "--stage", "dev", "--json")
    assert missing.exit_code == 1
    assert "no log group /aws/lambda/datamart-dev-report" in missing.stderr
    assert "not been invoked yet" in missing.json["hint"] and "Traceback" not in missing.stderr
    glue = project.pkg("logs", "glue_spark/nothing", "--stage", "dev")
    assert glue.exit_code == 1 and "there is no Glue job datamart-dev-nothing in stage 'dev'" in glue.stderr
    emr = project.pkg("logs", "emr/clean", "--stage", "dev")
    assert emr.exit_code == 1 and "does not read EMR runs" in emr.stderr
    assert aws.mutating_calls() == []


def test_follow_shows_new_lines_until_ctrl_c_and_exits_130(project, aws):
    group, stream = "/aws/lambda/datamart-dev-ingest", "2026/01/01/[$LATEST]abc"
    put_events(group, stream, [(now_ms(), "first")])
    announced, announce_fd = os.pipe()
    command = [sys.executable, "-c", INTERRUPTIBLE_PKG, str(announce_fd), "logs", "lambda/ingest", "--stage", "dev",
               "--follow"]  # fmt: skip
    process = start_pkg(project, command, pass_fds=(announce_fd,))
    os.close(announce_fd)
    try:
        assert process.stdout.readline().rstrip().endswith(" first")
        boto3.client("logs", region_name=AWS_REGION).put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": now_ms(), "message": "second"}]
        )
        assert process.stdout.readline().rstrip().endswith(" second")  # the next poll, the first line not again
        process.send_signal(signal.SIGINT)
        with os.fdopen(announced, "rb") as announcements:
            assert announcements.readline() == b"SIGINT\n"
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stdout == "" and "error: interrupted" in stderr and "Traceback" not in stderr


def test_a_reader_that_stops_early_is_no_error(project, aws):
    """`pkg logs ... | head -1`: the pipe closes before pkg is done writing; no traceback, exit 0."""
    now = now_ms()
    put_events("/aws/lambda/datamart-dev-ingest", "s", [(now - 1000 + i, f"line {i}") for i in range(500)])
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "logs", "lambda/ingest", "--stage", "dev"],
        cwd=project.root,
        env={**os.environ, "PKG_CACHE_DIR": str(project.cache_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # before pkg has even started: its first line meets a closed pipe
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 0
    assert stderr == ""


def test_the_newest_emr_run_of_a_job_is_found_by_the_name_pkg_run_gives_it(aws):
    serverless = boto3.client("emr-serverless", region_name=AWS_REGION)
    application = serverless.create_application(name="spark", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]
    driver = {"sparkSubmit": {"entryPoint": "s3://b/pkg/emr/job-clean/x/clean.py"}}
    role = "arn:aws:iam::123456789012:role/emr-serverless"
    runs = [
        serverless.start_job_run(applicationId=application, executionRoleArn=role, name=name, jobDriver=driver)
        for name in ("datamart-dev-clean", "datamart-dev-other", "datamart-dev-clean")
    ]
    started = [run["jobRunId"] for run in runs]
    emr = boto3.client("emr", region_name=AWS_REGION)
    cluster = emr.run_job_flow(
        Name="c", ReleaseLabel="emr-7.9.0", Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]  # fmt: skip
    step = {"ActionOnFailure": "CONTINUE", "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit"]}}
    steps = [
        emr.add_job_flow_steps(JobFlowId=cluster, Steps=[{**step, "Name": name}])["StepIds"][0]
        for name in ("datamart-dev-clean", "datamart-dev-clean", "datamart-dev-other")
    ]
    reader = AwsStatusReader(AwsSession(boto3.Session(), AWS_ACCOUNT, AWS_REGION))
    aws.reset_calls()

    wanted = {"datamart-dev-clean", "datamart-dev-none"}
    assert {name: run["id"] for name, run in reader.serverless_runs(application, wanted).items()} == {
        "datamart-dev-clean": started[2]
    }
    assert {name: step["Id"] for name, step in reader.cluster_steps(cluster, wanted).items()} == {
        "datamart-dev-clean": steps[1]
    }
    assert aws.mutating_calls() == []
