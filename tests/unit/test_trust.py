"""Recorded publish rows are checked against the stage before the planner or `pkg run` uses them
(packager/deploy/trust.py): ARNs of the stage's partition, region and account named
`<project>-<stage>-…`, S3 locations in the stage's bucket under pkg's key layout, EMR settings
exactly the configuration's."""

from __future__ import annotations

import pytest

from cache.index import PublishedRecord
from packager.config import load_config
from packager.deploy.jobs_plan import emr_conf
from packager.deploy.actions import Target
from packager.deploy.trust import StageScope, check_recorded, row_problem, trusted_run_row
from packager.errors import PkgError

ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKET = "datamart-artifacts"
SHA = "a" * 64
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:datamart-dev-internal_libs:3"
ENTRY = f"s3://{BUCKET}/pkg/emr/job-clean/{SHA}/clean.py"


@pytest.fixture
def scope(tmp_path) -> StageScope:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pkg]\nproject = "datamart"\nartifact_bucket = "{BUCKET}"\n'
        f'[tool.pkg.stages.dev]\nregion = "{REGION}"\naccount = "{ACCOUNT}"\n'
        '[tool.pkg.emr]\nrelease_label = "emr-7.9.0"\napplication_id = "app-1"\n'
        'execution_role = "arn:aws:iam::123456789012:role/emr"\n'
    )
    config = load_config(str(tmp_path))
    return StageScope.of(config, Target(ACCOUNT, REGION, "dev"))


def emr_spec(scope: StageScope, **changes) -> dict:
    spec = {
        "release_label": "emr-7.9.0",
        "python": "3.11",
        "entry_point": ENTRY,
        "py_files": [f"s3://{BUCKET}/pkg/emr/internal_libs/{SHA}/internal_libs.zip"],
        "conf": emr_conf("3.11", f"s3://{BUCKET}/pkg/emr/deps/{SHA}/deps.zip"),
        "spark_submit_parameters": "",
        "arguments": [],
        "deploy_mode": "cluster",
        "application_id": "app-1",
        "execution_role": "arn:aws:iam::123456789012:role/emr",
        "cluster_id": None,
    }
    return {"name": "datamart-dev-clean", "spec": {**spec, **changes}}


def test_own_rows_pass(scope):
    assert (
        row_problem(
            "lambda/internal_libs@" + "b" * 32,
            {"layer_name": "datamart-dev-internal_libs", "arn": LAYER, "version": 3},
            scope,
        )
        is None
    )
    function = {"arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:datamart-dev-ingest", "layers": [LAYER]}
    assert row_problem("lambda/function/ingest", function, scope) is None
    assert row_problem("lambda/function/ingest", {"missing": True}, scope) is None
    assert (
        row_problem(
            f"emr/job/clean@pkg/emr/job-clean/{SHA}/clean.py",
            {"bucket": BUCKET, "key": f"pkg/emr/job-clean/{SHA}/clean.py"},
            scope,
        )
        is None
    )
    glue = {
        "name": "datamart-dev-orders",
        "definition": {"Command": {"ScriptLocation": f"s3://{BUCKET}/pkg/glue_spark/job-orders/{SHA}/orders.py"}},
    }
    assert row_problem("glue_spark/job/orders", glue, scope) is None


