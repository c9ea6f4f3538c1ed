"""What AWS refuses and moto accepts (issue 13): the test server enforces it, pkg must not send it.

The test server (tests/moto_server.py) checks every Lambda, Glue and EMR Serverless request against
the botocore service model's constraints, as AWS does; these tests publish what used to break them.
"""

from __future__ import annotations

import base64
import os
import re

import boto3
import pytest
from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT, make_repo
from test_jobs_publish import EMR_ROLE, actions, jobs_project
from test_publish import code_sha256


def refused(aws) -> list[str]:
    """The requests the test server refused as AWS would (a constraint of the service model broken)."""
    return [call["operation"] for call in aws.calls() if call.get("refused")]


def test_the_test_server_refuses_a_layer_name_lambda_refuses(aws):
    lam = boto3.client("lambda", region_name=AWS_REGION)
    try:
        lam.publish_layer_version(LayerName="datamart-dev-deps-python3.12-0", Content={"ZipFile": b"PK"})
    except lam.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "ValidationException"
        assert "failed to satisfy constraint: Member must satisfy regular expression pattern" in str(error)
    else:
        raise AssertionError("an invalid LayerName was accepted")
    assert refused(aws) == ["PublishLayerVersion"]


def test_a_function_overriding_runtime_and_architecture_gets_valid_layer_names(tmp_path, aws, wheelhouse):
    repo = make_repo(tmp_path)
    repo.write(
        "pyproject.toml",
        PUBLISH_PYPROJECT
        + '\n[tool.pkg.lambda.functions.report]\narchitecture = "arm64"\n'
        + f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n',
    )
    repo.write("src/lambda/internal_libs/requirements.txt", "nativelib==1.0\n")

    report = repo.pkg_json("publish", "--stage", "dev")

    assert refused(aws) == []
    layers = {a["id"]: a["name"] for a in report["actions"] if a["action"] == "publish_layer_version"}
    assert layers["lambda/internal_libs_deps/0"] == "datamart-dev-internal_libs_deps-0"  # unchanged
    assert layers["lambda/internal_libs_deps/python3.12-arm64/0"] == "datamart-dev-internal_libs_deps-python312-arm64-0"
    live = boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName="datamart-dev-report")
    assert [layer["Arn"].rsplit(":layer:", 1)[1] for layer in live["Configuration"]["Layers"]] == [
        "datamart-dev-internal_libs:1",
        "datamart-dev-internal_libs_deps-python312-arm64-0:1",
    ]


GLUE_ROLE = "arn:aws:iam::123456789012:role/glue"


def test_the_test_server_refuses_a_second_create_job_of_one_name(aws):
    glue = boto3.client("glue", region_name=AWS_REGION)
    command = {"Name": "glueetl", "ScriptLocation": "s3://b/a.py"}
    glue.create_job(Name="j", Role=GLUE_ROLE, Command=command)
    try:
        glue.create_job(Name="j", Role=GLUE_ROLE, Command={"Name": "pythonshell", "ScriptLocation": "s3://b/b.py"})
    except glue.exceptions.AlreadyExistsException:
        pass
    else:
        raise AssertionError("a second CreateJob of one name was accepted")
    assert glue.get_job(JobName="j")["Job"]["Command"]["Name"] == "glueetl"


def test_one_job_name_in_both_glue_services_is_refused_before_anything_is_built(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.write("src/glue_python_shell/clean_glue_spark.py", "print('shell')\n")

    result = repo.pkg("publish", "--stage", "dev")

    assert result.exit_code == 1
    assert "src/glue_python_shell/clean_glue_spark.py" in result.stderr
    assert "src/glue_spark/clean_glue_spark.py" in result.stderr
    assert "Traceback" not in result.stderr
    assert aws.mutating_calls() == []
    assert repo.pkg("build").exit_code == 1


def live_function(name: str) -> dict:
    return boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName=name)["Configuration"]


