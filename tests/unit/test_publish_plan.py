"""The publish planner without any AWS: resources as data, recorded rows, and a read-only live view.

`MemoryLive` is an in-memory stand-in for AWS's read APIs (the planner's LiveState protocol);
it counts the reads so a test can show that a fully recorded no-op needs none.
"""

from __future__ import annotations

import sqlite3

import pytest

from cache.index import Index, PublishedRecord
from packager.deploy.actions import LayerRef, Target
from packager.deploy.lambda_plan import CodeArtifact, FunctionResource, LayerResource, check_limits, plan_publish
from packager.deploy.naming import check_layer_name, layer_name
from packager.deploy.records import FunctionState, FunctionStatus, configuration_hash
from packager.errors import PlanError

TARGET = Target("123456789012", "us-east-1", "dev")
SHA = "ab" * 32
ARN_OF_LIB = "arn:...:datamart-dev-internal_libs"


class MemoryLive:
    """What AWS would answer to GetFunction / ListLayerVersions / HeadObject, from dicts (a LiveState)."""

    def __init__(self, functions=None, layer_versions=None, objects=()):
        self.functions = functions or {}
        self.versions = layer_versions or {}
        self.objects = set(objects)
        self.reads = 0

    def function(self, name):
        self.reads += 1
        state = self.functions.get(name)
        return FunctionState.from_details(state) if state is not None else None

    def prefetch_functions(self, names):
        pass

    def glue_job(self, name):
        self.reads += 1
        return None

    def glue_tags(self, arn):
        self.reads += 1
        return {}

    def layer_versions(self, name):
        self.reads += 1
        return self.versions.get(name, [])

    def object_exists(self, bucket, key):
        self.reads += 1
        return (bucket, key) in self.objects


def layer(input_hash="l1", artifact_id="lambda/internal_libs", size=1000, unzipped=2000):
    return LayerResource(
        artifact_id,
        layer_name("datamart", "dev", artifact_id),
        CodeArtifact(input_hash, SHA, "/tmp/layer.zip", size, unzipped),
    )


def function(name="ingest", input_hash="f1", layers=("lambda/internal_libs",), memory=128, size=500, unzipped=900):
    configuration = {
        "Role": "arn:aws:iam::123456789012:role/r",
        "Handler": f"{name}.handler",
        "Runtime": "python3.12",
        "MemorySize": memory,
        "Timeout": 3,
        "Description": "",
        "Environment": {"Variables": {}},
    }
    return FunctionResource(
        f"lambda/function/{name}",
        f"datamart-dev-{name}",
        CodeArtifact(input_hash, SHA, f"/tmp/{name}.zip", size, unzipped),
        "x86_64",
        configuration,
        tuple(layers),
        {},
    )


def recorded_layer(resource: LayerResource, version=1) -> PublishedRecord:
    arn = f"arn:aws:lambda:us-east-1:123456789012:layer:{resource.name}:{version}"
    details = {"layer_name": resource.name, "arn": arn, "version": version}
    return PublishedRecord(resource.resource_id, resource.code.input_hash, details, "2026-01-01T00:00:00+00:00")


def recorded_function(resource: FunctionResource, layer_arns, configuration=None) -> PublishedRecord:
    configuration = configuration or resource.configuration
    details = {
        "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{resource.name}",
        "code_sha256": resource.code.code_sha256,
        "architecture": resource.architecture,
        "configuration": configuration,
        "configuration_hash": configuration_hash(configuration),
        "layers": list(layer_arns),
        "tags": {},
    }
    return PublishedRecord(resource.artifact_id, resource.code.input_hash, details, "2026-01-01T00:00:00+00:00")


def kinds(plan) -> list[tuple[str, str]]:
    return [(action.name, str(action.kind)) for action in plan.actions]


def test_nothing_published_yet_plans_the_layer_then_the_functions():
    lib, ingest, report = layer(), function("ingest"), function("report")
    live = MemoryLive()

    plan = plan_publish(TARGET, [lib], [ingest, report], {}, live)

    assert kinds(plan) == [
        ("datamart-dev-internal_libs", "publish_layer_version"),
        ("datamart-dev-ingest", "create_function"),
        ("datamart-dev-report", "create_function"),
    ]
    assert plan.mutating_calls == 3
    assert plan.actions[1].params["Layers"] == [LayerRef("lambda/internal_libs")]
    assert [a.reason for a in plan.actions] == ["new layer", "new function", "new function"]


