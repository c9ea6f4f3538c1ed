"""Publish records are claims, not facts: every row read for a stage is checked against the stage.

A row may have come from the shared cache, which anyone with write access to its prefix can
forge. Before the planner or `pkg run` uses a row, it must point only at this stage's own things:
ARNs in the stage's partition, region and account, named `<project>-<stage>-…`; S3 locations in
the stage's artifact bucket under pkg's key layout (packager/deploy/naming.py); an EMR run
specification with exactly the settings the configuration gives. A row that fails is dropped (the
planner then reads live, as for an unrecorded resource) and `pkg run` refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from cache.index import PublishedRecord
from packager.config import job_settings
from packager.deploy.actions import Target
from packager.deploy.jobs_plan import emr_conf, emr_configured, emr_python
from packager.deploy.naming import S3_PREFIX, resource_name
from packager.deploy.records import EmrRunRow, FunctionRow, GlueJobRow, LayerVersionRow, UploadRow
from packager.deploy.settings import artifact_bucket
from packager.errors import PkgError
from packager.model import JOB_SERVICES, ArtifactId, ArtifactIdError, Role, Service

__all__ = ["StageScope", "check_recorded", "row_problem", "trusted_run_row"]

_NAME = "[A-Za-z0-9_][A-Za-z0-9_.-]*"


@dataclass(frozen=True)
class StageScope:
    """What every row of one stage may point at."""

    target: Target
    project: str
    bucket: str | None
    config: Any  # packager.config.Config: the EMR settings a run specification must repeat

    @classmethod
    def of(cls, config, target: Target) -> StageScope:
        """The scope of `target`'s stage under `config`."""
        return cls(target, config.project, artifact_bucket(config, target.stage), config)

    @property
    def name_prefix(self) -> str:
        return resource_name(self.project, self.target.stage, "")

    def arn_prefix(self, service: str, resource: str) -> str:
        t = self.target
        return f"arn:{t.partition}:{service}:{t.region}:{t.account}:{resource}:{self.name_prefix}"

    def s3_problem(self, uri: object, service: Service) -> str | None:
        """Why `uri` is not an object pkg put in this stage's bucket for `service`, or None."""
        if not isinstance(uri, str):
            return "an S3 location is not a string"
        bucket = re.escape(self.bucket or "")
        layout = re.compile(rf"s3://{bucket}/{S3_PREFIX}/{service.value}/{_NAME}/[0-9a-f]{{64}}/{_NAME}\Z")
        if not self.bucket or not layout.match(uri) or "/../" in uri:
            return f"{uri[:200]!r} is not under s3://{self.bucket}/{S3_PREFIX}/{service.value}/<artifact>/<sha256>/"
        return None


def _layer_problem(row: LayerVersionRow, scope: StageScope) -> str | None:
    if not isinstance(row.layer_name, str) or not row.layer_name.startswith(scope.name_prefix):
        return f"layer name {str(row.layer_name)[:100]!r} is not {scope.name_prefix}…"
    arn = f"{scope.arn_prefix('lambda', 'layer')}{row.layer_name[len(scope.name_prefix) :]}:{row.version}"
    if row.arn != arn or not isinstance(row.version, int):
        return f"layer ARN {str(row.arn)[:200]!r} is not {arn}"
    if row.code_sha256 is not None and not isinstance(row.code_sha256, str):
        return "code_sha256 is not a string"
    return None


def _function_problem(row: FunctionRow, scope: StageScope) -> str | None:
    state = row.state
    if state is None:
        return None
    function_prefix = scope.arn_prefix("lambda", "function")
    if state.arn is not None and (not isinstance(state.arn, str) or not state.arn.startswith(function_prefix)):
        return f"function ARN {str(state.arn)[:200]!r} is not {scope.arn_prefix('lambda', 'function')}…"
    revision = state.revision_id
    if revision is not None and not (isinstance(revision, str) and re.fullmatch(r"[A-Za-z0-9-]{1,64}", revision)):
        return f"revision_id {str(revision)[:100]!r} is not a Lambda RevisionId"
    alias = row.alias
    if alias is not None and not (re.fullmatch(r"[A-Za-z0-9_-]{1,128}", alias.name) and alias.version.isdigit()):
        return f"alias {alias.name[:100]!r} at version {alias.version[:20]!r} is not one Lambda names"
    layer_prefix = scope.arn_prefix("lambda", "layer")
    for layer in state.layers:
        if not isinstance(layer, str) or not re.fullmatch(rf"{re.escape(layer_prefix)}[A-Za-z0-9_-]+:\d+", layer):
            return f"layer ARN {str(layer)[:200]!r} is not {layer_prefix}…"
    return None