@pytest.mark.parametrize("revision", [7, "x" * 65, "../../etc", ["rev"]])
def test_a_recorded_revision_that_is_not_a_lambda_revision_id_fails(scope, revision):
    function = {"arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:datamart-dev-ingest", "layers": [LAYER]}
    assert row_problem("lambda/function/ingest", {**function, "revision_id": "6c2b4e1a-0f3d-4c1e-9b7a-1d2e3f4a5b6c"},
                       scope) is None  # fmt: skip
    assert "is not a Lambda RevisionId" in row_problem("lambda/function/ingest", {**function, "revision_id": revision},
                                                       scope)  # fmt: skip


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lambda:eu-west-1:999999999999:layer:datamart-dev-internal_libs:3",  # another account
        "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:3",  # another region
        "arn:aws-cn:lambda:eu-west-1:123456789012:layer:datamart-dev-internal_libs:3",  # another partition
        "arn:aws:lambda:eu-west-1:123456789012:layer:evil:3",  # another name
        "arn:aws:lambda:eu-west-1:123456789012:layer:datamart-prod-internal_libs:3",  # another stage
    ],
)
def test_a_foreign_layer_arn_fails(scope, arn):
    row = {"layer_name": "datamart-dev-internal_libs", "arn": arn, "version": 3}
    assert "layer ARN" in row_problem("lambda/internal_libs@" + "b" * 32, row, scope)
    function = {"arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:datamart-dev-ingest", "layers": [LAYER, arn]}
    assert "layer ARN" in row_problem("lambda/function/ingest", function, scope)


@pytest.mark.parametrize(
    "changes",
    [
        {"entry_point": "s3://another-bucket/evil.py"},
        {"entry_point": f"s3://{BUCKET}/elsewhere/evil.py"},
        {"entry_point": f"s3://{BUCKET}/pkg/emr/job-clean/{SHA}/../../../evil.py"},
        {"py_files": ["s3://another-bucket/evil.zip"]},
        {"conf": {"spark.jars": "s3://another-bucket/evil.jar"}},
        {"conf": {"spark.executorEnv.PYSPARK_PYTHON": "/tmp/evil"}},
        {"spark_submit_parameters": "--conf spark.jars=s3://another-bucket/evil.jar"},
        {"execution_role": "arn:aws:iam::999999999999:role/admin"},
    ],
)
def test_a_foreign_emr_run_specification_fails_and_pkg_run_refuses_it(scope, changes):
    details = emr_spec(scope, **changes)
    assert row_problem("emr/job/clean", details, scope) is not None
    recorded = {"emr/job/clean": PublishedRecord("emr/job/clean", "", details, "2026-01-01T00:00:00+00:00")}
    with pytest.raises(PkgError, match="not started"):
        trusted_run_row(recorded, "emr/job/clean", scope)
    assert row_problem("emr/job/clean", emr_spec(scope), scope) is None


def test_an_emr_run_specification_runs_the_configured_python_only(scope):
    assert row_problem("emr/job/clean", emr_spec(scope, python="3.11; rm -rf /"), scope) is not None
    assert row_problem("emr/job/clean", emr_spec(scope, python=None), scope) is not None
    without_deps = emr_spec(scope, conf=emr_conf("3.11", None))
    assert row_problem("emr/job/clean", without_deps, scope) is None


def test_foreign_glue_script_and_upload_bucket_fail(scope):
    glue = {"name": "datamart-dev-orders", "definition": {"Command": {"ScriptLocation": "s3://another-bucket/evil.py"}}}
    assert "another-bucket" in row_problem("glue_spark/job/orders", glue, scope)
    assert row_problem("glue_spark/job/orders", {**glue, "name": "someone-else"}, scope) is not None
    assert "bucket" in row_problem("emr/deps@pkg/x", {"bucket": "another-bucket", "key": "pkg/x"}, scope)


def test_check_recorded_drops_bad_rows_with_one_warning_each(scope):
    good = PublishedRecord("lambda/function/ingest", "", {"missing": True}, "t")
    bad = PublishedRecord(
        "lambda/function/report", "", {"arn": "arn:aws:lambda:eu-west-1:999999999999:function:x"}, "t"
    )
    broken = PublishedRecord("emr/job/clean", "", {"no": "name"}, "t")
    warnings: list[str] = []
    kept = check_recorded({r.resource_id: r for r in (good, bad, broken)}, scope, warnings.append)
    assert list(kept) == ["lambda/function/ingest"]
    assert len(warnings) == 2 and all("reading dev live instead" in w for w in warnings)