def test_everything_recorded_is_a_no_op_without_a_single_read():
    lib, ingest = layer(), function()
    lib_row = recorded_layer(lib)
    recorded = {lib.resource_id: lib_row, ingest.artifact_id: recorded_function(ingest, [lib_row.details["arn"]])}
    live = MemoryLive()

    plan = plan_publish(TARGET, [lib], [ingest], recorded, live)

    assert {str(a.kind) for a in plan.actions} == {"skip"} and plan.mutating_calls == 0
    assert live.reads == 0


def test_a_new_layer_input_publishes_a_version_and_reconfigures_its_users():
    old, new, ingest = layer("l1"), layer("l2"), function()
    old_row = recorded_layer(old)
    recorded = {old.resource_id: old_row, ingest.artifact_id: recorded_function(ingest, [old_row.details["arn"]])}

    reasons = {"lambda/internal_libs": "x.py changed"}
    plan = plan_publish(TARGET, [new], [ingest], recorded, MemoryLive(), reasons=reasons)

    assert kinds(plan) == [
        ("datamart-dev-internal_libs", "publish_layer_version"),
        ("datamart-dev-ingest", "update_function_configuration"),
    ]
    assert plan.actions[0].reason == "input changed since version 1 (x.py changed)"
    assert "layers datamart-dev-internal_libs:1 -> <new version of lambda/internal_libs>" in plan.actions[1].reason


def test_a_version_published_but_never_recorded_is_adopted_not_republished():
    lib = layer("l7")
    live = MemoryLive(
        layer_versions={
            lib.name: [
                {"arn": f"{ARN_OF_LIB}:4", "version": 4, "description": "pkg lambda/internal_libs input:l7"},
                {"arn": f"{ARN_OF_LIB}:3", "version": 3, "description": "pkg lambda/internal_libs input:l6"},
            ]
        }
    )

    plan = plan_publish(TARGET, [lib], [], {}, live)

    assert kinds(plan) == [("datamart-dev-internal_libs", "skip")]
    assert plan.actions[0].record == {"layer_name": lib.name, "arn": f"{ARN_OF_LIB}:4", "version": 4}
    assert "adopting" in plan.actions[0].reason


def test_a_setting_change_is_explained():
    lib, ingest = layer(), function(memory=128)
    lib_row = recorded_layer(lib)
    recorded = {lib.resource_id: lib_row, ingest.artifact_id: recorded_function(ingest, [lib_row.details["arn"]])}

    plan = plan_publish(TARGET, [lib], [function(memory=512)], recorded, MemoryLive())

    assert kinds(plan)[1:] == [("datamart-dev-ingest", "update_function_configuration")]
    assert plan.actions[1].reason == "MemorySize 128 -> 512"


def test_refresh_reports_drift_against_the_live_function():
    lib, ingest = layer(), function()
    lib_row = recorded_layer(lib)
    arn = lib_row.details["arn"]
    recorded = {lib.resource_id: lib_row, ingest.artifact_id: recorded_function(ingest, [arn])}
    live_state = {
        "arn": "arn:function",
        "code_sha256": ingest.code.code_sha256,
        "architecture": "x86_64",
        "configuration": {**ingest.configuration, "Timeout": 30},
        "layers": [arn],
        "tags": {},
    }
    versions = {lib.name: [{"arn": arn, "version": 1, "description": ""}]}
    live = MemoryLive(functions={ingest.name: live_state}, layer_versions=versions)

    plan = plan_publish(TARGET, [lib], [ingest], recorded, live, refresh=True)

    assert [(d.name, d.field) for d in plan.drift] == [("datamart-dev-ingest", "configuration")]
    assert kinds(plan)[1:] == [("datamart-dev-ingest", "update_function_configuration")]
    assert plan.actions[1].reason == "drift: configuration was changed out of band (Timeout 30 -> 3)"


class StatusLive(MemoryLive):
    """Every function live as `state`, with `status` (where Lambda's last change ended)."""

    def __init__(self, state: FunctionState):
        super().__init__()
        self.state = state

    def function(self, name):
        self.reads += 1
        return self.state


