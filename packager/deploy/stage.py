"""One stage, end to end: open AWS, turn the build's artifacts into a plan, execute it.

The library behind `pkg plan --stage` and `pkg publish` (the CLI only parses and prints).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable

from cache.index import PublishedRecord
from packager.deploy.actions import ActionKind, Drift, Outcome, PublishPlan, ServicePlan, StageInputs, Target
from packager.deploy.aws import AwsSession, open_session
from packager.deploy.executor import OnDone, execute
from packager.deploy.jobs_plan import plan_job_services
from packager.deploy.lease import LOCK_TIMEOUT_SECONDS, stage_lease
from packager.deploy.lambda_plan import plan_lambda
from packager.deploy.live import AwsLiveState
from packager.deploy.naming import check_name_parts, lock_key
from packager.deploy.records import FunctionRow, FunctionState, GlueJobRow, missing_details, without_removed
from packager.deploy.removal import plan_removals
from packager.deploy.settings import artifact_bucket
from packager.deploy.trust import StageScope, check_recorded
from packager.errors import ConfigError
from packager.model import ArtifactId, Service

__all__ = [
    "Outcome",
    "StagePlan",
    "open_stage_session",
    "plan_stage",
    "publish_stage",
    "stage_lease_lock",
    "stage_lock",
]


def open_stage_session(ws, stage: str, profile: str | None = None, region: str | None = None, jobs: int = 8):
    """The AWS session of `stage` (credentials and account checked); fails fast on an unknown stage."""
    settings = ws.config.stage(stage)
    check_name_parts(ws.config.project, stage)  # a missing project name is found before any AWS call
    return open_session(stage, settings, profile, region, max_pool=jobs + 2)


# Each service's planner, in publish order (Lambda's layers first: what runs with them comes after).
# A new service adds its planner here (with its handlers in packager/deploy/handlers.py).
ServicePlanner = Callable[[StageInputs], ServicePlan]
SERVICE_PLANNERS: tuple[ServicePlanner, ...] = (plan_lambda, plan_job_services)


@dataclass
class StagePlan:
    """A publish plan and what executing it needs."""

    plan: PublishPlan
    aws: AwsSession
    recorded: dict[str, PublishedRecord]
    expected_sha: dict[str, str | None]


def plan_stage(
    ws,
    stage: str,
    planned: list,
    refresh: bool = False,
    profile: str | None = None,
    region: str | None = None,
    jobs: int = 8,
    aws: AwsSession | None = None,
    warn: Callable[[str], None] | None = None,
    prune: bool = False,
    allow_delete: bool = False,
) -> StagePlan:
    """Plan the publish of `planned` (the build plan's artifacts) to `stage`; only read calls are made.

    With `refresh`, what a live function looks like is compared with the index; drift found is
    written to the index (the index then tells the truth), so a later `pkg publish` repairs it.
    A recorded row pointing outside the stage (packager/deploy/trust.py) is dropped with a warning
    (to `warn`, else the shared cache session's): the planner reads that resource live.
    With `prune` (`planned` is the whole tree), what `src/` no longer has is deleted
    (packager/deploy/removal.py; refused on a protected stage unless `allow_delete`).
    """
    config = ws.config
    aws = aws or open_stage_session(ws, stage, profile, region, jobs)
    target = Target(aws.account, aws.region, stage)
    index = ws.store.index
    shared = getattr(ws, "shared", None)
    warn = warn or (shared.warn if shared is not None else None)
    rows = without_removed(index.published(target.account, target.region, stage))
    recorded = check_recorded(rows, StageScope.of(config, target), warn)
    bucket = artifact_bucket(config, stage)
    reasons = {item.spec.id: item.reason for item in planned if item.to_build}
    live = AwsLiveState(aws, jobs)
    inputs = StageInputs(config, target, planned, ws.store, recorded, live, refresh, bucket, reasons)
    plan = PublishPlan(target, [])
    expected: dict[str, str | None] = {}
    for planner in SERVICE_PLANNERS:
        part = planner(inputs)
        plan.actions += part.actions
        plan.drift += part.drift
        expected.update(part.expected_sha)
    if prune:
        plan.actions += plan_removals(inputs, live, allow_delete).actions
    if bucket and any(action.kind is ActionKind.PUT_OBJECT for action in plan.actions):
        _check_bucket(live, bucket, target)
    if plan.drift:
        _record_drift(index, target, recorded, plan, live)
    return StagePlan(plan, aws, recorded, expected)


def _check_bucket(live: AwsLiveState, bucket: str, target: Target) -> None:
    """Refuse, before any upload, a plan whose artifact bucket does not exist (not halfway through a publish)."""
    if not live.bucket_exists(bucket):
        raise ConfigError(
            f"the artifact bucket s3://{bucket} does not exist (stage '{target.stage}', account {target.account})",
            hint=f"create it in {target.region} (aws s3 mb s3://{bucket}), or set tool.pkg.artifact_bucket"
            f" (or tool.pkg.stages.{target.stage}.artifact_bucket) to one that does",
        )


def _drifted(artifact_id: str, details: dict, drift: Drift) -> dict:
    """A row's details with what `--refresh` saw live written in."""
    if drift.field == "function":
        return missing_details()
    if ArtifactId.parse(artifact_id).service is Service.LAMBDA:
        return FunctionRow.from_details(details).with_state(**{drift.field: drift.live}).to_details()
    row = GlueJobRow.from_details(details)
    if drift.field == "tags":
        return replace(row, tags=drift.live if isinstance(drift.live, dict) else None).to_details()
    return replace(row, definition=drift.live if isinstance(drift.live, dict) else None).to_details()


def _with_live_revision(details: dict, state: FunctionState | None) -> dict:
    """A drifted function's row with the RevisionId read with it: the row now tells what is live, and a
    publish repairing it is refused if the function changes again before."""
    if state is None or state.revision_id is None:
        return details
    return FunctionRow.from_details(details).with_state(revision_id=state.revision_id).to_details()


def _record_drift(
    index, target: Target, recorded: dict[str, PublishedRecord], plan: PublishPlan, live: AwsLiveState | None = None
) -> None:
    """Write what was seen live into the rows of drifted functions and jobs."""
    by_id: dict[str, dict] = {}
    for drift in plan.drift:
        row = recorded.get(drift.id)
        if row is None:
            continue
        by_id[drift.id] = _drifted(drift.id, by_id.get(drift.id, row.details), drift)
        if live is not None and drift.field != "function" and ArtifactId.parse(drift.id).service is Service.LAMBDA:
            by_id[drift.id] = _with_live_revision(by_id[drift.id], live.function(drift.name))
    for artifact_id, details in by_id.items():
        row = recorded[artifact_id]
        index.record_published(target.account, target.region, target.stage, artifact_id, row.input_hash, details)


@contextmanager
def stage_lock(ws, stage: str):
    """One run of a stage at a time from one cache folder: an flock, released by the kernel if the process dies.

    A second publish waits, then plans from what the first recorded. Across machines,
    `stage_lease_lock` is taken inside it: runs on one machine queue here for free, and only one of
    them polls S3.
    """
    import fcntl

    folder = os.path.join(ws.store.cache_dir, "locks")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"publish-{stage}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def stage_lease_lock(
    ws,
    stage: str,
    aws: AwsSession,
    command: str,
    timeout: float | None = None,
    note: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
):
    """One run that changes a stage at a time across machines: a lease object in its artifact bucket.

    A second run waits (a progress line to `note`) up to `timeout` seconds, then fails with
    StageLockedError (packager/deploy/lease.py). Without an artifact bucket the stage is locked by
    `stage_lock` on this machine only, with a warning. Without a lock, two runs would both see a
    layer input as unpublished and publish it twice.
    """
    note = note or (lambda message: None)
    bucket = artifact_bucket(ws.config, stage)
    if not bucket:
        unlocked = f"stage {stage} has no artifact bucket: it is locked on this machine only, not across machines"
        (warn or note)(unlocked)
        yield
        return
    key = lock_key(Target(aws.account, aws.region, stage))
    with stage_lease(aws, bucket, key, stage, command, LOCK_TIMEOUT_SECONDS if timeout is None else timeout, note):
        yield


def publish_stage(ws, staged: StagePlan, jobs: int = 8, on_done: OnDone | None = None) -> list[Outcome]:
    """Execute a stage plan; each confirmed step is recorded before the next one starts."""
    return execute(staged.plan, staged.aws, ws.store.index, staged.recorded, staged.expected_sha, jobs, on_done)
