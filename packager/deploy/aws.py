"""A boto3 session for one stage: credentials, region, retries, and AWS errors turned into PkgErrors."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from packager.errors import ConfigError, EndpointError, PkgError, PublishError

# Throttling and transient errors are retried by botocore with client-side rate limiting.
RETRIES = {"mode": "adaptive", "max_attempts": 10}

# boto3 sessions are not thread-safe while they create clients.
_CLIENT_LOCK = threading.Lock()

CREDENTIALS_HINT = (
    "configure credentials the usual way: AWS_PROFILE or --profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,"
    " or an SSO login (aws sso login); AWS_ENDPOINT_URL points at a local endpoint"
)


@dataclass
class AwsSession:
    """A boto3 session bound to one account and region, with clients made on demand."""

    session: Any  # boto3.Session (imported lazily: `pkg --help` must not pay for boto3)
    account: str
    region: str
    max_pool: int = 10
    caller: str = ""  # the caller identity's ARN (GetCallerIdentity): who a release says published

    def client(self, service: str):
        """One client per service, shared by the executor's threads (clients are thread-safe; making them isn't)."""
        key = f"_client_{service}"
        if key not in self.__dict__:
            with _CLIENT_LOCK:
                if key not in self.__dict__:
                    from botocore.config import Config

                    config = Config(retries=RETRIES, max_pool_connections=self.max_pool, read_timeout=300)
                    self.__dict__[key] = self.session.client(service, region_name=self.region, config=config)
        return self.__dict__[key]


def open_session(
    stage_name: str, stage: dict, profile: str | None = None, region: str | None = None, max_pool: int = 10
) -> AwsSession:
    """Open a session for `stage`, ask STS who we are, and check the stage's expected account."""
    import boto3
    import botocore.exceptions

    profile = profile or stage.get("profile")
    try:
        session = boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound:
        hint = "aws configure list-profiles shows the known ones"
        raise PkgError(f"AWS profile '{profile}' not found", hint=hint) from None
    region = region or stage.get("region") or session.region_name
    if not region:
        raise ConfigError(
            f"no region for stage '{stage_name}'",
            hint=f"set tool.pkg.stages.{stage_name}.region, or pass --region",
        )
    aws = AwsSession(session, "", region, max_pool)
    try:
        identity = caller_identity(aws, stage_name)
    except botocore.exceptions.NoCredentialsError:
        raise PkgError("no AWS credentials found", hint=CREDENTIALS_HINT) from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise PkgError(f"AWS did not accept the credentials: {error}", hint=CREDENTIALS_HINT) from None
    aws.account = identity["Account"]
    aws.caller = identity.get("Arn", "")
    expected = stage.get("account")
    if expected and expected != aws.account:
        raise PkgError(
            f"the credentials are for account {aws.account}, but stage '{stage_name}' publishes to {expected}",
            hint=f"switch profile (--profile) or fix tool.pkg.stages.{stage_name}.account",
        )
    return aws


# The first call also says whether the endpoint is there at all: a short connect timeout and one retry,
# so an unreachable endpoint is reported in seconds (with RETRIES it took ~26 s).
FIRST_CALL_CONFIG = {"connect_timeout": 3, "read_timeout": 20, "retries": {"mode": "standard", "total_max_attempts": 2}}


def endpoint_hint(region: str, stage: str = "<stage>") -> str:
    """What to check when the endpoint can't be reached: AWS_ENDPOINT_URL if set, else the region and network."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return f"AWS_ENDPOINT_URL is set to {url}: start that endpoint, or unset AWS_ENDPOINT_URL to use AWS"
    return (
        f"check the region '{region}' (tool.pkg.stages.{stage}.region or --region), the network,"
        " and a proxy (HTTPS_PROXY) if you need one"
    )


def caller_identity(aws: AwsSession, stage: str = "<stage>") -> dict:
    """STS GetCallerIdentity, the session's first call: an endpoint that can't be reached, or that
    answers but is not AWS (an HTML page, garbage), is an EndpointError naming it, not a credentials error."""
    import botocore.exceptions
    from botocore.config import Config
    from botocore.parsers import ResponseParserError

    client = aws.session.client("sts", region_name=aws.region, config=Config(**FIRST_CALL_CONFIG))
    endpoint = client.meta.endpoint_url
    not_aws = f"the endpoint {endpoint} answered, but not as AWS does"
    try:
        identity = client.get_caller_identity()
    except (botocore.exceptions.ConnectionError, botocore.exceptions.ReadTimeoutError) as error:
        raise EndpointError(
            f"cannot reach the AWS endpoint {endpoint} ({type(error).__name__})", hint=endpoint_hint(aws.region, stage)
        ) from None
    except (ResponseParserError, KeyError, ValueError) as error:
        raise EndpointError(f"{not_aws} ({type(error).__name__})", hint=endpoint_hint(aws.region, stage)) from None
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        metadata = error.response.get("ResponseMetadata", {})
        html = metadata.get("HTTPHeaders", {}).get("content-type", "").startswith("text/html")
        if code.isdigit() or code == "Unknown" or html:  # no AWS error in the body: a web server, a proxy page
            status = metadata.get("HTTPStatusCode", code)
            raise EndpointError(f"{not_aws} (HTTP {status})", hint=endpoint_hint(aws.region, stage)) from None
        raise
    if not isinstance(identity.get("Account"), str):
        raise EndpointError(f"{not_aws} (no account in its answer)", hint=endpoint_hint(aws.region, stage))
    return identity


PUBLISH_AGAIN = "run `pkg publish` again: what completed is recorded and is not redone"


def explain_error(error: Exception, operation: str, name: str, retry: str = PUBLISH_AGAIN) -> PkgError:
    """A PublishError for a failed call, with a hint for the usual causes; `retry` says what to do next."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return PkgError("no AWS credentials found", hint=CREDENTIALS_HINT)
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url")
        return EndpointError(f"{operation} {name} failed: cannot reach the AWS endpoint {endpoint}", hint=retry)
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        hint = f"fix the cause and {retry}"
        if "role" in message.lower():
            hint = "check that the role in tool.pkg.lambda.role exists and trusts lambda.amazonaws.com; " + hint
        elif code in ("AccessDeniedException", "AccessDenied"):
            hint = f"the credentials may not call {operation}; " + hint
        elif code in ("TooManyRequestsException", "ThrottlingException", "Throttling"):
            hint = "AWS kept throttling after the retries; " + hint
        return PublishError(f"{operation} {name} failed: {code}: {message}", hint=hint)
    return PublishError(f"{operation} {name} failed: {error}", hint=retry)


@contextmanager
def aws_errors(name: str, retry: str) -> Iterator[None]:
    """The deploy boundary for commands that are not a publish (gc, run): any AWS error becomes a PkgError.

    The failed operation is named from botocore's error; `name` says what it was about.
    """
    import botocore.exceptions

    try:
        yield
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        operation = getattr(error, "operation_name", None) or type(error).__name__
        raise explain_error(error, operation, name, retry) from None


def object_exists(aws: AwsSession, bucket: str, key: str) -> bool:
    """Whether s3://bucket/key exists (HeadObject; a read)."""
    import botocore.exceptions

    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
        return True
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise explain_error(error, "HeadObject", f"s3://{bucket}/{key}") from None
