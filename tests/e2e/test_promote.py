"""`pkg promote` end to end: what dev's release runs, deployed to prod in a second account of the moto server.

Prod is reached through an AWS profile that assumes a role in another account (moto answers
AssumeRole with credentials of the role's account), as a team's prod is. The test counts the files
of the local cache (a promote builds nothing) and compares CodeSha256 across the two accounts.
"""

from __future__ import annotations

import os
import re
import sqlite3

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, HANDLER, LAMBDA_ROLE, LIB_ORDERS, PUBLISH_PYPROJECT

PROD_ACCOUNT = "210987654321"
PROD_BUCKET = "datamart-prod-artifacts"
# Prod: another account, reached through a profile, with its own artifact bucket.
PROD_STAGE = f"""
[tool.pkg.stages.prod]
region = "{AWS_REGION}"
account = "{PROD_ACCOUNT}"
profile = "prod"
artifact_bucket = "{PROD_BUCKET}"
"""
PROMOTE_PYPROJECT = (
    PUBLISH_PYPROJECT
    + PROD_STAGE
    + f"""
[tool.pkg.stages.prod.lambda]
role = "arn:aws:iam::{PROD_ACCOUNT}:role/datamart-lambda"
environment = {{ STAGE = "prod" }}

[tool.pkg.stages.prod.lambda.functions.ingest]
memory = 2048

[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"

[tool.pkg.stages.prod.glue_python_shell]
role = "arn:aws:iam::{PROD_ACCOUNT}:role/glue"

[tool.pkg.emr]
release_label = "emr-7.9.0"
"""
)
SHELL_JOB = 'if __name__ == "__main__":\n    print("totals")\n'
EMR_JOB = 'if __name__ == "__main__":\n    print("clean")\n'
AWS_PROFILE = f"""
[profile prod]
role_arn = arn:aws:iam::{PROD_ACCOUNT}:role/pkg-deployer
credential_source = Environment
region = {AWS_REGION}
"""


def prod_session(project) -> boto3.Session:
    """The prod account: its profile in the AWS config file the `aws` fixture points at, its role and bucket."""
    (project.root.parent / "no-aws-config").write_text(AWS_PROFILE)
    session = boto3.Session(profile_name="prod")
    assert session.client("sts").get_caller_identity()["Account"] == PROD_ACCOUNT
    session.client("iam").create_role(
        RoleName="datamart-lambda", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}'
    )
    session.client("s3").create_bucket(Bucket=PROD_BUCKET)
    return session


def alias_code(lam, name: str) -> str:
    """The CodeSha256 of the version the function's `live` alias points at."""
    version = lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    return lam.get_function_configuration(FunctionName=name, Qualifier=version)["CodeSha256"]


def changes(aws) -> list[str]:
    """The mutating calls the server saw, but AssumeRole (how the prod profile signs in)."""
    return [call for call in aws.mutating_calls() if call != "AssumeRole"]


def cached_files(project) -> list[str]:
    """The files of the local cache but its lock files (a promote takes the target stage's): a build adds some."""
    found = [os.path.join(folder, name) for folder, _, names in os.walk(project.cache_dir) for name in names]
    return sorted(path for path in found if os.sep + "locks" + os.sep not in path)


