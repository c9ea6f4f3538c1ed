"""Publishing dependency layers: each chunk is its own layer, attached in `uses` order; a bump republishes one chunk.

Wheels come from the offline wheelhouse of tests/wheelhouse.py (the dependency tests' fixture).
"""

from __future__ import annotations

import boto3
from conftest import AWS_REGION, make_repo
from conftest import PUBLISH_PYPROJECT
from test_publish import code_sha256


def test_dependency_chunks_are_published_as_layers_and_a_bump_publishes_only_the_changed_chunk(
    tmp_path, aws, wheelhouse
):  # noqa: F811
    repo = make_repo(tmp_path)
    repo.write(
        "pyproject.toml",
        PUBLISH_PYPROJECT + f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n',
    )
    repo.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "bigone==1.0\nbigtwo==1.0\n")
    lam = boto3.client("lambda", region_name=AWS_REGION)

    first = repo.pkg_json("publish", "--stage", "dev")

    layers = {
        a["name"]: a["action"] for a in first["actions"] if a["id"].startswith("lambda/") and "function/" not in a["id"]
    }
    assert layers == {
        "datamart-dev-internal_libs": "publish_layer_version",
        "datamart-dev-internal_libs_deps-0": "publish_layer_version",
        "datamart-dev-ingest-deps-0": "publish_layer_version",
        "datamart-dev-ingest-deps-1": "publish_layer_version",
    }
    paths = {a["id"]: a["path"] for a in first["artifacts"]}
    ingest = lam.get_function(FunctionName="datamart-dev-ingest")["Configuration"]
    # The fixed order: internal_libs, its dependencies, then the function's own.
    assert [layer["Arn"].rsplit(":layer:", 1)[1] for layer in ingest["Layers"]] == [
        "datamart-dev-internal_libs:1",
        "datamart-dev-internal_libs_deps-0:1",
        "datamart-dev-ingest-deps-0:1",
        "datamart-dev-ingest-deps-1:1",
    ]
    report = lam.get_function(FunctionName="datamart-dev-report")["Configuration"]
    assert [layer["Arn"].rsplit(":layer:", 1)[1] for layer in report["Layers"]] == [
        "datamart-dev-internal_libs:1",
        "datamart-dev-internal_libs_deps-0:1",
    ]
    for k in (0, 1):
        live = lam.get_layer_version(LayerName=f"datamart-dev-ingest-deps-{k}", VersionNumber=1)
        assert live["Content"]["CodeSha256"] == code_sha256(paths[f"lambda/function_deps/ingest/{k}"])

    repo.write("src/lambda/ingest.requirements.txt", "bigone==1.0\nbigtwo==1.1\n")
    aws.reset_calls()

    second = repo.pkg_json("publish", "--stage", "dev")

    assert second["summary"]["built"] == 1
    changed = [(a["name"], a["action"]) for a in second["actions"] if a["action"] != "skip"]
    assert len(changed) == 3
    (chunk, publish), (function, update), version = changed
    assert chunk in ("datamart-dev-ingest-deps-0", "datamart-dev-ingest-deps-1") and publish == "publish_layer_version"
    assert (function, update) == ("datamart-dev-ingest", "update_function_configuration")
    assert version == ("datamart-dev-ingest", "publish_version")  # and its alias moves (docs/releases.md)
    expected = ["PublishLayerVersion", "UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]
    assert sorted(aws.mutating_calls()) == sorted(expected)
    live_layers = [
        layer["Arn"].rsplit(":layer:", 1)[1]
        for layer in lam.get_function(FunctionName="datamart-dev-ingest")["Configuration"]["Layers"]
    ]
    assert f"{chunk}:2" in live_layers and len(live_layers) == 4

    aws.reset_calls()
    repo.pkg_json("publish", "--stage", "dev")
    assert aws.mutating_calls() == []
