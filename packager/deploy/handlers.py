"""One function per action kind: the AWS call an action names, with the parameters the executor resolved.

`HANDLERS` is the executor's dispatch table. A handler gets the session and a `Call` (the action,
its resolved parameters, the step before it on the same resource) and returns what AWS answered
that the index records (`packager/deploy/executor.py` turns it into a row through `records`).
Handlers raise botocore's errors as they come; the executor translates them once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from packager.deploy.actions import Action, ActionKind
from packager.deploy.aws import AwsSession
from packager.deploy.jobs_plan import carried_over
from packager.deploy.records import AliasState, FunctionState, version_digest
from packager.errors import PublishError

# Lambda applies a create or an update asynchronously, and rejects an update while one is in
# progress (ResourceConflictException): every change is waited for until it has ended.
_WAIT = {"Delay": 1, "MaxAttempts": 300}
FIRST_POLL_SECONDS = 0.125  # a final wait looks again after this, doubling up to _WAIT's Delay


@dataclass(frozen=True)
class Call:
    """One action to perform: its parameters with this run's values resolved, and the step before it."""

    action: Action
    params: dict
    previous: ActionKind | None = None
    revision_id: str | None = None  # the function's RevisionId after the step before it, if that changed it
    code_sha256: str | None = None  # Lambda's CodeSha256 (base64) of the zip this step sends, as recorded
    published: dict | None = None  # the version a CreateFunction before it published (`Publish`), as AWS answered


Handler = Callable[[AwsSession, Call], dict]


def _not_as_built(path: str, actual: str, recorded: str) -> PublishError:
    return PublishError(
        f"{path}: the file about to be sent is not the one built (sha256 {actual[:12]}…, recorded"
        f" {recorded[:12]}…): the store file is corrupt; nothing was sent",
        hint="run `pkg cache verify --repair` (it drops the file; the artifact is built again), then publish again",
    )


def _read(path: str, code_sha256: str | None = None) -> bytes:
    """A built zip's bytes, checked against the CodeSha256 recorded for it before they are sent anywhere."""
    with open(path, "rb") as stream:
        data = stream.read()
    if code_sha256 is not None:
        digest = hashlib.sha256(data).digest()
        if base64.b64encode(digest).decode() != code_sha256:
            raise _not_as_built(path, digest.hex(), base64.b64decode(code_sha256).hex())
    return data


# Wheelhouses checked whole, by (path, size, mtime, inode): each of their wheels is uploaded by its own
# step, and hashing the whole wheelhouse once per wheel would cost a wheel count times its size.
_CHECKED_WHEELHOUSES: dict[tuple[str, int, int, int], str] = {}


def _checked_file(path: str, sha256: str | None) -> str:
    """The SHA-256 (hex) of a built file about to be uploaded, which must be the one recorded for it."""
    from cache.store import sha256_file

    actual = sha256_file(path)
    if sha256 is not None and actual != sha256:
        raise _not_as_built(path, actual, sha256)
    return actual


def _checked_wheelhouse(path: str, sha256: str | None) -> None:
    """`_checked_file` for a wheelhouse zip, once per unchanged file."""
    import os

    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if _CHECKED_WHEELHOUSES.get(key) != sha256 or sha256 is None:
        _CHECKED_WHEELHOUSES[key] = _checked_file(path, sha256)


def _with_zip(params: dict, key: str, code_sha256: str | None = None) -> dict:
    """`params` with the local zip path under params[key]["ZipFile"] replaced by its (checked) bytes."""
    content = params.get(key)
    if isinstance(content, dict) and "ZipFile" in content:
        return {**params, key: {**content, "ZipFile": _read(content["ZipFile"], code_sha256)}}
    return params


