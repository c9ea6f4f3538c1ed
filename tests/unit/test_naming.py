"""What pkg sends fits what AWS accepts: names valid for its patterns (stable, unchanged where they already
were), request sizes under its limit."""

from __future__ import annotations

import re

import botocore.session
import pytest

from packager.deploy.naming import layer_name

LAMBDA = botocore.session.Session().get_service_model("lambda")


def layer_name_pattern() -> re.Pattern:
    shape = LAMBDA.operation_model("PublishLayerVersion").input_shape.members["LayerName"]
    return re.compile(shape.metadata["pattern"])


@pytest.mark.parametrize(
    "artifact_id",
    [
        "lambda/internal_libs",
        "lambda/internal_libs_deps/0",
        "lambda/internal_libs_deps/python3.12-arm64/0",
        "lambda/internal_libs_deps/python3.9-x86_64/3",
        "lambda/function_deps/ingest/1",
    ],
)
def test_every_layer_name_matches_lambdas_pattern(artifact_id):
    assert layer_name_pattern().fullmatch(layer_name("datamart", "dev", artifact_id))


def test_a_platform_loses_its_dot_and_valid_names_stay_identical():
    assert layer_name("datamart", "dev", "lambda/internal_libs_deps/python3.12-arm64/0") == (
        "datamart-dev-internal_libs_deps-python312-arm64-0"
    )
    assert layer_name("datamart", "dev", "lambda/internal_libs_deps/2") == "datamart-dev-internal_libs_deps-2"
    assert layer_name("datamart", "dev", "lambda/internal_libs") == "datamart-dev-internal_libs"
    assert layer_name("datamart", "dev", "lambda/function_deps/ingest/0") == "datamart-dev-ingest-deps-0"


def test_inline_upload_follows_the_request_size_lambda_accepts():
    from packager.deploy.limits import LAMBDA_REQUEST_MAX_BYTES, fits_inline, inline_request_bytes

    assert fits_inline(1024)
    assert not fits_inline(50 * 1024 * 1024)
    # Just under 50 MiB, base64 alone passes AWS's request limit: through the bucket.
    assert not fits_inline(50 * 1024 * 1024 - 100)
    largest = max(size for size in range(52_370_000, 52_390_000, 3) if fits_inline(size))
    assert inline_request_bytes(largest) <= LAMBDA_REQUEST_MAX_BYTES < inline_request_bytes(largest + 3)


def test_every_jobupdate_member_is_set_carried_over_or_left_to_glue():
    from packager.deploy.jobs_plan import GLUE_CARRIED_OVER

    members = set(botocore.session.Session().get_service_model("glue").shape_for("JobUpdate").members)
    set_by_pkg = {"Role", "Command", "DefaultArguments", "GlueVersion", "MaxCapacity", "WorkerType",
                  "NumberOfWorkers", "MaxRetries", "Description", "Timeout"}  # fmt: skip
    left_to_glue = {"AllocatedCapacity", "CodeGenConfigurationNodes"}  # deprecated; visual jobs only
    # A member botocore adds must be placed in one of these, or UpdateJob would wipe it.
    assert members == set_by_pkg | set(GLUE_CARRIED_OVER) | left_to_glue


def test_a_layer_recorded_under_its_old_dotted_name_gets_a_new_layer_and_says_so():
    from dataclasses import replace

    from test_publish_plan import TARGET, MemoryLive, kinds, layer, recorded_layer

    from packager.deploy.lambda_plan import plan_publish

    arm = layer(artifact_id="lambda/internal_libs_deps/python3.12-arm64/0")
    old = recorded_layer(replace(arm, name="datamart-dev-internal_libs_deps-python3.12-arm64-0"), version=2)

    plan = plan_publish(TARGET, [arm], [], {old.resource_id: old}, MemoryLive())

    assert kinds(plan) == [("datamart-dev-internal_libs_deps-python312-arm64-0", "publish_layer_version")]
    assert plan.actions[0].reason == (
        "new layer name (was datamart-dev-internal_libs_deps-python3.12-arm64-0, which AWS refuses): a new layer"
    )
