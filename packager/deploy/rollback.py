"""pkg rollback: a stage back to what one of its releases ran, with no checkout and no build.

Content addressing makes it a move of pointers. Each function's alias goes back to the version the
release recorded (a published version keeps its code, configuration and layers); each Glue job's
script and library arguments go back to the release's S3 keys (UpdateJob, carrying over what pkg
does not manage, as a publish does); each EMR run specification likewise (recorded, no call).
Everything the release needs is checked first (the version exists and still holds the recorded
CodeSha256, every S3 object is there): a rollback to something `pkg gc` removed is refused before
any change. The steps are actions run by the publish executor, so they are recorded in the index
the same way, and the rollback is itself a release.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

from cache.index import PublishedRecord
from packager.deploy.actions import SKIP, Action, ActionKind, Outcome, PublishPlan
from packager.deploy.aws import AwsSession, aws_errors, object_exists
from packager.deploy.jobs_plan import ADDITIONAL_MODULES, EXTRA_PY_FILES
from packager.deploy.records import (
    AliasState,
    EmrRunRow,
    FunctionRow,
    FunctionState,
    GlueJobRow,
    version_digest,
    with_pending,
)
from packager.deploy.releases import FunctionRelease, JobRelease, Release, emr_archive
from packager.deploy.trust import StageScope
from packager.errors import PkgError
from packager.model import ArtifactId, Service

ROLLBACK_AGAIN = "run `pkg rollback` again: what completed is recorded"


class RollbackError(PkgError):
    """A release can't be restored: something it ran is gone (`pkg gc`), or a name is not part of it."""


@dataclass(frozen=True)
class VersionCheck:
    """What AWS holds of one function version a release needs: its digest, or why it can't be used."""

    digest: str | None
    problem: str | None


def picked_ids(release: Release, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The artifact ids of `release` that NAMES pick (all when none): functions, then jobs.

    A name is an artifact id (`lambda/function/ingest`), `<service>/<name>` or a bare name.
    """
    every = [*release.functions, *release.jobs]
    if not names:
        return list(release.functions), list(release.jobs)
    picked: list[str] = []
    for name in names:
        matches = [
            artifact_id
            for artifact_id in every
            if name in (artifact_id, ArtifactId.parse(artifact_id).short_name, _service_name(artifact_id))
        ]
        if not matches:
            raise RollbackError(
                f"{name}: not a function or job of release {release.id}",
                hint=f"`pkg history --stage {release.target.stage} --json` lists what each release ran",
            )
        picked += [match for match in matches if match not in picked]
    return [i for i in picked if i in release.functions], [i for i in picked if i in release.jobs]


def _service_name(artifact_id: str) -> str:
    artifact = ArtifactId.parse(artifact_id)
    return f"{artifact.service.value}/{artifact.short_name}"


def _check_version(aws: AwsSession, function: FunctionRelease) -> VersionCheck:
    """GetFunctionConfiguration of the version: it must exist and hold the recorded code."""
    client = aws.client("lambda")
    try:
        answer = client.get_function_configuration(FunctionName=function.name, Qualifier=function.version)
    except client.exceptions.ResourceNotFoundException:
        return VersionCheck(None, f"version {function.version} of {function.name} is gone")
    if answer.get("CodeSha256") != function.code_sha256:
        return VersionCheck(None, f"version {function.version} of {function.name} does not hold the recorded code")
    return VersionCheck(version_digest(FunctionState.from_configuration(answer, None)), None)


def _check_job(aws: AwsSession, bucket: str, job: JobRelease) -> str | None:
    """Every S3 object the job ran must still be in the bucket (a gc may have deleted it)."""
    prefix = f"s3://{bucket}/"
    missing = [uri for uri in job.keys if not object_exists(aws, bucket, uri[len(prefix) :])]
    return f"{job.name}: {', '.join(missing)} is gone" if missing else None


def _pointed(value: str | None, ours: tuple[str, ...], scope: StageScope, service: Service) -> str | None:
    """A comma list argument with the stage's own S3 URIs replaced by `ours` (a user's entries kept after)."""
    theirs = [part for part in (value or "").split(",") if part and scope.s3_problem(part, service) is not None]
    merged = ",".join([*ours, *theirs])
    return merged or None


def glue_definition_at(definition: dict, job: JobRelease, scope: StageScope, service: Service) -> dict:
    """A recorded Glue definition pointed at the release's script, internal_libs and wheels."""
    arguments = dict(definition.get("DefaultArguments") or {})
    for key, ours in ((EXTRA_PY_FILES, job.libs), (ADDITIONAL_MODULES, job.deps)):
        value = _pointed(arguments.get(key), ours, scope, service)
        if value is None:
            arguments.pop(key, None)
        else:
            arguments[key] = value
    command = {**definition["Command"], "ScriptLocation": job.script}
    return {**definition, "Command": command, "DefaultArguments": dict(sorted(arguments.items()))}


def emr_spec_at(spec: dict, job: JobRelease) -> dict:
    """A recorded EMR run specification pointed at the release's entry point, --py-files and archive."""
    conf = dict(spec.get("conf") or {})
    if job.deps:
        conf["spark.archives"] = f"{job.deps[0]}#deps"
    elif emr_archive(spec) is not None:
        conf.pop("spark.archives", None)
    return {**spec, "entry_point": job.script, "py_files": list(job.libs), "conf": dict(sorted(conf.items()))}