def _s3_checksum(hex_digest: str) -> str:
    """S3's ChecksumSHA256 header: S3 refuses the object if the bytes it receives have another digest."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def put_object(aws: AwsSession, call: Call) -> dict:
    """Upload a built file (streamed), or one wheel inside a built wheelhouse zip, to the artifact bucket.

    The file is hashed first and must be the one recorded (`sha256` in the parameters); the upload
    carries that digest, so S3 refuses bytes that changed after the check.
    """
    params = call.params
    s3 = aws.client("s3")
    if params.get("member"):
        import zipfile

        _checked_wheelhouse(params["path"], params.get("sha256"))
        with zipfile.ZipFile(params["path"]) as archive:
            body = archive.read(params["member"])  # checked against the member's CRC-32 as it is read
        member_digest = hashlib.sha256(body).hexdigest()
        s3.put_object(Bucket=params["Bucket"], Key=params["Key"], Body=body, ChecksumSHA256=_s3_checksum(member_digest))
    else:
        digest = _checked_file(params["path"], params.get("sha256"))
        with open(params["path"], "rb") as stream:
            s3.put_object(Bucket=params["Bucket"], Key=params["Key"], Body=stream, ChecksumSHA256=_s3_checksum(digest))
    return {}


def publish_layer_version(aws: AwsSession, call: Call) -> dict:
    """PublishLayerVersion; the new version's ARN, number and CodeSha256."""
    answer = aws.client("lambda").publish_layer_version(**_with_zip(call.params, "Content", call.code_sha256))
    return {
        "arn": answer["LayerVersionArn"],
        "version": answer["Version"],
        "code_sha256": answer.get("Content", {}).get("CodeSha256"),
    }


def _wait_final(aws: AwsSession, name: str, created: bool) -> dict:
    """Wait for the change just made to end: State Active after a create, LastUpdateStatus Successful
    after an update. Lambda applies both asynchronously; one that ends Failed raises PublishError with
    AWS's reason, so the step is not recorded and the next publish tries it again.

    Returns the function's configuration once ended (GetFunction polled as botocore's
    function_active_v2 / function_updated_v2 waiters do): its RevisionId, not the one the change
    answered with, is what the next update must carry, since Lambda replaces it again as the change ends.
    """
    import time

    prefix, done = ("State", "Active") if created else ("LastUpdateStatus", "Successful")
    configuration: dict = {}
    deadline = time.monotonic() + _WAIT["Delay"] * _WAIT["MaxAttempts"]
    delay = FIRST_POLL_SECONDS  # most changes end within a second: look again soon, then every Delay
    while True:
        configuration = aws.client("lambda").get_function(FunctionName=name)["Configuration"]
        if configuration.get(prefix) == done:
            return configuration
        if configuration.get(prefix) == "Failed" or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, _WAIT["Delay"])
    status = configuration.get(prefix)
    waited = f"it did not end within {_WAIT['Delay'] * _WAIT['MaxAttempts']} s"
    reason = configuration.get(f"{prefix}Reason") or configuration.get("StateReason") or waited
    code = configuration.get(f"{prefix}ReasonCode")
    step = "creation" if created else "update"
    raise PublishError(
        f"{name}: the function's {step} ended {status or 'unfinished'}: {reason}" + (f" ({code})" if code else ""),
        hint="fix the cause AWS gives, then publish again (the step was not recorded, so it is retried"
        + (": a function whose creation failed is deleted and created again)" if created else ")"),
    )


REVISION_CHANGED_HINT = "run `pkg plan` again: it reads the function and shows what publishing would change"


def _with_revision(call: Call) -> dict:
    """An update's parameters carrying the RevisionId the step before it left, if any (else the plan's)."""
    if call.revision_id:
        return {**call.params, "RevisionId": call.revision_id}
    return call.params


def _update(aws: AwsSession, operation: str, name: str, params: dict) -> dict:
    """Call an update; if another update of the function is still running (a run killed midway,
    or someone else), wait for it to finish and try once more."""
    lam = aws.client("lambda")
    try:
        try:
            return getattr(lam, operation)(**params)
        except lam.exceptions.ResourceConflictException:
            lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
            return getattr(lam, operation)(**params)
    except lam.exceptions.PreconditionFailedException:
        # The RevisionId pkg read (planning, or from its own step before) is no longer the function's.
        raise PublishError(
            f"{name}: the function was changed by someone else since pkg read it; nothing was overwritten",
            hint=REVISION_CHANGED_HINT,
        ) from None