def test_an_update_that_ends_failed_is_an_error_not_recorded_and_retried(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    before = live_function("datamart-dev-ingest")["CodeSha256"]
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 2\n")
    aws.inject("UpdateFunctionCode", "async_failed", reason="Lambda was unable to configure your environment")
    aws.reset_calls()

    failed = project.pkg("publish", "--stage", "dev")

    assert failed.exit_code == 1
    assert "datamart-dev-ingest: the function's update ended Failed" in failed.stderr
    assert "Lambda was unable to configure your environment (InternalError)" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert live_function("datamart-dev-ingest")["CodeSha256"] == before  # AWS keeps the previous code
    aws.reset_calls()

    again = project.pkg_json("publish", "--stage", "dev")

    assert "UpdateFunctionCode" in aws.mutating_calls()
    built = next(a for a in again["artifacts"] if a["id"] == "lambda/function/ingest")
    assert live_function("datamart-dev-ingest")["CodeSha256"] == code_sha256(built["path"])
    aws.reset_calls()
    assert project.pkg_json("publish", "--stage", "dev") and aws.mutating_calls() == []


def test_publish_waits_for_an_update_in_progress_to_end(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 3\n")
    aws.inject("UpdateFunctionCode", "async_slow")
    aws.reset_calls()

    project.pkg_json("publish", "--stage", "dev")

    operations = [call["operation"] for call in aws.calls()]
    update = operations.index("UpdateFunctionCode")
    # Read in progress once, then successful: two reads after the update, before publish ends.
    assert operations[update + 1 : update + 3] == ["GetFunction", "GetFunction"]
    assert live_function("datamart-dev-ingest")["LastUpdateStatus"] == "Successful"


def test_a_create_that_ends_failed_is_an_error_carrying_awss_reason(project, aws):
    aws.inject("CreateFunction", "async_failed", reason="The role defined for the function cannot be assumed")

    result = project.pkg("publish", "--stage", "dev")

    assert result.exit_code == 1
    assert "the function's creation ended Failed: The role defined for the function cannot be assumed" in result.stderr


def test_the_test_server_refuses_a_request_over_lambdas_size_limit(aws):
    lam = boto3.client("lambda", region_name=AWS_REGION)
    zip_file = b"\0" * (52_428_800 - 10)  # under 50 MiB, but not as base64 in a request
    try:
        lam.create_function(
            FunctionName="f", Runtime="python3.12", Role="arn:aws:iam::123456789012:role/lambda",
            Handler="f.handler", Code={"ZipFile": zip_file},
        )  # fmt: skip
    except lam.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "RequestEntityTooLargeException"
    else:
        raise AssertionError("a request over 69,905,067 bytes was accepted")
    assert refused(aws) == ["CreateFunction"]


def test_a_zip_just_under_50_mb_too_big_as_base64_goes_through_the_bucket(project, aws):
    # Inline, this zip's request would be a few hundred bytes over the 69,905,067 AWS accepts.
    target = 52_428_650
    # Prefixes of one random base64 text: the zip's size grows smoothly with the prefix's length (about
    # 0.7575 bytes a character), so a secant step or two lands within the window.
    blob = base64.b64encode(os.urandom(53 * 1024 * 1024)).decode()
    length, seen = int(target / 0.7575), []
    for _ in range(8):
        source = f"DATA = '{blob[:length]}'\n\ndef handler(event, context):\n    return len(DATA)\n"
        project.write("src/lambda/big.py", source)
        built = project.pkg_json("build", "big")["artifacts"]
        size = next(a for a in built if a["id"] == "lambda/function/big")["size"]
        if target - 120 <= size <= target + 120:
            break
        seen.append((length, size))
        slope = (seen[-1][1] - seen[-2][1]) / (seen[-1][0] - seen[-2][0]) if len(seen) > 1 else size / length
        length += round((target - size) / slope)
    else:
        raise AssertionError(f"could not make a zip of about {target} bytes (last {size})")
    assert 4 * -(-size // 3) + 500 > 69_905_067 and size < 50 * 1024 * 1024

    report = project.pkg_json("publish", "--stage", "dev")

    assert refused(aws) == []
    steps = [a["action"] for a in report["actions"] if a["name"] == "datamart-dev-big"]
    assert steps == ["put_object", "create_function", "publish_version"]
    big = next(a for a in report["artifacts"] if a["id"] == "lambda/function/big")
    key = f"pkg/lambda/{big['sha256']}.zip"
    s3 = boto3.client("s3", region_name=AWS_REGION)
    assert s3.head_object(Bucket=ARTIFACT_BUCKET, Key=key)["ContentLength"] == size
    live = boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName="datamart-dev-big")
    assert live["Configuration"]["CodeSha256"] == code_sha256(big["path"])
    aws.reset_calls()
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def glue_job(name: str) -> dict:
    return boto3.client("glue", region_name=AWS_REGION).get_job(JobName=name)["Job"]


def test_glue_timeout_is_left_to_awss_default_unless_set(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    assert glue_job("datamart-dev-totals")["Timeout"] == 2880  # Python shell, Glue 3.0
    assert glue_job("datamart-dev-clean_glue_spark")["Timeout"] == 480  # Glue 5.0
    config = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", config.replace("number_of_workers = 3\n", "number_of_workers = 3\ntimeout = 90\n"))
    repo.pkg_json("publish", "--stage", "dev")
    assert glue_job("datamart-dev-clean_glue_spark")["Timeout"] == 90
    assert refused(aws) == []


def test_update_job_keeps_what_pkg_does_not_manage(tmp_path, aws):
    glue = boto3.client("glue", region_name=AWS_REGION)
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    # Someone sets fields pkg has no setting for here (console, another tool): a full JobUpdate.
    live = glue_job("datamart-dev-clean_glue_spark")
    outside = {
        "Connections": {"Connections": ["redshift-catalog"]},
        "SecurityConfiguration": "encrypted",
        "NotificationProperty": {"NotifyDelayAfter": 10},
        "NonOverridableArguments": {"--conf": "spark.x=1"},
        "ExecutionProperty": {"MaxConcurrentRuns": 3},
        "JobRunQueuingEnabled": True,
    }
    kept = ("Role", "Command", "DefaultArguments", "GlueVersion", "WorkerType", "NumberOfWorkers", "MaxRetries")
    glue.update_job(JobName=live["Name"], JobUpdate={**{k: live[k] for k in kept}, **outside})
    repo.write("src/glue_spark/clean_glue_spark.py", "print('v2')\n")

    report = repo.pkg_json("publish", "--stage", "dev")

    assert actions(report)["glue_spark/job/clean_glue_spark"] == ["put_object", "update_job"]
    after = glue_job("datamart-dev-clean_glue_spark")
    assert {key: after.get(key) for key in outside} == outside
    assert after["Command"]["ScriptLocation"].endswith("/clean_glue_spark.py")
    assert after["Command"]["ScriptLocation"] != live["Command"]["ScriptLocation"]


def test_glue_settings_for_connections_security_runs_execution_class_and_notifications(tmp_path, aws):
    repo = jobs_project(tmp_path)
    config = (repo.root / "pyproject.toml").read_text()
    added = (
        'connections = ["redshift-catalog"]\nsecurity_configuration = "encrypted"\n'
        'max_concurrent_runs = 4\nexecution_class = "FLEX"\nnotify_delay_after = 15\n'
        'non_overridable_arguments = { "--conf" = "spark.sql.shuffle.partitions=8" }\n'
        "job_run_queuing = true\n"
    )
    repo.write("pyproject.toml", config.replace("number_of_workers = 3\n", "number_of_workers = 3\n" + added))

    repo.pkg_json("publish", "--stage", "dev")

    job = glue_job("datamart-dev-clean_glue_spark")
    assert job["Connections"] == {"Connections": ["redshift-catalog"]}
    assert job["SecurityConfiguration"] == "encrypted"
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 4}
    assert job["ExecutionClass"] == "FLEX"
    assert job["NotificationProperty"] == {"NotifyDelayAfter": 15}
    assert job["NonOverridableArguments"] == {"--conf": "spark.sql.shuffle.partitions=8"}
    assert job["JobRunQueuingEnabled"] is True
    aws.reset_calls()
    repo.pkg_json("publish", "--stage", "dev")
    assert aws.mutating_calls() == []
    assert repo.pkg_json("plan", "--stage", "dev", "--refresh")["drift"] == []  # live reads back as set

    wrong = config.replace("number_of_workers = 3\n", 'number_of_workers = 3\nexecution_class = "SLOW"\n')
    repo.write("pyproject.toml", wrong)
    result = repo.pkg("build")
    assert result.exit_code == 1 and "execution_class: unsupported value 'SLOW'" in result.stderr


def test_an_override_of_a_function_or_job_that_does_not_exist_names_the_key_and_the_closest_name(repo):
    config = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", config + "\n[tool.pkg.lambda.functions.ingets]\nmemory = 512\n")

    result = repo.pkg("build")

    assert result.exit_code == 1
    assert "tool.pkg.lambda.functions.ingets: no function 'ingets' in src/lambda/" in result.stderr
    assert "did you mean 'ingest'?" in result.stderr
    assert "Traceback" not in result.stderr

    staged = config + '\n[tool.pkg.stages.dev]\nregion = "us-east-1"\n[tool.pkg.stages.dev.glue_spark.jobs.orders]\n'
    repo.write("pyproject.toml", staged + "number_of_workers = 4\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "tool.pkg.stages.dev.glue_spark.jobs.orders: no job 'orders' in src/glue_spark/" in result.stderr

    repo.write("pyproject.toml", config + "\n[tool.pkg.lambda.functions.report]\nmemory = 512\n")
    assert repo.pkg("build").exit_code == 0


def test_a_whole_repo_publishes_and_runs_with_no_request_aws_would_refuse(tmp_path, aws, wheelhouse):
    """Runtime and architecture overrides, both Glue services, EMR, tags and connections: every
    Lambda, Glue and EMR Serverless request is checked by the test server against the service model."""
    serverless = boto3.client("emr-serverless", region_name=AWS_REGION)
    application = serverless.create_application(name="datamart", releaseLabel="emr-7.9.0", type="SPARK")
    repo = jobs_project(tmp_path)
    make_repo(tmp_path, name="lambda-part")  # the two functions of conftest, copied in below
    for source in (tmp_path / "lambda-part/src/lambda").rglob("*.py"):
        target = repo.root / "src/lambda" / source.relative_to(tmp_path / "lambda-part/src/lambda")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    repo.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")
    jobs_config = (repo.root / "pyproject.toml").read_text().split("[tool.pkg.stages.dev]", 1)[1]
    jobs_config = jobs_config.split("\n", 3)[3]  # the job tables, without the stage's region and account
    lambda_config = PUBLISH_PYPROJECT.replace(
        "[tool.pkg.lambda.functions.ingest]\n",
        '[tool.pkg.lambda.functions.report]\narchitecture = "arm64"\nruntime = "python3.13"\n'
        '[tool.pkg.lambda.functions.ingest]\n',
    )
    extra = (
        f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n'
        '\n[tool.pkg.glue_python_shell.jobs.totals]\nconnections = ["redshift-catalog"]\n'
        'tags = { team = "data", "cost-center" = "42" }\njob_run_queuing = true\n'
        f'\n[tool.pkg.stages.dev.emr]\napplication_id = "{application["applicationId"]}"\n'
        f'execution_role = "{EMR_ROLE}"\n'
    )
    repo.write("pyproject.toml", lambda_config + jobs_config + extra)

    report = repo.pkg_json("publish", "--stage", "dev")

    assert all(action["status"] in ("done", "skipped") for action in report["actions"])
    layers = {a["name"] for a in report["actions"] if a["action"] == "publish_layer_version"}
    assert "datamart-dev-internal_libs_deps-python313-arm64-0" in layers
    assert glue_job("datamart-dev-totals")["Connections"] == {"Connections": ["redshift-catalog"]}
    repo.write("src/glue_spark/clean_glue_spark.py", "print('v2')\n")
    repo.write("src/lambda/report.py", "def handler(event, context):\n    return 'v2'\n")
    repo.pkg_json("publish", "--stage", "dev")
    run = repo.pkg("run", "glue_spark/clean_glue_spark", "--stage", "dev", "--json", "--", "--day", "1")
    assert run.exit_code == 0, run.stderr
    emr = repo.pkg("run", "emr/clean_emr", "--stage", "dev", "--json", "--", "s3://in/")
    assert emr.exit_code == 0, emr.stderr
    report_function = live_function("datamart-dev-report")
    assert report_function["Architectures"] == ["arm64"] and report_function["Runtime"] == "python3.13"
    lam = boto3.client("lambda", region_name=AWS_REGION)
    tags = lam.list_tags(Resource=report_function["FunctionArn"])["Tags"]
    assert tags == {"team": "data", "pkg:project": "datamart", "pkg:stage": "dev"}
    assert glue_job("datamart-dev-totals")["JobRunQueuingEnabled"] is True

    operations = {call["operation"] for call in aws.calls()}
    assert {"PublishLayerVersion", "CreateFunction", "UpdateFunctionCode", "CreateJob", "UpdateJob"} <= operations
    assert {"StartJobRun", "GetJob", "GetFunction"} <= operations
    assert any(c["operation"] == "StartJobRun" and c["path"].startswith("/applications/") for c in aws.calls())
    assert refused(aws) == []


@pytest.mark.parametrize(
    ("table", "setting", "message"),
    [
        ("lambda", 'tags = { "aws:owner" = "me" }', "tool.pkg.lambda.tags: key 'aws:owner' starts with 'aws:'"),
        ("lambda", f'tags = {{ team = "{"x" * 257}" }}', "tool.pkg.lambda.tags.team: the value is 257 characters"),
        ("lambda", f'tags = {{ "{"k" * 129}" = "v" }}', "must be 1-128 characters"),
        ("lambda", "tags = { " + ", ".join(f"t{i} = 'v'" for i in range(49)) + " }", "49 tags; AWS allows 50"),
        ("glue_spark", 'tags = { "pkg:stage" = "prod" }', "tool.pkg.glue_spark.tags: 'pkg:stage' is pkg's own tag"),
        ("glue_spark", "max_retries = -1", "tool.pkg.glue_spark.max_retries must be between 0 and"),
        ("glue_spark", "number_of_workers = 100000000000", "number_of_workers must be between 2 and 2147483647"),
        ("glue_spark", "timeout = 20000", "timeout must be between 1 and 10080 minutes"),
        ("emr", 'release_label = "emr-7.9.0; id"', "tool.pkg.emr.release_label: unsupported release"),
    ],
)
def test_tags_and_job_values_are_checked_against_awss_limits_when_the_file_is_read(tmp_path, table, setting, message):
    from jobs_fixtures import make_jobs_repo

    repo = make_jobs_repo(tmp_path)
    config = (repo.root / "pyproject.toml").read_text()
    header = f"[tool.pkg.{table}]\n"
    assert header in config
    key = setting.split(" = ", 1)[0]
    existing = [line for line in config.splitlines() if line.startswith(f"{key} = ")]
    if existing:  # the fixture sets it already: replace its line
        config = config.replace(existing[0] + "\n", "", 1)
    repo.write("pyproject.toml", config.replace(header, header + setting + "\n", 1))

    result = repo.pkg("build")

    assert result.exit_code == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_function_whose_creation_ended_failed_is_deleted_and_created_again_by_the_next_publish(project, aws):
    reason = "The role defined for the function cannot be assumed by Lambda."
    aws.inject("CreateFunction", "async_failed", reason=reason)
    failed = project.pkg("publish", "--stage", "dev")
    assert failed.exit_code == 1 and f"creation ended Failed: {reason}" in failed.stderr
    # The first CreateFunction fails; the two functions are created in parallel: either may be first.
    name = re.search(r"(datamart-dev-\w+): the function's creation ended Failed", failed.stderr).group(1)
    assert live_function(name)["State"] == "Failed"  # AWS keeps it; pkg did not record it

    plan = project.pkg_json("plan", "--stage", "dev")

    steps = [(a["action"], a["reason"]) for a in plan["actions"] if a["name"] == name]
    assert steps == [
        ("delete_failed_function", f"its creation ended Failed ({reason}): AWS requires deleting it"),
        ("create_function", "created again after its creation ended Failed"),
        ("publish_version", "alias live -> version 1 of the new function"),
    ]
    aws.reset_calls()
    project.pkg_json("publish", "--stage", "dev")
    assert aws.mutating_calls() == ["DeleteFunction", "CreateFunction", "CreateAlias"]
    assert live_function(name)["State"] == "Active"
    aws.reset_calls()
    assert project.pkg_json("publish", "--stage", "dev") and aws.mutating_calls() == []