def test_promote_deploys_dev_bytes_to_another_account_with_its_settings_without_building(project, aws):
    project.write("pyproject.toml", PROMOTE_PYPROJECT)
    project.write("src/glue_python_shell/totals.py", SHELL_JOB)
    project.write("src/emr/clean.py", EMR_JOB)
    prod = prod_session(project)
    published = project.pkg_json("publish", "--stage", "dev")
    assert published["release"] == 1
    dev_ingest = next(a for a in published["artifacts"] if a["id"] == "lambda/function/ingest")

    # Refused before any change: a build setting prod would run dev's code with otherwise.
    project.write("pyproject.toml", PROMOTE_PYPROJECT.replace('runtime = "python3.12"', 'runtime = "python3.13"'))
    aws.reset_calls()
    refused = project.pkg("promote", "--from", "dev", "--to", "prod", "--yes")
    assert refused.exit_code == 1
    assert "lambda/function/ingest: Runtime is python3.12 in dev, python3.13 in prod" in refused.stderr
    assert refused.stderr.count("error:") == 1 and "Traceback" not in refused.stderr
    assert changes(aws) == []
    project.write("pyproject.toml", PROMOTE_PYPROJECT)

    # Refused before any change: an artifact dev runs that is nowhere to copy from (nothing is built instead).
    files = cached_files(project)
    with open(dev_ingest["path"], "rb") as built:
        zipped = built.read()
    os.remove(dev_ingest["path"])
    missing = project.pkg("promote", "--from", "dev", "--to", "prod", "--yes", "--json")
    assert missing.exit_code == 1 and "nowhere to copy from" in missing.json["error"]
    assert "lambda/function/ingest" in missing.json["error"] and changes(aws) == []
    # Where a publish puts a zip too big to send inline, dev's bucket, it is found, verified and copied;
    # other bytes under its name are not used.
    key = f"pkg/lambda/{dev_ingest['sha256']}.zip"
    s3 = boto3.client("s3", region_name=AWS_REGION)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=zipped + b"tampered")
    forged = project.pkg("promote", "--from", "dev", "--to", "prod", "--yes")
    assert forged.exit_code == 1 and f"s3://{ARTIFACT_BUCKET}/{key}: not the bytes its name says" in forged.stderr
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=zipped)

    # The checkout moves on; prod gets what dev runs, not what is checked out.
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 'not in dev'\n")
    aws.reset_calls()
    promoted = project.pkg_json("promote", "--from", "dev", "--to", "prod", "--yes")

    assert cached_files(project) == files  # nothing built: the local store, and ingest's zip from dev's bucket
    assert promoted["from"] == {"stage": "dev", "account": "123456789012", "release": 1}
    assert promoted["account"] == PROD_ACCOUNT and promoted["release"] == 1
    dev_lambda, prod_lambda = boto3.client("lambda", region_name=AWS_REGION), prod.client("lambda")
    for function in ("ingest", "report"):
        dev_code = alias_code(dev_lambda, f"datamart-dev-{function}")
        assert alias_code(prod_lambda, f"datamart-prod-{function}") == dev_code, function
    configuration = prod_lambda.get_function_configuration(FunctionName="datamart-prod-ingest")
    assert configuration["MemorySize"] == 2048 and configuration["Environment"]["Variables"] == {"STAGE": "prod"}
    assert configuration["Role"] == f"arn:aws:iam::{PROD_ACCOUNT}:role/datamart-lambda"
    assert all(layer["Arn"].split(":")[4] == PROD_ACCOUNT for layer in configuration["Layers"])
    dev_job = boto3.client("glue", region_name=AWS_REGION).get_job(JobName="datamart-dev-totals")["Job"]
    prod_job = prod.client("glue").get_job(JobName="datamart-prod-totals")["Job"]
    dev_script, prod_script = dev_job["Command"]["ScriptLocation"], prod_job["Command"]["ScriptLocation"]
    assert prod_script.startswith(f"s3://{PROD_BUCKET}/") and prod_script.split("/")[-2] == dev_script.split("/")[-2]
    assert prod_job["Role"] == f"arn:aws:iam::{PROD_ACCOUNT}:role/glue"
    history = project.pkg_json("history", "--stage", "prod")["releases"]
    assert [(r["id"], r["command"], r["promoted_from"]["release"]) for r in history] == [(1, "promote", 1)]
    assert history[0]["who"].split(":")[4] == PROD_ACCOUNT
    assert "promote from dev 1" in project.pkg("history", "--stage", "prod").stdout
    statuses = project.pkg_json("status", "--stage", "prod")["resources"]
    assert {s["id"]: s["release"] for s in statuses} == {
        "lambda/function/ingest": 1,
        "lambda/function/report": 1,
        "glue_python_shell/job/totals": 1,
        "emr/job/clean": 1,
    }

    dry = project.pkg("promote", "--from", "dev", "--to", "prod", "--dry-run")
    assert f"promote dev to stage prod (account {PROD_ACCOUNT}, {AWS_REGION}):" in dry.stdout
    assert "release 1 of stage dev promoted to prod: 0 built, 0 mutating AWS calls planned (dry run)" in dry.stdout

    # prod's rows are a publish's: a publish of prod from dev's commit has nothing to do.
    project.write("src/lambda/ingest.py", HANDLER)
    aws.reset_calls()
    again = project.pkg_json("publish", "--stage", "prod")
    assert changes(aws) == [] and again["release"] is None

    # dev moves on: the next promote updates prod's code in place and moves its alias.
    project.write("src/lambda/ingest.py", "def handler(event, context):\n    return 2\n")
    assert project.pkg_json("publish", "--stage", "dev")["release"] == 2
    aws.reset_calls()
    second = project.pkg_json("promote", "--from", "dev", "--to", "prod", "--yes")
    assert second["release"] == 2 and second["from"]["release"] == 2
    assert "UpdateFunctionCode" in changes(aws) and "CreateFunction" not in changes(aws)
    assert alias_code(prod_lambda, "datamart-prod-ingest") == alias_code(dev_lambda, "datamart-dev-ingest")


