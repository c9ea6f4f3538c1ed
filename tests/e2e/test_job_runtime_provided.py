"""Job dependency sets leave out what the job's runtime already provides (issue 13), as Lambda's layers do:
a distribution of runtimes.JOB_PROVIDED that only comes in as a dependency is dropped from the wheels
and from `--additional-python-modules`, with a note; one pinned in the requirements is kept, with what
it needs."""

from __future__ import annotations

import zipfile

import boto3
from conftest import AWS_REGION
from test_jobs_publish import jobs_project
from wheelhouse import WHEELS, write_wheel

SHARED = {"boto3", "botocore", "awsthing", "pyspark", "sparkext"}


def members(path: str) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_runtime_provided_distributions_are_left_out_unless_pinned(tmp_path, aws):
    repo = jobs_project(tmp_path)
    for spec in WHEELS:
        if spec.name in SHARED:
            write_wheel(repo.root / "wheelhouse", spec)
    repo.write("src/glue_spark/internal_libs/requirements.txt", "tinydep\nawsthing==1.0\n")  # boto3 via awsthing
    repo.write("src/glue_python_shell/internal_libs/requirements.txt", "boto3==1.35.0\n")  # pinned: kept
    repo.write("src/emr/internal_libs/requirements.txt", "fastdep\nsparkext==1.0\nawsthing==1.0\n")

    result = repo.pkg("build", "--json")

    assert result.exit_code == 0, result.stderr
    artifacts = {artifact["id"]: artifact for artifact in result.json["artifacts"]}
    spark = members(artifacts["glue_spark/deps"]["path"])
    assert [name.split("-")[0] for name in spark] == ["awsthing", "helperdep", "tinydep"]
    assert "glue_spark/deps: left out boto3 1.35.0, botocore 1.35.0: only dependencies of" in result.stderr
    assert "aws-glue-programming-python-libraries.html" in result.stderr
    shell = members(artifacts["glue_python_shell/deps"]["path"])
    assert [name.split("-")[0] for name in shell] == ["boto3", "botocore"]  # boto3 pinned: its botocore too
    emr = {name.split("/")[0] for name in members(artifacts["emr/deps"]["path"])}
    assert "sparkext" in emr and "boto3" in emr and "pyspark" not in emr  # EMR provides Spark's, not boto3
    assert "emr/deps: left out pyspark 3.5.0" in result.stderr

    repo.pkg_json("publish", "--stage", "dev")

    job = boto3.client("glue", region_name=AWS_REGION).get_job(JobName="datamart-dev-clean_glue_spark")["Job"]
    modules = job["DefaultArguments"]["--additional-python-modules"]
    assert "awsthing-1.0" in modules and "boto3" not in modules and "botocore" not in modules