def test_a_live_function_whose_creation_ended_failed_is_deleted_then_created_again():
    ingest = function(layers=())
    failed = FunctionStatus("Failed", "The role cannot be assumed")
    live = StatusLive(FunctionState("arn", ingest.code.code_sha256, "x86_64", ingest.configuration, (), {}, failed))

    plan = plan_publish(TARGET, [], [ingest], {}, live)

    name = "datamart-dev-ingest"
    assert kinds(plan) == [(name, "delete_failed_function"), (name, "create_function")]
    assert plan.actions[0].reason == "its creation ended Failed (The role cannot be assumed): AWS requires deleting it"
    assert plan.actions[0].params == {"FunctionName": "datamart-dev-ingest"}


def test_a_live_function_whose_last_update_ended_failed_is_updated_with_the_reason_in_the_plan():
    ingest = function(layers=())
    status = FunctionStatus("Active", None, "Failed", "Lambda was unable to configure your environment")
    live = StatusLive(FunctionState("arn", "old", "x86_64", ingest.configuration, (), {}, status))

    plan = plan_publish(TARGET, [], [ingest], {}, live)

    assert kinds(plan) == [("datamart-dev-ingest", "skip"), ("datamart-dev-ingest", "update_function_code")]
    assert plan.actions[1].reason == (
        "exists but not recorded: its last update ended Failed (Lambda was unable to configure your environment):"
        " code changed"
    )


def test_big_code_goes_through_the_bucket_once():
    big = function(size=60 * 1024 * 1024)
    key = big.code.s3_key
    plan = plan_publish(TARGET, [], [function("big", layers=(), size=60 * 1024 * 1024)], {}, MemoryLive(), bucket="b")
    assert kinds(plan) == [("datamart-dev-big", "put_object"), ("datamart-dev-big", "create_function")]
    assert plan.actions[1].params["Code"] == {"S3Bucket": "b", "S3Key": key}
    assert key == f"pkg/lambda/{SHA}.zip"  # content-addressed

    uploaded = MemoryLive(objects=[("b", key)])
    plan = plan_publish(TARGET, [], [function("big", layers=(), size=60 * 1024 * 1024)], {}, uploaded, bucket="b")
    assert kinds(plan) == [("datamart-dev-big", "create_function")]


def test_layer_names_are_stable_per_artifact():
    assert layer_name("datamart", "dev", "lambda/internal_libs") == "datamart-dev-internal_libs"
    assert layer_name("datamart", "dev", "lambda/internal_libs_deps/1") == "datamart-dev-internal_libs_deps-1"
    assert layer_name("datamart", "dev", "lambda/function_deps/ingest/2") == "datamart-dev-ingest-deps-2"


def test_layer_name_limit_follows_the_arn_length():
    check_layer_name("x" * 90, "lambda/internal_libs", TARGET)  # 44 + 90 + 6 = 140
    with pytest.raises(PlanError, match="at most 90"):
        check_layer_name("x" * 91, "lambda/internal_libs", TARGET)
    with pytest.raises(PlanError, match="at most 82"):  # a longer region and partition leave less room
        check_layer_name("x" * 90, "lambda/internal_libs", Target("123456789012", "cn-northwest-1", "dev"))


def test_more_than_five_layers_is_refused():
    ids = [f"lambda/function_deps/ingest/{k}" for k in range(6)]
    layers = {artifact_id: layer(artifact_id=artifact_id) for artifact_id in ids}
    with pytest.raises(PlanError, match="6 layers; Lambda allows 5"):
        check_limits(function(layers=tuple(layers)), layers)


def test_code_plus_layers_over_250_mb_unzipped_is_refused_naming_the_parts():
    layers = {"lambda/internal_libs": layer(unzipped=200_000_000)}
    with pytest.raises(PlanError, match=r"262,144,000.*lambda/internal_libs 190\.7 MiB"):
        check_limits(function(unzipped=70_000_000), layers)


def test_environment_over_4_kb_is_refused():
    big = function()
    big.configuration["Environment"] = {"Variables": {"K": "v" * 5000}}
    with pytest.raises(PlanError, match="environment variables take 5001 bytes"):
        check_limits(big, {"lambda/internal_libs": layer()})


