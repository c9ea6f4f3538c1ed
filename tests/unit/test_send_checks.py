"""What an update or upload carries (issue 12), without AWS: the planner's RevisionId, the executor
chaining it from one update to the next, and the handlers refusing bytes that are not the ones built.

The handlers get a fake session whose clients remember each call: a refused upload made none.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile

import pytest

from packager.deploy.actions import Action, ActionKind, PublishPlan
from packager.deploy.executor import execute
from packager.deploy.handlers import Call, publish_layer_version, publish_version, put_object, update_function_code
from packager.deploy.lambda_plan import plan_publish
from packager.errors import PublishError
from test_deploy_executor import TARGET, configuration_answer, index  # noqa: F401
from test_publish_plan import MemoryLive, function, kinds, layer, recorded_function, recorded_layer

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:datamart-dev-ingest"


class FakeClient:
    """A boto3 client that records each call and answers like AWS."""

    def __init__(self, calls: list):
        self.calls = calls

    def __getattr__(self, operation: str):
        def call(**params):
            self.calls.append((operation, params))
            configuration = {"FunctionArn": FUNCTION_ARN, "CodeSha256": "x", "RevisionId": f"r{len(self.calls)}"}
            if operation == "get_function":
                return {"Configuration": {**configuration, "State": "Active", "LastUpdateStatus": "Successful"}}
            if operation == "publish_layer_version":
                return {"LayerVersionArn": "arn:layer:1", "Version": 1, "Content": {"CodeSha256": "x"}}
            if operation == "publish_version":
                return {**configuration, "Version": "2"}
            return configuration

        return call


class FakeSession:
    def __init__(self):
        self.calls: list = []

    def client(self, service: str) -> FakeClient:
        return FakeClient(self.calls)


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_sha256_of(path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def action(kind: ActionKind, params: dict) -> Action:
    artifact = "lambda/function/ingest"
    return Action(artifact, kind, "test", "datamart-dev-ingest", params, resource_id=artifact)


# -- RevisionId ----------------------------------------------------------------------------------------


def test_an_update_carries_the_revision_recorded_from_aws_last_answer():
    lib, old, new = layer(), function(memory=128), function(memory=256)
    lib_row = recorded_layer(lib)
    row = recorded_function(old, [lib_row.details["arn"]])
    row.details["revision_id"] = "rev-1"

    plan = plan_publish(TARGET, [lib], [new], {lib.resource_id: lib_row, new.artifact_id: row}, MemoryLive())

    assert kinds(plan)[-1] == ("datamart-dev-ingest", "update_function_configuration")
    assert plan.actions[-1].params["RevisionId"] == "rev-1"


def test_a_function_read_live_while_planning_is_updated_with_the_revision_read():
    lib, ingest = layer(), function(memory=256)
    lib_row = recorded_layer(lib)
    live_row = recorded_function(function(memory=128), [lib_row.details["arn"]]).details
    live = MemoryLive(functions={ingest.name: {**live_row, "revision_id": "live-7"}})

    plan = plan_publish(TARGET, [lib], [ingest], {lib.resource_id: lib_row}, live)  # not recorded: read live

    assert [a.params.get("RevisionId") for a in plan.actions if a.kind.mutating] == ["live-7"]


def test_a_row_without_a_revision_plans_updates_without_one():
    lib, old, new = layer(), function(memory=128), function(memory=256)
    lib_row = recorded_layer(lib)
    recorded = {lib.resource_id: lib_row, new.artifact_id: recorded_function(old, [lib_row.details["arn"]])}

    plan = plan_publish(TARGET, [lib], [new], recorded, MemoryLive())

    assert "RevisionId" not in plan.actions[-1].params


def test_the_second_update_of_a_function_carries_the_revision_the_first_left(index):  # noqa: F811
    code = action(ActionKind.UPDATE_FUNCTION_CODE, {"FunctionName": "datamart-dev-ingest", "RevisionId": "planned"})
    configure = action(
        ActionKind.UPDATE_FUNCTION_CONFIGURATION, {"FunctionName": "datamart-dev-ingest", "RevisionId": "planned"}
    )
    calls: list[Call] = []

    def handle(aws, call: Call) -> dict:
        calls.append(call)
        return {"configuration": configuration_answer(call), "revision_id": f"after-{len(calls)}"}

    handlers = {ActionKind.UPDATE_FUNCTION_CODE: handle, ActionKind.UPDATE_FUNCTION_CONFIGURATION: handle}
    execute(PublishPlan(TARGET, [code, configure]), None, index, {}, {}, handlers=handlers)

    assert [call.revision_id for call in calls] == [None, "after-1"]
    row = index.published(TARGET.account, TARGET.region, TARGET.stage)["lambda/function/ingest"]
    assert row.details["revision_id"] == "after-2"


def test_an_update_sends_the_revision_the_step_before_left():
    aws = FakeSession()
    call = Call(
        action(ActionKind.UPDATE_FUNCTION_CODE, {"FunctionName": "f", "S3Bucket": "b", "S3Key": "k"}),
        {"FunctionName": "f", "S3Bucket": "b", "S3Key": "k", "RevisionId": "planned"},
        revision_id="after-code",
    )

    result = update_function_code(aws, call)  # type: ignore[arg-type]

    assert aws.calls[0] == ("update_function_code", {"FunctionName": "f", "S3Bucket": "b", "S3Key": "k",
                                                     "RevisionId": "after-code"})  # fmt: skip
    # The revision recorded is the one read once the update ended, not the one it answered with.
    assert aws.calls[1][0] == "get_function" and result["revision_id"] == "r2"


def test_a_new_functions_alias_goes_to_the_version_its_create_published_only_if_that_holds_the_zip_built():
    params = {"FunctionName": "f", "Alias": "live", "CodeSha256": "good=", "AliasExists": False}
    step = action(ActionKind.PUBLISH_VERSION, {**params, "PublishedByCreate": True})
    created = {"FunctionArn": FUNCTION_ARN, "Version": "1", "CodeSha256": "good="}
    aws = FakeSession()
    result = publish_version(aws, Call(step, step.params, published=created))  # type: ignore[arg-type]
    assert aws.calls == [("create_alias", {"FunctionName": "f", "Name": "live", "FunctionVersion": "1"})]
    assert result["alias"]["version"] == "1"

    aws = FakeSession()
    publish_version(aws, Call(step, step.params, published={**created, "CodeSha256": "other="}))  # type: ignore[arg-type]
    # Not version 1: PublishVersion with the zip's digest, which Lambda refuses for other code.
    assert aws.calls[0] == ("publish_version", {"FunctionName": "f", "CodeSha256": "good="})


# -- verify before sending -----------------------------------------------------------------------------


def test_an_inline_zip_that_is_not_the_one_built_is_never_sent(tmp_path):
    built = tmp_path / "layer.zip"
    built.write_bytes(b"PK built bytes")
    recorded = code_sha256_of(built)
    built.write_bytes(b"PK other bytes")  # same size, other content
    aws = FakeSession()
    call = Call(action(ActionKind.PUBLISH_LAYER_VERSION, {}), {"LayerName": "l", "Content": {"ZipFile": str(built)}},
                code_sha256=recorded)  # fmt: skip

    with pytest.raises(PublishError, match="is not the one built .* nothing was sent"):
        publish_layer_version(aws, call)  # type: ignore[arg-type]

    assert aws.calls == []


@pytest.mark.parametrize("kind", ["code", "layer"])
def test_the_bytes_sent_inline_are_the_bytes_checked(tmp_path, kind):
    built = tmp_path / "built.zip"
    built.write_bytes(b"PK the zip")
    aws = FakeSession()
    if kind == "code":
        params = {"FunctionName": "f", "ZipFile": str(built)}
        update_function_code(aws, Call(action(ActionKind.UPDATE_FUNCTION_CODE, params), params,  # type: ignore
                                       code_sha256=code_sha256_of(built)))  # fmt: skip
        assert aws.calls[0][1]["ZipFile"] == b"PK the zip"
    else:
        params = {"LayerName": "l", "Content": {"ZipFile": str(built)}}
        publish_layer_version(aws, Call(action(ActionKind.PUBLISH_LAYER_VERSION, params), params,  # type: ignore
                                        code_sha256=code_sha256_of(built)))  # fmt: skip
        assert aws.calls[0][1]["Content"]["ZipFile"] == b"PK the zip"


def test_an_upload_hashes_the_file_first_and_tells_s3_the_digest(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print('hello')\n")
    digest = sha256_of(script)
    params = {"Bucket": "b", "Key": "pkg/glue/job/x/job.py", "path": str(script), "sha256": digest}
    aws = FakeSession()

    put_object(aws, Call(action(ActionKind.PUT_OBJECT, params), params))  # type: ignore[arg-type]

    (operation, sent), = aws.calls
    assert operation == "put_object" and sent["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(digest)).decode()

    script.write_text("print('HELLO')\n")  # same size, other bytes
    aws.calls.clear()
    with pytest.raises(PublishError, match="is not the one built"):
        put_object(aws, Call(action(ActionKind.PUT_OBJECT, params), params))  # type: ignore[arg-type]
    assert aws.calls == []


def test_a_wheel_from_a_corrupt_wheelhouse_is_never_uploaded(tmp_path):
    wheelhouse = tmp_path / "deps.zip"
    with zipfile.ZipFile(wheelhouse, "w") as archive:
        archive.writestr("a-1.0-py3-none-any.whl", b"wheel bytes")
    digest = sha256_of(wheelhouse)
    params = {"Bucket": "b", "Key": "k/a-1.0-py3-none-any.whl", "path": str(wheelhouse), "sha256": digest,
              "member": "a-1.0-py3-none-any.whl"}  # fmt: skip
    aws = FakeSession()

    put_object(aws, Call(action(ActionKind.PUT_OBJECT, params), params))  # type: ignore[arg-type]
    assert aws.calls[0][1]["Body"] == b"wheel bytes"
    member_digest = base64.b64encode(hashlib.sha256(b"wheel bytes").digest()).decode()
    assert aws.calls[0][1]["ChecksumSHA256"] == member_digest

    data = bytearray(wheelhouse.read_bytes())
    data[data.index(b"wheel bytes")] ^= 0xFF
    wheelhouse.write_bytes(bytes(data))
    aws.calls.clear()
    with pytest.raises(PublishError, match="is not the one built"):
        put_object(aws, Call(action(ActionKind.PUT_OBJECT, params), params))  # type: ignore[arg-type]
    assert aws.calls == []