def plan_rollback(
    aws: AwsSession,
    scope: StageScope,
    recorded: dict[str, PublishedRecord],
    release: Release,
    names: Sequence[str] = (),
    jobs: int = 8,
) -> PublishPlan:
    """The actions that bring the stage back to `release` (all of it, or NAMES); reads only.

    Raises RollbackError, before any change, when something the release needs is gone.
    """
    function_ids, job_ids = picked_ids(release, names)
    bucket = scope.bucket or ""
    with aws_errors(f"stage '{scope.target.stage}'", ROLLBACK_AGAIN), ThreadPoolExecutor(max(1, jobs)) as pool:
        versions = dict(
            zip(function_ids, pool.map(lambda i: _check_version(aws, release.functions[i]), function_ids), strict=True)
        )
        objects = dict(zip(job_ids, pool.map(lambda i: _check_job(aws, bucket, release.jobs[i]), job_ids), strict=True))
    problems = [check.problem for check in versions.values() if check.problem]
    problems += [problem for problem in objects.values() if problem]
    actions: list[Action] = []
    for artifact_id in job_ids:
        stored = recorded.get(artifact_id)
        unknown = stored is None or (
            ArtifactId.parse(artifact_id).service is not Service.EMR
            and GlueJobRow.from_details(stored.details).definition is None
        )
        if stored is None or unknown:
            problems.append(f"{release.jobs[artifact_id].name}: not recorded as published here (`pkg cache pull`?)")
            continue
        actions.append(_job_action(artifact_id, stored, release, scope))
    if problems:
        raise RollbackError(
            f"release {release.id} can't be restored: " + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""),
            hint="`pkg gc` deletes what no release in its window uses: roll back to a newer release"
            " (`pkg history`), or publish that commit again",
        )
    for artifact_id in function_ids:
        function = release.functions[artifact_id]
        digest = versions[artifact_id].digest or function.digest
        stored = recorded.get(artifact_id)
        row = FunctionRow.from_details(stored.details) if stored is not None else None
        current = row.alias if row is not None else None
        if current is not None and current.name == function.alias and current.version == function.version:
            actions.append(Action(artifact_id, SKIP, f"alias {function.alias} is at version {function.version}",
                                  function.name))  # fmt: skip
            continue
        before = f"version {current.version}" if current is not None else "its version"
        params = {"FunctionName": function.name, "Name": function.alias, "FunctionVersion": function.version}
        actions.append(
            Action(
                artifact_id,
                ActionKind.UPDATE_ALIAS,
                f"alias {function.alias}: {before} -> version {function.version} (release {release.id})",
                function.name,
                params,
                record={"digest": digest},
                # Recorded all at once by `record_aliases`, not one transaction per function.
            )
        )
    return PublishPlan(scope.target, actions)


def _alias_rows(
    recorded: dict[str, PublishedRecord], actions: list[Action], pending: bool
) -> list[tuple[str, str, dict]]:
    """The index rows of the functions whose alias these actions move: flagged pending, or moved and not."""
    rows = []
    for action in actions:
        stored = recorded.get(action.id)
        if action.kind is not ActionKind.UPDATE_ALIAS or stored is None:
            continue  # an unrecorded function keeps no row: the next publish reads it live
        row = FunctionRow.from_details(stored.details)
        if row.state is None:
            continue
        if not pending:
            params = action.params
            digest = (action.record or {}).get("digest", "")
            row = replace(row, alias=AliasState(params["Name"], params["FunctionVersion"], digest))
        rows.append((action.id, stored.input_hash, with_pending(row.to_details(), pending)))
    return rows


def flag_aliases(index, plan: PublishPlan, recorded: dict[str, PublishedRecord]) -> None:
    """Before any alias moves, flag the rows of those functions (one transaction): after a kill, the next
    plan reads them live (their alias may be ahead of the row) instead of trusting the row."""
    rows = _alias_rows(recorded, plan.actions, pending=True)
    if rows:
        t = plan.target
        index.record_published_many(t.account, t.region, t.stage, rows)


def record_aliases(index, plan: PublishPlan, recorded: dict[str, PublishedRecord], outcomes: list[Outcome]) -> None:
    """Record every alias AWS moved, in one transaction (one per function cost a hundred commits)."""
    moved = [outcome.action for outcome in outcomes if outcome.status == "done"]
    rows = _alias_rows(recorded, moved, pending=False)
    if rows:
        t = plan.target
        index.record_published_many(t.account, t.region, t.stage, rows)


def _job_action(artifact_id: str, stored: PublishedRecord, release: Release, scope: StageScope) -> Action:
    job = release.jobs[artifact_id]
    service = ArtifactId.parse(artifact_id).service
    because = f"(release {release.id})"
    if service is Service.EMR:
        row = EmrRunRow.from_details(stored.details)
        spec = emr_spec_at(row.spec, job)
        if spec == row.spec:
            return Action(artifact_id, SKIP, f"run specification is at release {release.id}'s keys", job.name)
        return Action(
            artifact_id, SKIP, f"run specification -> {job.script} {because} (recorded; `pkg run` starts it)",
            job.name, record=EmrRunRow(row.name, spec).to_details(), resource_id=artifact_id,
        )  # fmt: skip
    glue = GlueJobRow.from_details(stored.details)
    definition = glue_definition_at(glue.definition or {}, job, scope, service)
    if definition == glue.definition:
        return Action(artifact_id, SKIP, f"job is at release {release.id}'s keys", job.name)
    return Action(
        artifact_id, ActionKind.UPDATE_JOB, f"script and libraries -> {job.script} {because}", job.name,
        {"JobName": job.name, "JobUpdate": definition}, resource_id=artifact_id,
    )  # fmt: skip
