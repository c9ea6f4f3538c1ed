"""One function per action kind: the AWS call an action names, with the parameters the executor resolved.

`HANDLERS` is the executor's dispatch table. A handler gets the session and a `Call` (the action,
its resolved parameters, the step before it on the same resource) and returns what AWS answered
that the index records (`packager/deploy/executor.py` turns it into a row through `records`).
Handlers raise botocore's errors as they come; the executor translates them once.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Call:
    """One action to perform: its parameters with this run's values resolved, and the step before it."""

    action: Action
    params: dict
    previous: ActionKind | None = None


Handler = Callable[[AwsSession, Call], dict]


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def _with_zip(params: dict, key: str) -> dict:
    """`params` with the local zip path under params[key]["ZipFile"] replaced by its bytes."""
    content = params.get(key)
    if isinstance(content, dict) and "ZipFile" in content:
        return {**params, key: {**content, "ZipFile": _read(content["ZipFile"])}}
    return params


def put_object(aws: AwsSession, call: Call) -> dict:
    """Upload a built file (streamed), or one wheel inside a built wheelhouse zip, to the artifact bucket."""
    params = call.params
    s3 = aws.client("s3")
    if params.get("member"):
        import zipfile

        with zipfile.ZipFile(params["path"]) as archive:
            s3.put_object(Bucket=params["Bucket"], Key=params["Key"], Body=archive.read(params["member"]))
    else:
        with open(params["path"], "rb") as body:
            s3.put_object(Bucket=params["Bucket"], Key=params["Key"], Body=body)
    return {}


def publish_layer_version(aws: AwsSession, call: Call) -> dict:
    """PublishLayerVersion; the new version's ARN, number and CodeSha256."""
    answer = aws.client("lambda").publish_layer_version(**_with_zip(call.params, "Content"))
    return {
        "arn": answer["LayerVersionArn"],
        "version": answer["Version"],
        "code_sha256": answer.get("Content", {}).get("CodeSha256"),
    }


def _wait_final(aws: AwsSession, name: str, created: bool) -> None:
    """Wait for the change just made to end: State Active after a create, LastUpdateStatus Successful
    after an update. Lambda applies both asynchronously; one that ends Failed raises PublishError with
    AWS's reason, so the step is not recorded and the next publish tries it again."""
    from botocore.exceptions import WaiterError

    waiter = "function_active_v2" if created else "function_updated_v2"
    try:
        aws.client("lambda").get_waiter(waiter).wait(FunctionName=name, WaiterConfig=_WAIT)
    except WaiterError as error:
        configuration = (error.last_response or {}).get("Configuration") or {}
        prefix = "State" if created else "LastUpdateStatus"
        status = configuration.get(prefix)
        reason = configuration.get(f"{prefix}Reason") or configuration.get("StateReason") or str(error)
        code = configuration.get(f"{prefix}ReasonCode")
        step = "creation" if created else "update"
        raise PublishError(
            f"{name}: the function's {step} ended {status or 'unfinished'}: {reason}" + (f" ({code})" if code else ""),
            hint="fix the cause AWS gives, then publish again (the step was not recorded, so it is retried)",
        ) from None


def _update(aws: AwsSession, operation: str, name: str, params: dict) -> dict:
    """Call an update; if another update of the function is still running (a run killed midway,
    or someone else), wait for it to finish and try once more."""
    lam = aws.client("lambda")
    try:
        return getattr(lam, operation)(**params)
    except lam.exceptions.ResourceConflictException:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
        return getattr(lam, operation)(**params)


def create_function(aws: AwsSession, call: Call) -> dict:
    """CreateFunction; its configuration as AWS reports it."""
    params = call.params
    if not params.get("Layers"):
        params = {key: value for key, value in params.items() if key != "Layers"}
    configuration = aws.client("lambda").create_function(**_with_zip(params, "Code"))
    _wait_final(aws, call.action.name, created=True)
    return {"configuration": configuration}


def update_function_code(aws: AwsSession, call: Call) -> dict:
    """UpdateFunctionCode, waited for until it has ended; its configuration as AWS reports it."""
    params = {key: value for key, value in call.params.items() if key != "ZipFile"}
    if "ZipFile" in call.params:
        params["ZipFile"] = _read(call.params["ZipFile"])
    configuration = _update(aws, "update_function_code", call.action.name, params)
    _wait_final(aws, call.action.name, created=False)
    return {"configuration": configuration}


def update_function_configuration(aws: AwsSession, call: Call) -> dict:
    """UpdateFunctionConfiguration, waited for until it has ended; its configuration as AWS reports it."""
    configuration = _update(aws, "update_function_configuration", call.action.name, call.params)
    _wait_final(aws, call.action.name, created=False)
    return {"configuration": configuration}


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


def publish_version(aws: AwsSession, call: Call) -> dict:
    """PublishVersion of what the function's steps before it left (guarded by CodeSha256), then its alias moved there.

    UpdateAlias, or CreateAlias when the function has none yet (a stage published before aliases).
    Lambda returns the newest version instead of a new one when nothing changed since it: a rerun
    after a kill between the two calls publishes nothing twice.
    """
    lam = aws.client("lambda")
    name, alias = call.params["FunctionName"], call.params["Alias"]
    request = {"FunctionName": name}
    if call.params.get("CodeSha256"):
        request["CodeSha256"] = call.params["CodeSha256"]
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
    ActionKind.PUBLISH_VERSION: publish_version,
    ActionKind.UPDATE_ALIAS: update_alias,
}
