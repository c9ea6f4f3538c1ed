"""`pkg destroy --stage S`: every function, layer version, Glue job, S3 object and record of one stage, and no other.

A plan first (reads only), printed and confirmed, then the executor deletes (packager/deploy/executor.py,
which marks each row removed once AWS confirmed). What belongs to the stage:

- functions and Glue jobs named `<project>-<stage>-…` AND tagged `pkg:project` / `pkg:stage` with this
  project and stage (found by listing, and from the index's rows); one without the tags is left in place;
- layer versions named `<project>-<stage>-…` whose description pkg wrote for an artifact of this very
  name (layers can't be tagged; `dev` and `dev-eu` share a name prefix, never a layer name);
- S3 objects of the artifact bucket the stage's rows name (uploads, and Lambda code sent through S3),
  but only those no other stage's rows and no other Glue job of the region name: stages may share a
  bucket, and content-addressed keys are shared by stages that publish the same bytes;
- every row of the stage in the index (marked removed, so the shared index forgets them too).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from cache.index import PublishedRecord
from packager.deploy.actions import SKIP, Action, ActionKind, PublishPlan, Target
from packager.deploy.aws import AwsSession
from packager.deploy.live import AwsLiveState
from packager.deploy.naming import (
    GC_PREFIX,
    TAG_PROJECT,
    TAG_STAGE,
    lambda_code_key,
    layer_name,
    resource_name,
    stage_tags,
    tagged_for,
)
from packager.deploy.records import (
    FunctionRow,
    GlueJobRow,
    LayerVersionRow,
    UploadRow,
    is_removed,
    removed_details,
    without_removed,
)
from packager.deploy.removal import GLUE_COMMANDS, GLUE_SERVICES, deletion_protected, services_configured
from packager.deploy.settings import artifact_bucket
from packager.deploy.trust import StageScope, check_recorded
from packager.errors import DeletionProtectedError
from packager.model import ArtifactId, ArtifactIdError, Role, Service

__all__ = ["StageDestroyPlan", "check_destroy_allowed", "plan_destroy"]

DESTROYED = "the stage is destroyed"
_LAYER_DESCRIPTION = re.compile(r"pkg (\S+) input:([0-9a-f]+)\Z")


@dataclass
class StageDestroyPlan:
    """A destroy plan and what executing it needs (the executor records each deletion in `recorded`'s rows)."""

    plan: PublishPlan
    aws: AwsSession
    recorded: dict[str, PublishedRecord]
    protected: bool  # the stage has deletion_protection = true

    @property
    def deletions(self) -> list[Action]:
        return [action for action in self.plan.actions if action.kind.deletes]

    @property
    def has_work(self) -> bool:
        """Whether executing it calls AWS or writes a row."""
        return any(action.kind.deletes or action.record is not None for action in self.plan.actions)


def check_destroy_allowed(config, stage: str, allow_delete: bool) -> None:
    """Refuse to destroy a stage with deletion_protection = true unless `allow_delete`."""
    if deletion_protected(config, stage) and not allow_delete:
        raise DeletionProtectedError(
            f"stage {stage} has deletion_protection = true; nothing was deleted",
            hint=f"pass --allow-delete to destroy it anyway (`pkg destroy --stage {stage} --dry-run` shows what goes)",
        )


def _forget(resource_id: str, name: str, reason: str) -> Action:
    return Action(resource_id.partition("@")[0], SKIP, reason, name, record=removed_details(), resource_id=resource_id)


def _left(artifact_id: str, name: str, why: str) -> Action:
    return Action(artifact_id, SKIP, f"{why}: left in place", name, notice=True)


def _is_other_pkg_stage(tags: dict) -> bool:
    """Tags pkg gave another stage or project (a neighbour sharing the name prefix: not ours, not news)."""
    return TAG_PROJECT in tags or TAG_STAGE in tags


def _unit_id(service: Service, short_name: str) -> str | None:
    role = Role.FUNCTION if service is Service.LAMBDA else Role.JOB
    text = f"{service.value}/{role.value}/{short_name}"
    try:
        ArtifactId.parse(text)
    except (ArtifactIdError, ValueError):
        return None
    return text


class _Planner:
    """Builds one stage's destroy plan; `handled` holds the row ids some action already covers."""

    def __init__(self, config, target: Target, recorded: dict[str, PublishedRecord], reads: AwsLiveState):
        self.config = config
        self.target = target
        self.recorded = recorded
        self.reads = reads
        self.project = config.project
        self.prefix = resource_name(self.project, target.stage, "")
        self.actions: list[Action] = []
        self.handled: set[str] = set()
        # Only the services the repository uses (or the index recorded) are listed: no permission needed for others.
        recorded_services = {ArtifactId.parse(key.partition("@")[0]).service for key in recorded}
        self.services = services_configured(config, target.stage) | recorded_services

    def add(self, action: Action, resource_id: str = "") -> None:
        self.actions.append(action)
        self.handled.add(resource_id or action.resource_id)

    def _owned(self, tags: dict | None) -> bool:
        return tagged_for(tags, self.project, self.target.stage)

    def _recorded_units(self, service_check) -> dict[str, ArtifactId]:
        found = {}
        for key in self.recorded:
            if "@" in key:
                continue
            try:
                artifact = ArtifactId.parse(key)
            except (ArtifactIdError, ValueError):
                continue
            if service_check(artifact):
                found[key] = artifact
        return found

    def functions(self) -> set[str]:
        """delete_function for every function of the stage; returns the names being deleted."""
        candidates: dict[str, tuple[str, str | None, bool]] = {}  # name -> (artifact id, ARN, listed)
        live = self.reads.stage_functions(self.prefix) if Service.LAMBDA in self.services else {}
        for name, live_arn in live.items():
            artifact_id = _unit_id(Service.LAMBDA, name[len(self.prefix) :])
            if artifact_id:
                candidates[name] = (artifact_id, live_arn, True)
        units = self._recorded_units(lambda a: a.service is Service.LAMBDA and a.role is Role.FUNCTION)
        for key, artifact in units.items():
            name = resource_name(self.project, self.target.stage, artifact.short_name)
            state = FunctionRow.from_details(self.recorded[key].details).state
            candidates.setdefault(name, (key, state.arn if state else None, False))
        deleted = set()
        for name, (artifact_id, arn, listed) in sorted(candidates.items()):
            tags = self.reads.function_tags(arn) if arn else None
            if tags is None:
                if artifact_id in self.recorded:
                    self.add(_forget(artifact_id, name, "already gone: its record is dropped"))
            elif self._owned(tags):
                params = {"FunctionName": name}
                kind = ActionKind.DELETE_FUNCTION
                self.add(Action(artifact_id, kind, DESTROYED, name, params, resource_id=artifact_id))
                deleted.add(name)
            elif not (listed and _is_other_pkg_stage(tags)):
                untagged = f"not tagged {_tag_text(self.project, self.target.stage)}"
                self.add(_left(artifact_id, name, untagged), artifact_id)
        return deleted

    def jobs(self) -> set[str]:
        """delete_job for every Glue job of the stage; returns the names being deleted."""
        t = self.target
        deleted = set()
        tagged = self.reads.tagged_glue_jobs(stage_tags(self.project, t.stage)) if self.services & GLUE_SERVICES else []
        for name in sorted(tagged):
            if not name.startswith(self.prefix):
                continue
            job = self.reads.glue_job(name)
            service = GLUE_COMMANDS.get(((job or {}).get("Command") or {}).get("Name", ""))
            artifact_id = _unit_id(service, name[len(self.prefix) :]) if service else None
            params = {"JobName": name}
            kind = ActionKind.DELETE_JOB
            self.add(Action(artifact_id or name, kind, DESTROYED, name, params, resource_id=artifact_id or ""))
            deleted.add(name)
        units = self._recorded_units(lambda a: a.service.is_glue and a.role is Role.JOB)
        for key, artifact in sorted(units.items()):
            name = resource_name(self.project, t.stage, artifact.short_name)
            if name in deleted or key in self.handled:
                continue
            gone = GlueJobRow.from_details(self.recorded[key].details).definition is None
            if gone or self.reads.glue_job(name) is None:
                self.add(_forget(key, name, "already gone: its record is dropped"))
            else:
                self.add(_left(key, name, f"not tagged {_tag_text(self.project, t.stage)}"), key)
        return deleted

    def layers(self) -> None:
        """delete_layer_version for every version pkg published to one of the stage's layer names."""
        by_arn = {
            LayerVersionRow.from_details(row.details).arn: key
            for key, row in self.recorded.items()
            if "@" in key and "arn" in row.details
        }
        layers = self.reads.stage_layers(self.prefix) if Service.LAMBDA in self.services else []
        for name in sorted(layers):
            for version in sorted(self.reads.layer_versions(name), key=lambda v: v["version"]):
                arn = version["arn"]
                match = _LAYER_DESCRIPTION.match(version.get("description") or "")
                artifact_id = match.group(1) if match else None
                if artifact_id is None or self._layer_name(artifact_id) != name:
                    if not (version.get("description") or "").startswith("pkg "):  # another stage's: not news
                        self.add(_left(name, arn, "not published by pkg for this stage"), arn)
                    continue
                resource_id = by_arn.get(arn, "")
                params = {"LayerName": name, "VersionNumber": version["version"]}
                kind = ActionKind.DELETE_LAYER_VERSION
                self.add(Action(artifact_id, kind, DESTROYED, arn, params, resource_id=resource_id))

    def _layer_name(self, artifact_id: str) -> str | None:
        try:
            return layer_name(self.project, self.target.stage, artifact_id)
        except (ArtifactIdError, ValueError):
            return None

    def objects(self, index, doomed_jobs: set[str]) -> None:
        """delete_object for the stage's S3 objects that nothing else names; their rows dropped either way."""
        bucket = artifact_bucket(self.config, self.target.stage)
        if not bucket:
            return
        ours: dict[str, str] = {}  # key -> the row recording its upload ("" for Lambda code sent through S3)
        for key, row in self.recorded.items():
            if "@" in key and "bucket" in row.details:
                upload = UploadRow.from_details(row.details)
                if upload.bucket == bucket:
                    ours[upload.key] = key
            for code_key in _lambda_code_keys(row.details):
                ours.setdefault(code_key, "")
        if not ours:
            return
        elsewhere = _keys_used_elsewhere(index, self.target, bucket)
        for job in self.reads.glue_jobs() if self.services & GLUE_SERVICES else []:
            if job.get("Name") not in doomed_jobs:
                elsewhere |= _keys_named(bucket, [job.get("Command"), job.get("DefaultArguments")])
        existing = self.reads.object_keys(bucket, GC_PREFIX)
        for key in sorted(ours):
            resource_id, uri = ours[key], f"s3://{bucket}/{key}"
            if key not in existing or key in elsewhere:
                if resource_id:
                    why = "already gone" if key not in existing else "also used by another stage or job: kept"
                    self.add(_forget(resource_id, uri, f"{why}; its record is dropped"))
                continue
            params = {"Bucket": bucket, "Key": key}
            artifact_id = resource_id.partition("@")[0] or uri
            self.add(Action(artifact_id, ActionKind.DELETE_OBJECT, DESTROYED, uri, params, resource_id=resource_id))

    def the_rest(self) -> None:
        """Every row no action covers (EMR run specifications, what is already gone): dropped."""
        for key in sorted(self.recorded):
            if key not in self.handled:
                self.add(_forget(key, key, "record of the destroyed stage"))


def _tag_text(project: str, stage: str) -> str:
    return ", ".join(f"{key}={value}" for key, value in stage_tags(project, stage).items())


def _lambda_code_keys(details: dict) -> list[str]:
    """The S3 key Lambda code (or a layer) of this CodeSha256 goes to when too big for a direct upload."""
    sha = details.get("code_sha256")
    if not isinstance(sha, str):
        return []
    try:
        return [lambda_code_key(base64.b64decode(sha, validate=True).hex())]
    except (binascii.Error, ValueError):
        return []


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _keys_named(bucket: str, values: list) -> set[str]:
    """The keys of `bucket` named anywhere in `values` (URIs sit inside comma lists and Spark conf too)."""
    uri = re.compile(rf"s3://{re.escape(bucket)}/([^\s,#'\"=]+)")
    return {match for text in _strings(values) for match in uri.findall(text)}


def _keys_used_elsewhere(index, target: Target, bucket: str) -> set[str]:
    """Keys of `bucket` that a row of another stage (any account or region) records or names."""
    keys: set[str] = set()
    for row in index.all_published():
        if (row["account"], row["region"], row["stage"]) == (target.account, target.region, target.stage):
            continue
        try:
            details = json.loads(row["details"])
        except (TypeError, ValueError):
            continue
        if not isinstance(details, dict) or is_removed(details):
            continue
        if details.get("bucket") == bucket and isinstance(details.get("key"), str):
            keys.add(details["key"])
        keys |= _keys_named(bucket, [details])
        keys.update(_lambda_code_keys(details))
    return keys


def plan_destroy(ws, stage: str, aws: AwsSession, jobs: int = 8, warn=None) -> StageDestroyPlan:
    """What `pkg destroy --stage` deletes and keeps, and why; makes read calls only."""
    config = ws.config
    target = Target(aws.account, aws.region, stage)
    rows = without_removed(ws.store.index.published(target.account, target.region, stage))
    recorded = check_recorded(rows, StageScope.of(config, target), warn)
    planner = _Planner(config, target, recorded, AwsLiveState(aws, jobs))
    planner.functions()
    doomed_jobs = planner.jobs()
    planner.layers()
    planner.objects(ws.store.index, doomed_jobs)
    planner.the_rest()
    return StageDestroyPlan(PublishPlan(target, planner.actions), aws, recorded, deletion_protected(config, stage))
