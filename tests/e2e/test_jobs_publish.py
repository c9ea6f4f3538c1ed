"""`pkg publish` and `pkg run` for Glue and EMR jobs, end to end against the local moto server.

Mutating calls are counted by the server (tests/moto_server.py), which also implements Glue
UpdateJob the way AWS documents it (moto lacks it); the tool has no test-only path. Live state
is read back with boto3: job definitions, S3 objects, and the parameters of started runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import boto3
import pytest
from conftest import ARTIFACT_BUCKET, AWS_REGION
from jobs_fixtures import JOBS_CONFIG, make_jobs_repo, make_wheelhouse

GLUE_ROLE = "arn:aws:iam::123456789012:role/glue"
PKG_TAGS = {"pkg:project": "datamart", "pkg:stage": "dev"}  # on every job pkg creates
EMR_ROLE = "arn:aws:iam::123456789012:role/emr-serverless"

HEADER = f"""\
[project]
name = "pipelines"
version = "0.0.0"

[tool.pkg]
project = "datamart"
artifact_bucket = "{ARTIFACT_BUCKET}"

[tool.pkg.stages.dev]
region = "{AWS_REGION}"
account = "123456789012"
"""

SPARK_SETTINGS = """
[tool.pkg.glue_spark.jobs.clean_glue_spark]
worker_type = "G.2X"
number_of_workers = 3
default_arguments = { "--enable-metrics" = "true", "--extra-py-files" = "s3://shared/helpers.zip" }
"""


def glue():
    return boto3.client("glue", region_name=AWS_REGION)


def s3_bytes(uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return boto3.client("s3", region_name=AWS_REGION).get_object(Bucket=bucket, Key=key)["Body"].read()


def jobs_project(tmp_path, extra: str = ""):
    """Only jobs (no Lambda functions), a local wheelhouse for dependencies, stage dev."""
    repo = make_jobs_repo(tmp_path)
    shutil.rmtree(repo.root / "src/lambda")
    make_wheelhouse(repo.root / "wheelhouse")
    index = 'find_links = ["wheelhouse"]\nno_index = true\n'
    config = JOBS_CONFIG.replace('role = "arn:aws:iam::123456789012:role/glue"\n', f'role = "{GLUE_ROLE}"\n{index}')
    config = config.replace('release_label = "emr-7.9.0"\n', f'release_label = "emr-7.9.0"\n{index}')
    repo.write("pyproject.toml", HEADER + config + SPARK_SETTINGS + extra)
    repo.write("src/glue_spark/internal_libs/requirements.txt", "tinydep\n")
    repo.write("src/emr/internal_libs/requirements.txt", "fastdep\n")
    return repo


def run_json(repo, *args: str) -> dict:
    """`pkg run ... --json -- JOB ARGS`: --json must come before the `--` that starts the job's arguments."""
    split = args.index("--") if "--" in args else len(args)
    result = repo.pkg(*args[:split], "--json", *args[split:])
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.json


