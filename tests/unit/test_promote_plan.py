"""`pkg promote` without AWS: what a source release deploys (its artifacts, by the source stage's rows),
the refusals made before any call, and the cached build plan the publish planner takes."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from cache.index import ArtifactRecord, PublishedRecord
from packager.config import load_config
from packager.deploy.actions import Target
from packager.deploy.promote import (
    PromoteError,
    WantedArtifact,
    _BucketShape,
    _bucket_shape,
    _matches,
    plan_promotion,
    promoted_plan,
    sha256_hex,
)
from packager.deploy.records import FunctionRow, FunctionState, LayerVersionRow
from packager.deploy.releases import FunctionRelease, JobRelease, Release
from packager.model import Kind

ACCOUNT, REGION = "123456789012", "eu-west-1"
DEV = Target(ACCOUNT, REGION, "dev")
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:datamart-dev-internal_libs:3"
CODE_HEX = "ab" * 32
CODE = base64.b64encode(bytes.fromhex(CODE_HEX)).decode()
LAYER_HEX = "cd" * 32
LAYER_CODE = base64.b64encode(bytes.fromhex(LAYER_HEX)).decode()
CONFIGURATION = {"Runtime": "python3.12", "Handler": "ingest.handler", "MemorySize": 128}


@pytest.fixture
def config(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pkg]\nproject = "datamart"\nartifact_bucket = "b"\n'
        '[tool.pkg.lambda]\nruntime = "python3.12"\narchitecture = "x86_64"\n'
        f'[tool.pkg.stages.dev]\nregion = "{REGION}"\n[tool.pkg.stages.prod]\nregion = "{REGION}"\n'
        "[tool.pkg.stages.prod.lambda]\nmemory = 2048\n"
        '[tool.pkg.glue_spark]\nglue_version = "5.0"\n'
    )
    return load_config(str(tmp_path))


def source(configuration=CONFIGURATION, jobs=None) -> Release:
    ingest = FunctionRelease("datamart-dev-ingest", "live", "4", CODE, "0" * 32, (LAYER_ARN,), dict(configuration))
    return Release(7, DEV, "datamart", "2026-12-02T10:00:00Z", None, None, None, "publish",
                   {"lambda/function/ingest": ingest}, jobs or {})  # fmt: skip


def rows(code_sha256: str = CODE, architecture: str = "x86_64") -> dict[str, PublishedRecord]:
    layer = LayerVersionRow("datamart-dev-internal_libs", LAYER_ARN, 3, LAYER_CODE)
    state = FunctionState("arn:f", code_sha256, architecture, dict(CONFIGURATION), (LAYER_ARN,), {})
    return {
        "lambda/internal_libs@l1": PublishedRecord("lambda/internal_libs@l1", "l1", layer.to_details(), "2026"),
        "lambda/function/ingest": PublishedRecord(
            "lambda/function/ingest", "f1", FunctionRow.confirmed(state).to_details(), "2026"
        ),
    }


def test_a_release_promotes_its_layer_versions_and_code_by_the_source_stage_rows(config):
    wanted = plan_promotion(config, source(), rows(), "prod")
    assert wanted == [
        WantedArtifact("lambda/internal_libs", Kind.LAMBDA_LAYER, LAYER_HEX, "l1"),
        WantedArtifact(
            "lambda/function/ingest", Kind.LAMBDA_FUNCTION, CODE_HEX, "f1", ("lambda/internal_libs",), "ingest.handler"
        ),
    ]


def test_code_the_function_row_no_longer_runs_is_found_by_its_sha256_alone(config):
    other = base64.b64encode(b"\x01" * 32).decode()  # dev's $LATEST moved on since (a rollback)
    (_layer, function) = plan_promotion(config, source(), rows(code_sha256=other), "prod")
    assert (function.sha256, function.input_hash) == (CODE_HEX, None)


@pytest.mark.parametrize(
    ("configuration", "architecture", "problem"),
    [
        ({**CONFIGURATION, "Runtime": "python3.11"}, "x86_64", "Runtime is python3.11 in dev, python3.12 in prod"),
        ({**CONFIGURATION, "Handler": "ingest.run"}, "x86_64", "Handler is ingest.run in dev, ingest.handler in prod"),
        (CONFIGURATION, "arm64", "Architecture is arm64 in dev, x86_64 in prod"),
    ],
)
def test_a_build_setting_that_differs_between_the_stages_is_refused(config, configuration, architecture, problem):
    with pytest.raises(PromoteError, match=problem):
        plan_promotion(config, source(configuration), rows(architecture=architecture), "prod")


def test_a_layer_version_the_source_stage_has_no_row_of_is_refused(config):
    bare = {key: row for key, row in rows().items() if "@" not in key}
    with pytest.raises(PromoteError, match="layer version .*:3 has no row of stage dev"):
        plan_promotion(config, source(), bare, "prod")


def test_a_job_promotes_the_objects_its_release_names_by_the_source_stage_upload_rows(config):
    script_key = f"pkg/glue_python_shell/job-totals/{'a' * 64}/totals.py"
    libs_key = f"pkg/glue_python_shell/internal_libs/{'b' * 64}/internal_libs-0-py3-none-any.whl"
    definition = {"GlueVersion": "3.0", "Command": {"Name": "pythonshell", "PythonVersion": "3.9"}}
    job = JobRelease("datamart-dev-totals", f"s3://b/{script_key}", (f"s3://b/{libs_key}",), (), definition)
    release = source(jobs={"glue_python_shell/job/totals": job})
    uploads = {
        f"glue_python_shell/job/totals@{script_key}": PublishedRecord("x", "s1", {"bucket": "b"}, "2026"),
        f"glue_python_shell/internal_libs@{libs_key}": PublishedRecord("x", "w1", {"bucket": "b"}, "2026"),
    }
    *_, libs, script = plan_promotion(config, release, {**rows(), **uploads}, "prod")
    assert libs == WantedArtifact(
        "glue_python_shell/internal_libs", None, "b" * 64, "w1", (), None, ("internal_libs-0-py3-none-any.whl",)
    )
    assert script == WantedArtifact(
        "glue_python_shell/job/totals", Kind.GLUE_PYTHON_SHELL_JOB, "a" * 64, "s1",
        ("glue_python_shell/internal_libs",), None, ("totals.py",),
    )  # fmt: skip
    assert [w.id for w in plan_promotion(config, release, rows(), "prod", ["ingest"])][-1] == "lambda/function/ingest"
    with pytest.raises(PromoteError, match=f"s3://b/{libs_key} has no row of stage dev"):
        plan_promotion(config, release, {**rows(), **dict(list(uploads.items())[:1])}, "prod")
    older = source(jobs={"glue_python_shell/job/totals": replace(job, settings={**definition, "GlueVersion": "1.0"})})
    with pytest.raises(PromoteError, match="GlueVersion is 1.0 in dev, 3.0 in prod"):
        plan_promotion(config, older, rows(), "prod")


def test_the_plan_is_a_build_plan_of_cached_items_that_can_not_be_built(config):
    wanted = plan_promotion(config, source(), rows(), "prod")
    records = {
        item.id: ArtifactRecord(item.input_hash or "", str(item.kind), "x.zip", item.sha256 or "", 10, 20, "", {})
        for item in wanted
    }
    planned = promoted_plan(wanted, records, source())
    assert [(p.spec.id, p.to_build, p.spec.input_hash, p.spec.uses) for p in planned] == [
        ("lambda/internal_libs", False, "l1", []),
        ("lambda/function/ingest", False, "f1", ["lambda/internal_libs"]),
    ]
    assert planned[1].spec.meta == {"handler": "ingest.handler"} and planned[1].reason == "promoted from dev release 7"
    assert sha256_hex(CODE) == CODE_HEX


def test_the_local_store_answers_by_input_hash_or_for_code_of_unknown_input_by_sha256(tmp_path):
    from types import SimpleNamespace

    from cache.store import Store
    from packager.deploy.promote import _local

    store = Store(str(tmp_path / "cache"))

    def put(input_hash: str, kind: Kind, body: bytes) -> ArtifactRecord:
        def write(path: str) -> int:
            with open(path, "wb") as file:
                file.write(body)
            return len(body)

        record = store.put(input_hash, str(kind), ".zip", write)
        store.index.add_artifacts([record])
        return record

    code = put("f" * 32, Kind.LAMBDA_FUNCTION, b"code")
    layer = put("e" * 32, Kind.LAMBDA_LAYER, b"layer")
    ws = SimpleNamespace(store=store)
    wanted = [
        WantedArtifact("lambda/internal_libs", Kind.LAMBDA_LAYER, layer.sha256, layer.input_hash),
        WantedArtifact("lambda/function/ingest", Kind.LAMBDA_FUNCTION, code.sha256, None),  # found by its bytes
        WantedArtifact("lambda/function/report", Kind.LAMBDA_FUNCTION, "0" * 64, None),  # nowhere
        WantedArtifact("lambda/function/other", Kind.LAMBDA_FUNCTION, "1" * 64, code.input_hash),  # other bytes
    ]
    assert _local(ws, wanted) == {"lambda/internal_libs": layer, "lambda/function/ingest": code}
    store.close()


def test_a_wheelhouse_is_wanted_with_every_wheel_and_each_job_file_has_its_kind_in_the_bucket(config):
    script_key = f"pkg/glue_spark/job-clean/{'a' * 64}/clean.py"
    wheels = [f"pkg/glue_spark/deps/{'c' * 64}/{name}" for name in ("b-1-py3-none-any.whl", "a-1-py3-none-any.whl")]
    definition = {"GlueVersion": "5.0", "Command": {"Name": "glueetl", "PythonVersion": "3"}}
    job = JobRelease("datamart-dev-clean", f"s3://b/{script_key}", tuple(f"s3://b/{k}" for k in wheels), (), definition)
    uploads = {
        f"glue_spark/job/clean@{script_key}": PublishedRecord("x", "s1", {"bucket": "b"}, "2026"),
        **{f"glue_spark/deps@{key}": PublishedRecord("x", "d1", {"bucket": "b"}, "2026") for key in wheels},
    }
    *_, deps, script = plan_promotion(config, source(jobs={"glue_spark/job/clean": job}), {**rows(), **uploads}, "prod")
    assert deps.files == ("b-1-py3-none-any.whl", "a-1-py3-none-any.whl") and script.uses == ("glue_spark/deps",)
    shape = _bucket_shape(deps, deps.sha256)
    assert shape is not None and shape.kind is Kind.WHEELHOUSE and shape.wheelhouse
    assert shape.keys == tuple(wheels)
    assert _bucket_shape(script, "a" * 64) == _BucketShape(Kind.GLUE_SPARK_JOB, ".py", (script_key,))
    libs = WantedArtifact("emr/internal_libs", None, "e" * 64, "h", files=("internal_libs.zip",))
    assert _bucket_shape(libs, "e" * 64).kind is Kind.PY_FILES_ZIP  # type: ignore[union-attr]
    layer = WantedArtifact("lambda/internal_libs", Kind.LAMBDA_LAYER, "f" * 64, "h")
    assert _bucket_shape(layer, "f" * 64) == _BucketShape(Kind.LAMBDA_LAYER, ".zip", (f"pkg/lambda/{'f' * 64}.zip",))
    assert _bucket_shape(WantedArtifact("emr/deps", None, "e" * 64, "h"), "e" * 64) is None  # its files unknown


def test_jobs_on_two_builds_of_one_artifact_or_a_row_naming_another_artifacts_object_are_refused(config):
    definition = {"GlueVersion": "5.0", "Command": {"Name": "glueetl", "PythonVersion": "3"}}
    jobs, uploads = {}, {}
    for name, build in (("clean", "c"), ("load", "d")):  # `pkg publish glue_spark/job/clean` left load behind
        script = f"pkg/glue_spark/job-{name}/{'a' * 64}/{name}.py"
        wheel = f"pkg/glue_spark/deps/{build * 64}/a-1-py3-none-any.whl"
        jobs[f"glue_spark/job/{name}"] = JobRelease(f"datamart-dev-{name}", f"s3://b/{script}", (), (f"s3://b/{wheel}",),
                                                    definition)  # fmt: skip
        uploads[f"glue_spark/job/{name}@{script}"] = PublishedRecord("x", "s", {"bucket": "b"}, "2026")
        uploads[f"glue_spark/deps@{wheel}"] = PublishedRecord("x", build, {"bucket": "b"}, "2026")
    with pytest.raises(PromoteError, match="glue_spark/job/load: runs another build of glue_spark/deps"):
        plan_promotion(config, source(jobs=jobs), {**rows(), **uploads}, "prod")

    clean = {"glue_spark/job/clean": jobs["glue_spark/job/clean"]}
    wheel = f"pkg/glue_spark/deps/{'c' * 64}/a-1-py3-none-any.whl"
    forged = {**uploads, f"glue_spark/internal_libs@{wheel}": uploads[f"glue_spark/deps@{wheel}"]}
    del forged[f"glue_spark/deps@{wheel}"]
    with pytest.raises(PromoteError, match=f"s3://b/{wheel} is not where pkg puts glue_spark/internal_libs's files"):
        plan_promotion(config, source(jobs=clean), {**rows(), **forged}, "prod")


def test_a_file_is_taken_only_as_the_kind_its_artifact_id_makes():
    """A row may claim any kind for the bytes it names: a wheelhouse taken as one wheel would be published as one."""
    wheelhouse = WantedArtifact("glue_spark/deps", None, "c" * 64, None, files=("a-1-py3-none-any.whl",))

    def row(kind: Kind) -> ArtifactRecord:
        return ArtifactRecord("h" * 32, str(kind), "store/hh/x.zip", "c" * 64, 10, 20, "", {})

    assert _matches(row(Kind.WHEELHOUSE), wheelhouse)
    assert not _matches(row(Kind.PY_FILES_ZIP), wheelhouse) and not _matches(row(Kind.PYTHON_WHEEL), wheelhouse)
    script = WantedArtifact("glue_spark/job/clean", Kind.GLUE_SPARK_JOB, "c" * 64, None, files=("clean.py",))
    assert not _matches(row(Kind.EMR_JOB), script)  # an EMR job's identical script: the same bytes, another kind