def create_function(aws: AwsSession, call: Call) -> dict:
    """CreateFunction; its configuration as AWS reports it."""
    params = call.params
    if not params.get("Layers"):
        params = {key: value for key, value in params.items() if key != "Layers"}
    configuration = aws.client("lambda").create_function(**_with_zip(params, "Code", call.code_sha256))
    final = _wait_final(aws, call.action.name, created=True)
    published = {"published": configuration} if params.get("Publish") else {}  # its Version: "1"
    return {"configuration": configuration, "revision_id": final.get("RevisionId"), **published}


def update_function_code(aws: AwsSession, call: Call) -> dict:
    """UpdateFunctionCode, waited for until it has ended; its configuration as AWS reports it."""
    params = {key: value for key, value in _with_revision(call).items() if key != "ZipFile"}
    if "ZipFile" in call.params:
        params["ZipFile"] = _read(call.params["ZipFile"], call.code_sha256)
    configuration = _update(aws, "update_function_code", call.action.name, params)
    final = _wait_final(aws, call.action.name, created=False)
    return {"configuration": configuration, "revision_id": final.get("RevisionId")}


def update_function_configuration(aws: AwsSession, call: Call) -> dict:
    """UpdateFunctionConfiguration, waited for until it has ended; its configuration as AWS reports it."""
    configuration = _update(aws, "update_function_configuration", call.action.name, _with_revision(call))
    final = _wait_final(aws, call.action.name, created=False)
    return {"configuration": configuration, "revision_id": final.get("RevisionId")}


def tag_resource(aws: AwsSession, call: Call) -> dict:
    """Lambda TagResource on the function's ARN."""
    aws.client("lambda").tag_resource(Resource=call.params["Resource"], Tags=call.params["Tags"])
    return {}


def untag_resource(aws: AwsSession, call: Call) -> dict:
    """Lambda UntagResource on the function's ARN."""
    aws.client("lambda").untag_resource(Resource=call.params["Resource"], TagKeys=call.params["TagKeys"])
    return {}


def create_job(aws: AwsSession, call: Call) -> dict:
    """Glue CreateJob (with its tags)."""
    aws.client("glue").create_job(**call.params)
    return {}


def update_job(aws: AwsSession, call: Call) -> dict:
    """Glue UpdateJob: pkg's definition, plus what the live job holds that pkg does not manage.

    UpdateJob replaces the whole definition, so connections, a security configuration, notification
    settings and the like set outside pkg are read from GetJob just before and sent back."""
    glue = aws.client("glue")
    name = call.params["JobName"]
    live_job = glue.get_job(JobName=name)["Job"]
    glue.update_job(JobName=name, JobUpdate=carried_over(live_job, call.params["JobUpdate"]))
    return {}


def glue_tag_resource(aws: AwsSession, call: Call) -> dict:
    """Glue TagResource."""
    aws.client("glue").tag_resource(**call.params)
    return {}


def glue_untag_resource(aws: AwsSession, call: Call) -> dict:
    """Glue UntagResource."""
    aws.client("glue").untag_resource(**call.params)
    return {}


def delete_function(aws: AwsSession, call: Call) -> dict:
    """Lambda DeleteFunction (every version and alias with it); a function already gone is what was wanted."""
    lam = aws.client("lambda")
    try:
        lam.delete_function(FunctionName=call.params["FunctionName"])
    except lam.exceptions.ResourceNotFoundException:
        pass
    return {}


def delete_job(aws: AwsSession, call: Call) -> dict:
    """Glue DeleteJob (AWS answers a job already gone the same way)."""
    aws.client("glue").delete_job(JobName=call.params["JobName"])
    return {}


