"""Resource names pkg sends: valid for AWS's patterns, stable, and unchanged where they already were."""

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
