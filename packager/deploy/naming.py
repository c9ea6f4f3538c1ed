"""Every name pkg gives an AWS resource, the one rule they follow, and the S3 key layout.

Names are `<project>-<stage>-<what>`; keys live under one prefix of the artifact bucket (`pkg/`):
Lambda code too big for a direct upload at `pkg/lambda/<sha256>.zip`, job artifacts at
`pkg/<service>/<artifact>/<sha256>/<file>`. `pkg gc` only ever looks under that prefix.
A stage's lock (packager/deploy/lease.py) is at `pkg-locks/<account>/<region>/<stage>.json`.
"""

from __future__ import annotations

import re

from packager.deploy.actions import Target
from packager.errors import ConfigError, JobPlanError, PlanError
from packager.model import ArtifactId, Role
from packager.runtimes import GLUE_JOB_NAME_LENGTH, LAMBDA_LIMITS

# Letters, digits, '-' and '_': what Lambda function and layer names and Glue job names all take.
NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
S3_PREFIX = "pkg"
GC_PREFIX = f"{S3_PREFIX}/"  # everything pkg uploads, whatever the service
LAMBDA_CODE_PREFIX = f"{S3_PREFIX}/lambda"
# Beside `pkg/`, not under it: `pkg gc` lists `pkg/` and must never see (or delete) a live lock.
LOCK_PREFIX = f"{S3_PREFIX}-locks"
PENDING_SHA256 = "<sha256>"  # in the key of an artifact `pkg plan` has not built yet


def resource_name(project: str, stage: str, what: str) -> str:
    """`<project>-<stage>-<what>`: the name of a function, a Glue job, an EMR run."""
    return f"{project}-{stage}-{what}"


function_name = resource_name
job_name = resource_name

# Every function and Glue job pkg creates carries both: they make a stage's resources findable (and
# deletable) from a fresh clone, and a resource without them is never deleted (layer versions can't be tagged).
TAG_PROJECT = "pkg:project"  # the same keys as packager/config.PKG_TAG_KEYS, which refuses them in `tags`
TAG_STAGE = "pkg:stage"


def stage_tags(project: str, stage: str) -> dict[str, str]:
    """The tags that mark a function or job as pkg's, of `project` and `stage`."""
    return {TAG_PROJECT: project, TAG_STAGE: stage}


def tagged_for(tags: dict | None, project: str, stage: str) -> bool:
    """Whether `tags` mark a resource as this project's and this stage's (both tags, exactly)."""
    found = tags or {}
    return found.get(TAG_PROJECT) == project and found.get(TAG_STAGE) == stage


def _suffix(artifact: ArtifactId) -> str:
    """`internal_libs`, `internal_libs_deps-<platform>-<k>`, `job_deps-<job>`: the id after its service."""
    parts = [artifact.role.value, artifact.name, None if artifact.chunk is None else str(artifact.chunk)]
    return "-".join(part for part in parts if part is not None)


def layer_name(project: str, stage: str, artifact_id: str) -> str:
    """Stable names: internal_libs, internal_libs_deps[-<platform>]-<k>, <function>-deps-<k>.

    A platform's '.' is dropped (`python3.12-arm64` -> `python312-arm64`): Lambda's LayerName
    pattern takes letters, digits, '-' and '_' only. Names without one are unchanged.
    """
    artifact = ArtifactId.parse(artifact_id)
    if artifact.role is Role.FUNCTION_DEPS:
        return resource_name(project, stage, f"{artifact.name}-deps-{artifact.chunk}")
    return resource_name(project, stage, _NOT_IN_NAME.sub("", _suffix(artifact)))


def lambda_code_key(sha256: str) -> str:
    """Where Lambda code too big for a direct upload goes in the artifact bucket."""
    return f"{LAMBDA_CODE_PREFIX}/{sha256}.zip"


def lock_key(target: Target) -> str:
    """The key of the stage's lock object: one per account, region and stage (a bucket may serve several)."""
    return f"{LOCK_PREFIX}/{target.account}/{target.region}/{target.stage}.json"


def job_artifact_key(artifact_id: str, sha256: str, filename: str) -> str:
    """`pkg/<service>/<artifact>/<sha256 of the built file>/<file>`: the file name survives (pip needs a wheel's)."""
    artifact = ArtifactId.parse(artifact_id)
    return f"{S3_PREFIX}/{artifact.service.value}/{_suffix(artifact)}/{sha256}/{filename}"


def check_name_parts(project: str, stage: str) -> None:
    """The project and stage go into every resource name: they must follow its rule."""
    for label, value in (("tool.pkg.project", project), (f"tool.pkg.stages.{stage}", stage)):
        if not NAME.match(value):
            raise ConfigError(
                f"{label}: '{value}' can't be part of a Lambda name",
                hint="use letters, digits, '-' and '_' only",
            )


def check_function_name(name: str, artifact_id: str) -> None:
    """Lambda's limit on a function name's length."""
    limit = LAMBDA_LIMITS.function_name_length
    if len(name) > limit:
        raise PlanError(
            f"{artifact_id}: function name '{name}' is {len(name)} characters; Lambda takes at most {limit}",
            hint="shorten the project, stage or file name (the name is <project>-<stage>-<function>)",
        )


def check_layer_name(name: str, artifact_id: str, target: Target) -> None:
    """A layer name must leave room in its version ARNs (Lambda caps their length)."""
    region = target.region
    prefix = f"arn:{target.partition}:lambda:{region}:{target.account}:layer:"
    # Leave room for a 5-digit version number: the ARN of every future version must fit.
    room = LAMBDA_LIMITS.layer_version_arn_length - len(prefix) - len(":99999")
    limit = min(room, LAMBDA_LIMITS.layer_name_length)
    if len(name) > limit:
        raise PlanError(
            f"{artifact_id}: layer name '{name}' is {len(name)} characters; in {region} it can take"
            f" at most {limit} (Lambda caps a layer version ARN at {LAMBDA_LIMITS.layer_version_arn_length})",
            hint="shorten the project, stage or function name",
        )


def check_job_name(name: str, artifact_id: str) -> None:
    """Glue's rule for a job name: the same characters as Lambda's, and a length limit."""
    if len(name) > GLUE_JOB_NAME_LENGTH or not NAME.match(name):
        raise JobPlanError(
            f"{artifact_id}: Glue job name '{name}' must be 1-{GLUE_JOB_NAME_LENGTH} letters, digits, '-' or '_'",
            hint="shorten the project, stage or file name (the name is <project>-<stage>-<job>)",
        )