PROD_JOBS = (
    PROD_STAGE
    + f"""
[tool.pkg.stages.prod.glue_python_shell]
role = "arn:aws:iam::{PROD_ACCOUNT}:role/glue"

[tool.pkg.stages.prod.glue_spark]
role = "arn:aws:iam::{PROD_ACCOUNT}:role/glue"
"""
)


def bucket_objects(s3, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="pkg/").get("Contents", [])
    return {obj["Key"]: s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read() for obj in listed}


def test_promote_copies_job_objects_from_dev_bucket_when_no_cache_holds_them(tmp_path, aws):
    """Scripts, internal_libs, an EMR archive and a Glue wheelhouse (one object per wheel, put together
    again and checked against the sha256 its keys name): the objects prod gets are dev's, byte for byte."""
    from test_jobs_publish import jobs_project

    repo = jobs_project(tmp_path, extra=PROD_JOBS)
    prod = prod_session(repo)
    published = repo.pkg_json("publish", "--stage", "dev")
    for path in {artifact["path"] for artifact in published["artifacts"]}:  # the rows stay, the files go
        os.remove(path)
    # This machine's row of the wheelhouse's input names other bytes (unpinned requirements resolved anew).
    deps = next(a for a in published["artifacts"] if a["id"] == "glue_spark/deps")
    with sqlite3.connect(repo.cache_dir / "index.sqlite") as conn:
        conn.execute("UPDATE artifacts SET sha256 = ? WHERE input_hash = ?", ("0" * 64, deps["input_hash"]))
    conn.close()
    s3 = boto3.client("s3", region_name=AWS_REGION)
    dev_objects = bucket_objects(s3, ARTIFACT_BUCKET)
    assert any(key.endswith(".whl") and "/deps/" in key for key in dev_objects)

    # Objects the source stage's credentials may not read: said, and nothing changes (what could be read
    # and was verified is kept in the local store).
    deps = f"s3://{ARTIFACT_BUCKET}/pkg/glue_spark/deps/"
    aws.inject("GetObject", "denied", prefix=deps[len("s3:/") :])  # the first wheel; the others are not asked for
    aws.reset_calls()
    denied = repo.pkg("promote", "--from", "dev", "--to", "prod", "--yes")
    assert denied.exit_code == 1 and f"s3://{ARTIFACT_BUCKET}): glue_spark/deps\n" in denied.stderr
    assert re.search(f"{deps}[0-9a-f]{{64}}/[^ ]+\\.whl: access denied", denied.stderr) and changes(aws) == []

    # A wheel under the wheelhouse's key that is not the one dev runs: nothing is used, nothing changes.
    wheel = next(key for key in dev_objects if key.split("/")[-1].startswith("tinydep-"))
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=wheel, Body=dev_objects[wheel] + b"tampered")
    aws.reset_calls()
    refused = repo.pkg("promote", "--from", "dev", "--to", "prod", "--yes")
    assert refused.exit_code == 1 and "nowhere to copy from" in refused.stderr
    assert f"the wheels under s3://{ARTIFACT_BUCKET}/{wheel.rsplit('/', 1)[0]}/: not the bytes" in refused.stderr
    assert changes(aws) == [] and "Traceback" not in refused.stderr
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=wheel, Body=dev_objects[wheel])

    promoted = repo.pkg_json("promote", "--from", "dev", "--to", "prod", "--yes")
    assert promoted["release"] == 1 and promoted["summary"]["built"] == 0
    assert bucket_objects(prod.client("s3"), PROD_BUCKET) == dev_objects
    verified = repo.pkg("cache", "verify")  # every row describes the file now at its path
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    for job in ("totals", "clean_glue_spark"):
        dev_job = boto3.client("glue", region_name=AWS_REGION).get_job(JobName=f"datamart-dev-{job}")["Job"]
        prod_job = prod.client("glue").get_job(JobName=f"datamart-prod-{job}")["Job"]
        assert prod_job["Command"]["ScriptLocation"].replace(PROD_BUCKET, ARTIFACT_BUCKET) == (
            dev_job["Command"]["ScriptLocation"]
        )


