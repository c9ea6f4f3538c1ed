"""The published rows round-trip: today's stored JSON in, the same JSON out, for every row shape."""

from __future__ import annotations

import json

import pytest

from packager.deploy.records import (
    EmrRunRow,
    FunctionRow,
    FunctionState,
    GlueJobRow,
    LayerVersionRow,
    UploadRow,
    changed_environment_keys,
    configuration_hash,
    environment_digests,
    with_pending,
)

CONFIGURATION = {
    "Role": "arn:aws:iam::123456789012:role/r",
    "Handler": "ingest.handler",
    "Runtime": "python3.12",
    "MemorySize": 128,
    "Timeout": 3,
    "Description": "",
    "Environment": {"VariableDigests": environment_digests({"A": "1"})},
}
FUNCTION = json.dumps(
    {
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:datamart-dev-ingest",
        "code_sha256": "q83vEjRWeJA=",
        "architecture": "x86_64",
        "configuration": CONFIGURATION,
        "configuration_hash": configuration_hash(CONFIGURATION),
        "layers": ["arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:3"],
        "tags": {"team": "data"},
    },
    sort_keys=True,
)

STORED = [
    (
        LayerVersionRow,
        '{"arn": "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:3",'
        ' "code_sha256": "q83vEjRWeJA=", "layer_name": "datamart-dev-internal_libs", "version": 3}',
    ),
    (
        LayerVersionRow,  # adopted: ListLayerVersions gives no CodeSha256
        '{"arn": "arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:4",'
        ' "layer_name": "datamart-dev-internal_libs", "version": 4}',
    ),
    (FunctionRow, FUNCTION),
    (FunctionRow, json.dumps({**json.loads(FUNCTION), "pending": True}, sort_keys=True)),
    (FunctionRow, '{"missing": true}'),
    (UploadRow, '{"bucket": "artifacts", "key": "pkg/glue_spark/internal_libs/' + "ab" * 32 + '/internal_libs.zip"}'),
    (
        GlueJobRow,
        '{"definition": {"Command": {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": "s3://b/k.py"},'
        ' "Role": "arn:aws:iam::123456789012:role/glue"}, "name": "datamart-dev-orders", "tags": {"team": "data"}}',
    ),
    (GlueJobRow, '{"definition": {"Role": "r"}, "name": "datamart-dev-orders"}'),  # adopted before tags were kept
    (GlueJobRow, '{"definition": null, "name": "datamart-dev-orders", "tags": {}}'),  # seen deleted by --refresh
    (
        EmrRunRow,
        '{"name": "datamart-dev-clean", "spec": {"application_id": null, "arguments": [], "conf": {},'
        ' "entry_point": "s3://b/pkg/emr/job-clean/ab/clean.py", "python": "3.11", "release_label": "emr-7.9.0"}}',
    ),
]


@pytest.mark.parametrize(("row_type", "stored"), STORED)
def test_every_stored_shape_reads_and_writes_back_byte_identical(row_type, stored):
    row = row_type.from_details(json.loads(stored))
    assert json.dumps(row.to_details(), sort_keys=True) == stored


def test_a_function_state_read_from_aws_keeps_only_what_pkg_manages():
    answer = {
        "FunctionArn": "arn:f",
        "CodeSha256": "abc=",
        "Architectures": ["arm64"],
        "Role": "r",
        "Handler": "h",
        "Runtime": "python3.12",
        "MemorySize": 256,
        "Timeout": 9,
        "Environment": {"Variables": {"B": "2", "A": "1"}},
        "Layers": [{"Arn": "arn:l:1", "CodeSize": 10}],
        "LastModified": "today",
    }
    state = FunctionState.from_configuration(answer, {"aws:cloudformation:stack-name": "s", "team": "data"})
    row = FunctionRow.confirmed(state)
    details = row.to_details()
    assert details["layers"] == ["arn:l:1"] and details["tags"] == {"team": "data"}
    assert list(details["configuration"]["Environment"]["VariableDigests"]) == ["A", "B"]
    assert details["configuration_hash"] == configuration_hash(details["configuration"])
    assert "LastModified" not in json.dumps(details)


def test_the_pending_flag_comes_and_goes_without_touching_the_rest():
    details = json.loads(FUNCTION)
    assert with_pending(with_pending(details, True), False) == details
    assert FunctionRow.from_details(with_pending(details, True)).pending


def test_a_row_written_with_environment_values_reads_and_is_rewritten_without_them():
    old = json.loads(FUNCTION)
    old["configuration"] = {**CONFIGURATION, "Environment": {"Variables": {"A": "1", "TOKEN": "hunter2"}}}
    row = FunctionRow.from_details(old)
    stored = json.dumps(row.rehashed().to_details(), sort_keys=True)
    assert "hunter2" not in stored and '"TOKEN"' in stored
    assert row.state is not None
    assert row.state.configuration == {
        **CONFIGURATION,
        "Environment": {"VariableDigests": environment_digests({"A": "1", "TOKEN": "hunter2"})},
    }


def test_environment_digests_say_which_keys_differ_and_not_the_values():
    before = FunctionState(None, None, None, {"Environment": {"Variables": {"A": "1", "B": "2", "C": "3"}}})
    after = FunctionState(None, None, None, {"Environment": {"Variables": {"A": "1", "B": "two", "D": "4"}}})
    assert changed_environment_keys(before.configuration, after.configuration) == ["B", "C", "D"]
    assert environment_digests({"A": "1"}) != environment_digests({"A": "2"})
    assert environment_digests({"A": "1"}) != environment_digests({"B": "1"})  # same value, other key