def actions(report: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for action in report["actions"]:
        found.setdefault(action["id"], []).append(action["action"])
    return found


def paths(report: dict) -> dict[str, str]:
    return {artifact["id"]: artifact["path"] for artifact in report["artifacts"]}


def test_first_publish_uploads_content_addressed_artifacts_and_creates_the_glue_jobs(tmp_path, aws):
    repo = jobs_project(tmp_path)
    report = repo.pkg_json("publish", "--stage", "dev")
    by_id = actions(report)
    assert by_id["glue_python_shell/job/totals"] == ["put_object", "create_job"]
    assert by_id["glue_spark/job/clean_glue_spark"] == ["put_object", "create_job"]
    assert by_id["glue_spark/deps"] == ["put_object", "put_object"]  # tinydep and its helperdep, one wheel each
    assert by_id["emr/job/clean_emr"] == ["put_object", "skip"]  # EMR: the run specification is recorded
    assert all(
        action["status"] == ("skipped" if action["action"] == "skip" else "done") for action in report["actions"]
    )
    assert sorted(set(aws.mutating_calls())) == ["CreateJob", "PutObject"]
    assert aws.mutating_calls().count("CreateJob") == 2

    local = paths(report)
    hashes = {artifact["id"]: artifact["sha256"] for artifact in report["artifacts"]}
    shell = glue().get_job(JobName="datamart-dev-totals")["Job"]
    assert shell["Command"]["Name"] == "pythonshell"
    assert shell["Command"]["PythonVersion"] == "3.9"
    assert shell["GlueVersion"] == "3.0"
    assert shell["MaxCapacity"] == 0.0625
    assert shell["Role"] == GLUE_ROLE
    script = shell["Command"]["ScriptLocation"]
    assert hashes["glue_python_shell/job/totals"] in script and script.endswith("/totals.py")
    assert s3_bytes(script) == open(local["glue_python_shell/job/totals"], "rb").read()
    wheel = shell["DefaultArguments"]["--extra-py-files"]
    assert wheel.endswith("/internal_libs-0.0.0-py3-none-any.whl")
    assert hashlib.sha256(s3_bytes(wheel)).hexdigest() == next(
        a["sha256"] for a in report["artifacts"] if a["id"] == "glue_python_shell/internal_libs"
    )
    assert shell["DefaultArguments"]["library-set"] == "analytics"
    assert "--additional-python-modules" not in shell["DefaultArguments"]

    spark = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    assert spark["Command"]["Name"] == "glueetl"
    assert (spark["GlueVersion"], spark["WorkerType"], spark["NumberOfWorkers"]) == ("5.0", "G.2X", 3)
    arguments = spark["DefaultArguments"]
    assert arguments["--enable-metrics"] == "true"
    libs, shared = arguments["--extra-py-files"].split(",")
    assert libs.endswith(f"/{hashes['glue_spark/internal_libs']}/internal_libs.zip") and shared == "s3://shared/helpers.zip"
    modules = arguments["--additional-python-modules"].split(",")
    assert [m.rsplit("/", 1)[1] for m in modules] == ["helperdep-2.0-py3-none-any.whl", "tinydep-1.0-py3-none-any.whl"]
    assert all(hashes["glue_spark/deps"] in m for m in modules)
    assert s3_bytes(modules[1]).startswith(b"PK")


def test_second_publish_makes_no_mutating_call(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    aws.reset_calls()
    report = repo.pkg_json("publish", "--stage", "dev")
    assert report["summary"]["mutating_calls"] == 0
    assert {action["action"] for action in report["actions"]} == {"skip"}
    assert aws.mutating_calls() == []
    assert [call["operation"] for call in aws.calls()] == ["GetCallerIdentity"]


def test_editing_a_script_uploads_it_and_updates_only_that_job(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    before = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    repo.write("src/glue_spark/clean_glue_spark.py", "print('v2')\n")
    aws.reset_calls()
    report = repo.pkg_json("publish", "--stage", "dev")
    changed = {key: value for key, value in actions(report).items() if value != ["skip"] and set(value) != {"skip"}}
    assert changed == {"glue_spark/job/clean_glue_spark": ["put_object", "update_job"]}
    assert sorted(aws.mutating_calls()) == ["PutObject", "UpdateJob"]
    after = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    assert after["Command"]["ScriptLocation"] != before["Command"]["ScriptLocation"]
    assert s3_bytes(after["Command"]["ScriptLocation"]) == b"print('v2')\n"
    # The old script stays where it was: nothing is overwritten in place.
    assert s3_bytes(before["Command"]["ScriptLocation"]).startswith(b"from pyspark")
    assert {k: after[k] for k in ("DefaultArguments", "WorkerType", "NumberOfWorkers", "GlueVersion", "Role")} == {
        k: before[k] for k in ("DefaultArguments", "WorkerType", "NumberOfWorkers", "GlueVersion", "Role")
    }
    reason = next(a["reason"] for a in report["actions"] if a["action"] == "update_job")
    assert "ScriptLocation" in reason


def test_a_setting_change_updates_the_job_with_a_reason(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    text = (repo.root / "pyproject.toml").read_text().replace("number_of_workers = 3", "number_of_workers = 5")
    (repo.root / "pyproject.toml").write_text(text)
    plan = repo.pkg_json("plan", "--stage", "dev")
    update = [a for a in plan["actions"] if a["action"] != "skip"]
    assert [(a["id"], a["action"]) for a in update] == [("glue_spark/job/clean_glue_spark", "update_job")]
    assert update[0]["reason"] == "NumberOfWorkers 3 -> 5"
    assert plan["summary"]["mutating_calls"] == 1
    repo.pkg_json("publish", "--stage", "dev")
    assert glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]["NumberOfWorkers"] == 5


def test_drift_is_reported_by_refresh_and_repaired_by_publish(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    assert repo.pkg_json("plan", "--stage", "dev", "--refresh")["drift"] == []
    # Changed by hand: UpdateJob replaces the whole definition, so the arguments are gone too.
    glue().update_job(
        JobName="datamart-dev-clean_glue_spark",
        JobUpdate={"Role": GLUE_ROLE, "Command": {"Name": "glueetl", "ScriptLocation": "s3://elsewhere/x.py"},
                   "GlueVersion": "4.0", "WorkerType": "G.1X", "NumberOfWorkers": 10},
    )
    glue().delete_job(JobName="datamart-dev-totals")
    aws.reset_calls()
    plan = repo.pkg_json("plan", "--stage", "dev", "--refresh")
    assert aws.mutating_calls() == []
    assert {(d["name"], d["field"]) for d in plan["drift"]} == {
        ("datamart-dev-clean_glue_spark", "definition"),
        ("datamart-dev-totals", "definition"),
    }
    planned = {a["id"]: (a["action"], a["reason"]) for a in plan["actions"] if a["action"] != "skip"}
    assert planned["glue_python_shell/job/totals"] == ("create_job", "drift: job deleted out of band")
    assert planned["glue_spark/job/clean_glue_spark"][0] == "update_job"
    assert planned["glue_spark/job/clean_glue_spark"][1].startswith("drift:")

    repo.pkg_json("publish", "--stage", "dev")
    spark = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    assert (spark["GlueVersion"], spark["NumberOfWorkers"]) == ("5.0", 3)
    assert spark["DefaultArguments"]["--enable-metrics"] == "true"
    assert glue().get_job(JobName="datamart-dev-totals")["Job"]["Command"]["Name"] == "pythonshell"
    aws.reset_calls()
    assert repo.pkg_json("plan", "--stage", "dev", "--refresh")["drift"] == []
    assert repo.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_glue_run_starts_with_the_given_arguments(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    report = run_json(
        repo, "run", "glue_spark/clean_glue_spark", "--stage", "dev", "--wait", "--timeout", "60",
        "--", "--source", "s3://in/orders/", "--target", "s3://out/totals/",
    )  # fmt: skip
    assert report["platform"] == "glue" and report["finished"] and report["state"] == "SUCCEEDED"
    run = glue().get_job_run(JobName="datamart-dev-clean_glue_spark", RunId=report["run_id"])["JobRun"]
    # (moto reports the job's DefaultArguments merged in; AWS reports the run's own.)
    assert run["Arguments"]["--source"] == "s3://in/orders/"
    assert run["Arguments"]["--target"] == "s3://out/totals/"
    assert report["parameters"] == {
        "JobName": "datamart-dev-clean_glue_spark",
        "Arguments": {"--source": "s3://in/orders/", "--target": "s3://out/totals/"},
    }


def test_emr_serverless_run_reads_back_the_published_artifacts(tmp_path, aws):
    serverless = boto3.client("emr-serverless", region_name=AWS_REGION)
    application = serverless.create_application(name="datamart", releaseLabel="emr-7.9.0", type="SPARK")
    extra = (
        f'\n[tool.pkg.stages.dev.emr]\napplication_id = "{application["applicationId"]}"'
        f'\nexecution_role = "{EMR_ROLE}"\n'
    )
    repo = jobs_project(tmp_path, extra)
    published = repo.pkg_json("publish", "--stage", "dev")
    hashes = {artifact["id"]: artifact["sha256"] for artifact in published["artifacts"]}
    aws.reset_calls()
    report = run_json(repo, "run", "emr/clean_emr", "--stage", "dev", "--wait", "--timeout", "30", "--", "s3://in/", "s3://out/")
    assert report["platform"] == "emr-serverless" and report["state"] == "SUCCESS"
    assert aws.mutating_calls() == ["StartJobRun"]
    run = serverless.get_job_run(applicationId=application["applicationId"], jobRunId=report["run_id"])["jobRun"]
    assert run["executionRole"] == EMR_ROLE
    driver = run["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"].endswith(f"/{hashes['emr/job/clean_emr']}/clean_emr.py")
    assert driver["entryPointArguments"] == ["s3://in/", "s3://out/"]
    parameters = driver["sparkSubmitParameters"].split()
    assert parameters[parameters.index("--py-files") + 1].endswith(f"/{hashes['emr/internal_libs']}/internal_libs.zip")
    confs = dict(parameters[i + 1].split("=", 1) for i, p in enumerate(parameters) if p == "--conf")
    assert confs["spark.archives"].endswith(f"/{hashes['emr/deps']}/deps.zip#deps")
    assert confs["spark.executorEnv.PYTHONPATH"] == "./deps"
    assert confs["spark.emr-serverless.driverEnv.PYTHONPATH"] == "./deps"
    assert confs["spark.executorEnv.PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] == "/usr/bin/python3.11"
    assert confs["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] == "/usr/bin/python3.11"
    assert "spark.yarn.appMasterEnv.PYTHONPATH" not in confs
    # The archive in S3 is the installed folder: the cp311 native wheel unpacked at its root.
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(s3_bytes(confs["spark.archives"].split("#")[0])))
    assert "fastdep/_speed.cpython-311-x86_64-linux-gnu.so" in archive.namelist()


def test_emr_step_on_a_cluster_and_wait_gives_up_at_the_timeout(tmp_path, aws):
    emr = boto3.client("emr", region_name=AWS_REGION)
    cluster = emr.run_job_flow(
        Name="datamart",
        ReleaseLabel="emr-7.9.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    repo = jobs_project(tmp_path, f'\n[tool.pkg.stages.dev.emr.jobs.clean_emr]\ncluster_id = "{cluster}"\n')
    repo.pkg_json("publish", "--stage", "dev")
    result = repo.pkg("run", "emr/job/clean_emr", "--stage", "dev", "--wait", "--timeout", "1", "--", "s3://in/")
    assert result.exit_code == 2
    assert "still" in result.stderr and "after 1 s" in result.stderr and "hint:" in result.stderr
    steps = emr.list_steps(ClusterId=cluster)["Steps"]
    assert len(steps) == 1
    args = steps[0]["Config"]["Args"]
    assert steps[0]["Config"]["Jar"] == "command-runner.jar"
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[args.index("--py-files") + 1].endswith("/internal_libs.zip")
    assert "spark.yarn.appMasterEnv.PYTHONPATH=./deps" in args
    assert not any(arg.startswith("spark.emr-serverless") for arg in args)
    assert args[-2].endswith("/clean_emr.py") and args[-1] == "s3://in/"


def test_run_wait_when_polling_fails_ends_in_an_error_not_a_traceback(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    aws.inject("GetJobRun", "error")

    result = repo.pkg("run", "glue_spark/clean_glue_spark", "--stage", "dev", "--wait", "--timeout", "60")

    assert result.exit_code == 1
    assert "GetJobRun" in result.stderr and "injected failure" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_run_needs_a_published_job_and_a_place_to_run(tmp_path, aws):
    repo = jobs_project(tmp_path)
    result = repo.pkg("run", "glue_spark/clean_glue_spark", "--stage", "dev")
    assert result.exit_code == 1 and "not published to stage 'dev'" in result.stderr
    repo.pkg_json("publish", "--stage", "dev")
    result = repo.pkg("run", "emr/clean_emr", "--stage", "dev")
    assert result.exit_code == 1 and "no EMR application or cluster" in result.stderr
    result = repo.pkg("run", "lambda/ingest", "--stage", "dev")
    assert result.exit_code == 1 and "does not name a Glue or EMR job" in result.stderr


def test_job_arguments_over_glue_limit_are_refused_before_any_call(tmp_path, aws):
    big = "x" * 270_000
    repo = jobs_project(
        tmp_path, f'\n[tool.pkg.glue_python_shell.jobs.totals]\ndefault_arguments = {{ "--blob" = "{big}" }}\n'
    )
    aws.reset_calls()
    result = repo.pkg("publish", "--stage", "dev")
    assert result.exit_code == 1
    assert "job arguments take" in result.stderr and "Glue allows 260,000" in result.stderr
    assert "--blob" in result.stderr
    assert aws.mutating_calls() == []


def test_plan_without_a_bucket_says_what_to_set(tmp_path, aws):
    repo = jobs_project(tmp_path)
    text = (repo.root / "pyproject.toml").read_text().replace(f'artifact_bucket = "{ARTIFACT_BUCKET}"\n', "")
    (repo.root / "pyproject.toml").write_text(text)
    result = repo.pkg("plan", "--stage", "dev")
    assert result.exit_code == 1 and "no artifact bucket" in result.stderr and "artifact_bucket" in result.stderr


@pytest.mark.parametrize("service", ["glue_spark", "emr"])
def test_json_reports_list_the_job_artifacts(tmp_path, aws, service):
    repo = jobs_project(tmp_path)
    report = repo.pkg_json("plan", "--stage", "dev")
    ids = {artifact["id"] for artifact in report["artifacts"]}
    assert {f"{service}/internal_libs", f"{service}/deps"} <= ids
    assert json.dumps(report)  # one JSON object


@pytest.mark.parametrize("operation", ["CreateJob", "PutObject"])
def test_a_publish_killed_after_aws_acted_converges(tmp_path, aws, operation):
    # AWS performs the call, then the response is held until the client is killed: the index never
    # hears of it. The rerun finds the job (GetJob) or the object (HeadObject) and adopts it.
    repo = jobs_project(tmp_path)
    aws.inject(operation, "hang_after")
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "publish", "--stage", "dev", "-j", "1"],
        cwd=repo.root,
        env={**os.environ, "PKG_CACHE_DIR": str(repo.cache_dir)},
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

    aws.reset_calls()
    report = repo.pkg_json("publish", "--stage", "dev")
    assert all(a["status"] in ("done", "skipped") for a in report["actions"])
    adopted = [a for a in report["actions"] if "adopting" in a["reason"]]
    assert len(adopted) == 1
    action = {"CreateJob": "create_job", "PutObject": "put_object"}[operation]
    assert aws.mutating_calls().count(operation) == [a["action"] for a in report["actions"]].count(action)
    names = sorted(job["Name"] for job in glue().get_jobs()["Jobs"])
    assert names == ["datamart-dev-clean_glue_spark", "datamart-dev-totals"]
    aws.reset_calls()
    assert repo.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0
    assert aws.mutating_calls() == []


def test_the_test_server_update_job_replaces_the_whole_definition(aws):
    # AWS: "The previous job definition is completely overwritten by this information."
    glue().create_job(
        Name="j", Role=GLUE_ROLE, Command={"Name": "glueetl", "ScriptLocation": "s3://b/a.py"},
        DefaultArguments={"--a": "1"}, Description="first", Tags={"team": "data"},
    )  # fmt: skip
    command = {"Name": "glueetl", "ScriptLocation": "s3://b/b.py"}
    glue().update_job(JobName="j", JobUpdate={"Role": GLUE_ROLE, "Command": command})
    job = glue().get_job(JobName="j")["Job"]
    assert job["Command"]["ScriptLocation"] == "s3://b/b.py"
    assert not job.get("DefaultArguments") and not job.get("Description")
    assert glue().get_tags(ResourceArn="arn:aws:glue:us-east-1:123456789012:job/j")["Tags"] == {"team": "data"}
    with pytest.raises(glue().exceptions.EntityNotFoundException):
        glue().update_job(JobName="missing", JobUpdate={"Role": GLUE_ROLE, "Command": {"Name": "glueetl"}})
    assert "UpdateJob" in aws.mutating_calls()


def test_plan_before_any_build_lists_every_upload_and_job_without_calling_aws_to_change_anything(tmp_path, aws):
    repo = jobs_project(tmp_path)
    plan = repo.pkg_json("plan", "--stage", "dev")
    assert aws.mutating_calls() == []
    assert plan["summary"]["build"] == 8
    planned = {(a["id"], a["action"]) for a in plan["actions"]}
    assert ("glue_spark/deps", "put_object") in planned
    assert ("glue_python_shell/job/totals", "create_job") in planned
    deps = next(a for a in plan["actions"] if a["id"] == "glue_spark/deps")
    assert deps["name"].endswith("/*.whl") and deps["reason"] == "new content (uploaded once built)"
    assert plan["summary"]["mutating_calls"] == sum(a["action"] != "skip" for a in plan["actions"])


def test_unpinned_requirements_resolve_anew_only_on_a_forced_build_and_then_get_new_keys(tmp_path, aws):
    from jobs_fixtures import make_wheel

    repo = jobs_project(tmp_path)
    repo.pkg_json("publish", "--stage", "dev")
    make_wheel(repo.root / "wheelhouse", "tinydep", "1.1", "py3-none-any", {"tinydep/__init__.py": "VALUE = 2\n"})
    aws.reset_calls()
    assert repo.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0  # same text, same set
    assert repo.pkg_json("build", "--force")["summary"]["built"] == 8
    aws.reset_calls()
    report = repo.pkg_json("publish", "--stage", "dev")
    changed = sorted((a["id"], a["action"]) for a in report["actions"] if a["action"] != "skip")
    # tinydep 1.1 needs no helperdep: one wheel, under a new key; everything else is byte-identical.
    assert changed == [("glue_spark/deps", "put_object"), ("glue_spark/job/clean_glue_spark", "update_job")]
    job = glue().get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    assert job["DefaultArguments"]["--additional-python-modules"].endswith("/tinydep-1.1-py3-none-any.whl")


def test_tags_are_set_at_creation_then_kept_in_step_with_the_config(tmp_path, aws):
    repo = jobs_project(tmp_path, '\n[tool.pkg.glue_spark.jobs.clean_glue_spark.tags]\nteam = "data"\ncost = "etl"\n')
    repo.pkg_json("publish", "--stage", "dev")
    arn = "arn:aws:glue:us-east-1:123456789012:job/datamart-dev-clean_glue_spark"
    assert glue().get_tags(ResourceArn=arn)["Tags"] == {**PKG_TAGS, "team": "data", "cost": "etl"}

    text = (repo.root / "pyproject.toml").read_text().replace('cost = "etl"\n', 'owner = "ana"\n')
    (repo.root / "pyproject.toml").write_text(text)
    aws.reset_calls()
    report = repo.pkg_json("publish", "--stage", "dev")
    changed = [(a["action"], a["reason"]) for a in report["actions"] if a["action"] != "skip"]
    assert changed == [("glue_tag_resource", "tags set: owner"), ("glue_untag_resource", "tags removed: cost")]
    assert sorted(aws.mutating_calls()) == ["TagResource", "UntagResource"]
    assert glue().get_tags(ResourceArn=arn)["Tags"] == {**PKG_TAGS, "team": "data", "owner": "ana"}

    glue().tag_resource(ResourceArn=arn, TagsToAdd={"team": "web"})
    plan = repo.pkg_json("plan", "--stage", "dev", "--refresh")
    assert [(d["field"], d["live"]) for d in plan["drift"]] == [("tags", {**PKG_TAGS, "owner": "ana", "team": "web"})]
    repo.pkg_json("publish", "--stage", "dev")
    assert glue().get_tags(ResourceArn=arn)["Tags"] == {**PKG_TAGS, "team": "data", "owner": "ana"}
    aws.reset_calls()
    assert repo.pkg_json("publish", "--stage", "dev", "--refresh")["summary"]["mutating_calls"] == 0
    assert aws.mutating_calls() == []


def test_a_missing_artifact_bucket_is_caught_by_plan_before_anything_is_uploaded(tmp_path, aws):
    repo = jobs_project(tmp_path)
    repo.write("pyproject.toml", (repo.root / "pyproject.toml").read_text().replace(ARTIFACT_BUCKET, "no-such-bucket"))

    planned = repo.pkg("plan", "--stage", "dev")
    published = repo.pkg("publish", "--stage", "dev")

    for result in (planned, published):
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert "s3://no-such-bucket does not exist" in result.stderr and "aws s3 mb" in result.stderr
    assert [call for call in aws.calls() if call["mutating"]] == []