def test_index_migration_keeps_old_rows_and_adds_the_published_table(tmp_path):
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE artifacts (input_hash TEXT PRIMARY KEY, kind TEXT, path TEXT, sha256 TEXT, size INTEGER,
                                unzipped_size INTEGER, created TEXT, meta TEXT);
        CREATE TABLE file_state (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
                                 inode INTEGER, digest TEXT);
        CREATE TABLE last_inputs (artifact_id TEXT PRIMARY KEY, input_hash TEXT, manifest TEXT, built TEXT);
        CREATE TABLE checked_sources (digest TEXT PRIMARY KEY, checker TEXT);
        INSERT INTO artifacts VALUES ('h1', 'lambda-layer', 'store/h1/h1.zip', 'aa', 1, 2, 'then', '{}');
        PRAGMA user_version = 1;
        """
    )
    conn.close()

    index = Index(str(path))

    assert index.conn.execute("PRAGMA user_version").fetchone()[0] >= 2
    assert list(index.artifacts(["h1"])) == ["h1"]
    index.record_published("123456789012", "us-east-1", "dev", "lambda/internal_libs@h1", "h1", {"arn": "a:1"})
    index.record_published("123456789012", "us-east-1", "prod", "lambda/internal_libs@h1", "h1", {"arn": "a:2"})
    rows = index.published("123456789012", "us-east-1", "dev")
    assert {key: (row.input_hash, row.details) for key, row in rows.items()} == {
        "lambda/internal_libs@h1": ("h1", {"arn": "a:1"})
    }
    index.close()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            '[tool.pkg.lambda]\nrole = "datamart-lambda"',
            "tool.pkg.lambda.role: 'datamart-lambda' is not an IAM role ARN",
        ),
        ('[tool.pkg.stages.dev]\nregion = "US East"', "tool.pkg.stages.dev.region: 'US East' is not an AWS region"),
        ('[tool.pkg.stages.dev]\naccount = "1234"', "tool.pkg.stages.dev.account must be a 12-digit AWS account id"),
        ("[tool.pkg.stages.dev]\naccount = 123456789012", "tool.pkg.stages.dev.account must be a string"),
        ('[tool.pkg.stages.dev]\nregoin = "us-east-1"', "tool.pkg.stages.dev: unknown key 'regoin'"),
        (
            '[tool.pkg.stages.dev.lambda.functions.ingest]\nmemory = "1 GB"',
            "tool.pkg.stages.dev.lambda.functions.ingest.memory must be an integer",
        ),
        (
            '[tool.pkg.lambda]\nenvironment = { "1BAD" = "x" }',
            "tool.pkg.lambda.environment: '1BAD' can't name a Lambda environment variable",
        ),
        (
            '[tool.pkg.stages.prod.lambda]\nruntime = "python3.11"',
            "tool.pkg.stages.prod.lambda: 'runtime' can't differ per stage",
        ),
        (
            '[tool.pkg.stages.prod.lambda.functions.ingest]\narchitecture = "arm64"',
            "tool.pkg.stages.prod.lambda.functions.ingest: 'architecture' can't differ per stage",
        ),
    ],
)
def test_publish_settings_are_validated_naming_the_key(tmp_path, setting, message):
    from conftest import make_repo

    repo = make_repo(tmp_path)
    text = (repo.root / "pyproject.toml").read_text()
    if setting.startswith("[tool.pkg.lambda]\n"):
        text = text.replace("[tool.pkg.lambda]\n", setting + "\n")
    else:
        text += "\n" + setting + "\n"
    repo.write("pyproject.toml", text)

    result = repo.pkg("plan")

    assert result.exit_code == 1
    assert message in result.stderr, result.stderr


def test_a_function_published_before_pkg_tagged_gets_the_tags_on_its_next_publish_and_nothing_else():
    from dataclasses import replace

    lib, ingest = layer(), function("ingest")
    lib_row = recorded_layer(lib)
    rows = {lib.resource_id: lib_row, ingest.artifact_id: recorded_function(ingest, [lib_row.details["arn"]])}
    tagged = replace(ingest, tags={"pkg:project": "datamart", "pkg:stage": "dev"})  # what desired_resources wants now
    live = MemoryLive()

    plan = plan_publish(TARGET, [lib], [tagged], rows, live)

    changes = [(str(a.kind), a.reason) for a in plan.actions if str(a.kind) != "skip"]
    assert changes == [("tag_resource", "tags set: pkg:project, pkg:stage")]
    assert live.reads == 0