def test_a_fresh_ci_clone_promotes_functions_and_jobs_through_the_shared_cache(tmp_path, aws):
    """CI promotes from a clone with an empty cache: dev's rows and files come from the shared cache
    (job objects found by the input hash their upload rows record, else by their sha256), and nothing
    is built."""
    from test_jobs_publish import jobs_project
    from test_shared_cache import CACHE_URI, clone
    from test_shared_cache_attacks import tamper_index

    functions = f"""
[tool.pkg.lambda]
runtime = "python3.12"
architecture = "x86_64"
role = "{LAMBDA_ROLE}"

[tool.pkg.stages.prod.lambda]
role = "arn:aws:iam::{PROD_ACCOUNT}:role/datamart-lambda"
"""
    laptop = jobs_project(tmp_path, extra=PROD_JOBS + functions)
    laptop.write("src/lambda/ingest.py", HANDLER)
    laptop.write("src/lambda/internal_libs/orders.py", LIB_ORDERS)
    text = (laptop.root / "pyproject.toml").read_text()
    shared = f'project = "datamart"\ncache_uri = "{CACHE_URI}"\n'
    laptop.write("pyproject.toml", text.replace('project = "datamart"\n', shared, 1))
    prod = prod_session(laptop)
    laptop.pkg_json("publish", "--stage", "dev")
    # Upload rows as pkg wrote them before they kept an input hash: the files are found by their bytes.
    tamper_index(tmp_path, "UPDATE published SET input_hash = '' WHERE resource_id LIKE '%@pkg/%'")
    ci = clone(laptop, tmp_path, "ci")
    ci.write("src/glue_python_shell/totals.py", "print('a commit dev never ran')\n")  # the checkout moved on
    promoted = ci.pkg_json("promote", "--from", "dev", "--to", "prod", "--yes")
    assert promoted["release"] == 1 and promoted["summary"]["built"] == 0
    s3 = boto3.client("s3", region_name=AWS_REGION)
    dev_objects = {key: body for key, body in bucket_objects(s3, ARTIFACT_BUCKET).items() if key.startswith("pkg/")}
    assert bucket_objects(prod.client("s3"), PROD_BUCKET) == dev_objects
    dev_lambda, prod_lambda = boto3.client("lambda", region_name=AWS_REGION), prod.client("lambda")
    assert alias_code(prod_lambda, "datamart-prod-ingest") == alias_code(dev_lambda, "datamart-dev-ingest")