def delete_layer_version(aws: AwsSession, call: Call) -> dict:
    """Lambda DeleteLayerVersion (AWS answers a version already gone the same way)."""
    aws.client("lambda").delete_layer_version(
        LayerName=call.params["LayerName"], VersionNumber=call.params["VersionNumber"]
    )
    return {}


def delete_object(aws: AwsSession, call: Call) -> dict:
    """S3 DeleteObject of one artifact in the artifact bucket."""
    aws.client("s3").delete_object(Bucket=call.params["Bucket"], Key=call.params["Key"])
    return {}


def publish_version(aws: AwsSession, call: Call) -> dict:
    """PublishVersion of what the function's steps before it left (guarded by CodeSha256), then its alias moved there.

    UpdateAlias, or CreateAlias when the function has none yet (a stage published before aliases).
    After a CreateFunction that published version 1 itself (`Publish`), only the alias is made.
    Lambda returns the newest version instead of a new one when nothing changed since it: a rerun
    after a kill between the two calls publishes nothing twice.
    """
    lam = aws.client("lambda")
    name, alias = call.params["FunctionName"], call.params["Alias"]
    request = {"FunctionName": name}
    if call.params.get("CodeSha256"):
        request["CodeSha256"] = call.params["CodeSha256"]
    created = call.published if call.action.published_by_create else None
    if created is not None and created.get("CodeSha256") == request.get("CodeSha256", created.get("CodeSha256")):
        answer = created  # version 1 holds the very zip: else PublishVersion's CodeSha256 guard refuses it below
    else:
        answer = _update(aws, "publish_version", name, request)
    version = answer["Version"]
    exists = call.params.get("AliasExists")
    try:
        if exists is False:
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        else:
            try:
                lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
            except lam.exceptions.ResourceNotFoundException:
                if exists:
                    raise
                lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    except lam.exceptions.ResourceConflictException:  # created meanwhile (a rerun after a kill): move it
        lam.update_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    digest = version_digest(FunctionState.from_configuration(answer, None))
    return {"alias": AliasState(alias, version, digest).to_details()}


def update_alias(aws: AwsSession, call: Call) -> dict:
    """UpdateAlias back to a version a release ran (`pkg rollback`); the digest comes from that release."""
    params = call.params
    aws.client("lambda").update_alias(
        FunctionName=params["FunctionName"], Name=params["Name"], FunctionVersion=params["FunctionVersion"]
    )
    digest = (call.action.record or {}).get("digest", "")
    return {"alias": AliasState(params["Name"], params["FunctionVersion"], digest).to_details()}


HANDLERS: Mapping[ActionKind, Handler] = {
    ActionKind.PUT_OBJECT: put_object,
    ActionKind.PUBLISH_LAYER_VERSION: publish_layer_version,
    ActionKind.CREATE_FUNCTION: create_function,
    ActionKind.UPDATE_FUNCTION_CODE: update_function_code,
    ActionKind.UPDATE_FUNCTION_CONFIGURATION: update_function_configuration,
    ActionKind.TAG_RESOURCE: tag_resource,
    ActionKind.UNTAG_RESOURCE: untag_resource,
    ActionKind.CREATE_JOB: create_job,
    ActionKind.UPDATE_JOB: update_job,
    ActionKind.GLUE_TAG_RESOURCE: glue_tag_resource,
    ActionKind.GLUE_UNTAG_RESOURCE: glue_untag_resource,
    ActionKind.DELETE_FUNCTION: delete_function,
    ActionKind.DELETE_FAILED_FUNCTION: delete_function,
    ActionKind.DELETE_JOB: delete_job,
    ActionKind.DELETE_LAYER_VERSION: delete_layer_version,
    ActionKind.DELETE_OBJECT: delete_object,
    ActionKind.PUBLISH_VERSION: publish_version,
    ActionKind.UPDATE_ALIAS: update_alias,
}