def _upload_problem(row: UploadRow, scope: StageScope) -> str | None:
    if row.bucket != scope.bucket:
        return f"bucket {str(row.bucket)[:100]!r} is not the stage's artifact bucket ({scope.bucket})"
    if not isinstance(row.key, str) or not row.key.startswith(f"{S3_PREFIX}/") or ".." in row.key.split("/"):
        return f"key {str(row.key)[:200]!r} is not under {S3_PREFIX}/"
    return None


def _glue_problem(row: GlueJobRow, artifact: ArtifactId, scope: StageScope) -> str | None:
    name = resource_name(scope.project, scope.target.stage, artifact.short_name)
    if row.name != name:
        return f"job name {str(row.name)[:100]!r} is not {name}"
    if row.definition is None:
        return None
    if not isinstance(row.definition, dict) or not isinstance(row.definition.get("Command"), dict):
        return "the job definition is not one pkg records"
    return scope.s3_problem(row.definition["Command"].get("ScriptLocation"), artifact.service)


def _emr_problem(row: EmrRunRow, artifact: ArtifactId, scope: StageScope) -> str | None:
    name = resource_name(scope.project, scope.target.stage, artifact.short_name)
    if row.name != name:
        return f"run name {str(row.name)[:100]!r} is not {name}"
    spec = row.spec
    if not isinstance(spec, dict):
        return "the run specification is not one pkg records"
    settings = job_settings(scope.config, Service.EMR.value, artifact.short_name, scope.target.stage)
    wanted = {"release_label": settings["release_label"], "python": emr_python(settings), **emr_configured(settings)}
    for key, value in wanted.items():
        if spec.get(key) != value:
            return f"{key} {str(spec.get(key))[:100]!r} is not what the configuration sets"
    if (problem := scope.s3_problem(spec.get("entry_point"), Service.EMR)) is not None:
        return f"entry point {problem}"
    py_files = spec.get("py_files")
    if not isinstance(py_files, list):
        return "py_files is not a list"
    for uri in py_files:
        if (problem := scope.s3_problem(uri, Service.EMR)) is not None:
            return f"py file {problem}"
    conf = spec.get("conf")
    if not isinstance(conf, dict):
        return "conf is not a table"
    archive = None
    if "spark.archives" in conf:
        value = conf["spark.archives"]
        archive = value[: -len("#deps")] if isinstance(value, str) and value.endswith("#deps") else None
        if archive is None or (problem := scope.s3_problem(archive, Service.EMR)) is not None:
            return f"spark.archives {str(value)[:200]!r} is not the stage's dependency archive"
    if conf != emr_conf(wanted["python"], archive):
        return "conf is not what pkg sets for this job"
    return None


def row_problem(resource_id: str, details: dict, scope: StageScope) -> str | None:
    """Why the row of `resource_id` does not belong to the stage, or None when it may be used."""
    artifact_id, at, _rest = resource_id.partition("@")
    try:
        artifact = ArtifactId.parse(artifact_id)
    except (ArtifactIdError, ValueError):
        return "not an artifact id pkg makes"
    try:
        if at:
            if "arn" in details:
                return _layer_problem(LayerVersionRow.from_details(details), scope)
            return _upload_problem(UploadRow.from_details(details), scope)
        if artifact.service is Service.LAMBDA and artifact.role is Role.FUNCTION:
            return _function_problem(FunctionRow.from_details(details), scope)
        if artifact.service is Service.EMR and artifact.role is Role.JOB:
            return _emr_problem(EmrRunRow.from_details(details), artifact, scope)
        if artifact.service in JOB_SERVICES and artifact.role is Role.JOB:
            return _glue_problem(GlueJobRow.from_details(details), artifact, scope)
    except (KeyError, TypeError, AttributeError, ValueError):
        return "its details are not what pkg records"
    return None


def check_recorded(
    recorded: dict[str, PublishedRecord], scope: StageScope, warn: Callable[[str], None] | None = None
) -> dict[str, PublishedRecord]:
    """The rows of `recorded` that belong to the stage; each other one is dropped with a warning."""
    kept: dict[str, PublishedRecord] = {}
    for resource_id, row in recorded.items():
        problem = row_problem(resource_id, row.details, scope)
        if problem is None:
            kept[resource_id] = row
        elif warn is not None:
            warn(f"{resource_id}: recorded publish row ignored ({problem}); reading {scope.target.stage} live instead")
    return kept


def trusted_run_row(recorded: dict[str, PublishedRecord], artifact_id: str, scope: StageScope) -> None:
    """Refuse to run a job whose recorded row points outside the stage (a PkgError naming why)."""
    row = recorded.get(artifact_id)
    if row is None:
        return
    problem = row_problem(artifact_id, row.details, scope)
    if problem is not None:
        raise PkgError(
            f"{artifact_id}: its recorded run specification is not this stage's ({problem}); not started",
            hint=f"`pkg publish --stage {scope.target.stage}` records it again from your sources and configuration",
        )
