"""Glue and EMR jobs: desired state from the build's artifacts, and the actions that bring AWS there.

The same model as packager/deploy/lambda_plan.py (chalice): plain resources (`S3Upload`,
`GlueJobResource`, `EmrRunSpec`), a planner that compares them with the index rows of this
account/region/stage and, where asked or where nothing is recorded, with the read-only `LiveState`
(packager/deploy/live.py); it returns `Action`s named after AWS operations and never calls a
mutating API nor imports boto3.

Every artifact goes to S3 under a key holding its content's hash (`pkg/<service>/<artifact>/<sha256>/<file>`,
packager/deploy/naming.py): nothing is overwritten in place, and rolling back is pointing a job at an older key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from cache.index import PublishedRecord
from packager.config import Config, job_settings
from packager.deploy.actions import SKIP, Action, ActionKind, Drift, ServicePlan, StageInputs, Target
from packager.deploy.diff import TagDiff, describe_change
from packager.deploy.limits import check_glue_arguments
from packager.deploy.live import LiveState
from packager.deploy.naming import PENDING_SHA256, check_job_name, job_artifact_key, job_name, stage_tags
from packager.deploy.records import EmrRunRow, GlueJobRow, UploadRow
from packager.deploy.settings import require_bucket, require_role
from packager.model import JOB_SERVICES, SCRIPT_KINDS, ArtifactId, Kind, Role, Service
from packager.runtimes import emr_runtime

# Glue's own argument names that pkg fills from the build (a user's values are appended to ours).
EXTRA_PY_FILES = "--extra-py-files"
ADDITIONAL_MODULES = "--additional-python-modules"


# -- resources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Upload:
    """One object to put in the artifact bucket: a built file, or one wheel inside a built wheelhouse."""

    artifact_id: str
    bucket: str
    key: str
    path: str | None  # the local file; None until built
    member: str | None = None  # the wheel's name inside a wheelhouse zip
    sha256: str | None = None  # of the local file (hex): checked before its bytes are sent
    input_hash: str = ""  # of the built file: recorded, so a promote finds the file by it in any cache

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def resource_id(self) -> str:
        """Uploads are immutable facts: one index row per content-addressed key."""
        return f"{self.artifact_id}@{self.key}"


@dataclass
class JobArtifacts:
    """What one job needs in S3: its script, its internal_libs, its dependencies."""

    script: S3Upload
    libs: S3Upload | None = None
    deps: list[S3Upload] = field(default_factory=list)  # wheels (Glue) or one archive (EMR)
    deps_pending: str | None = None  # a dependency artifact not built yet: its wheels are unknown

    @property
    def uploads(self) -> list[S3Upload]:
        return [self.script, *([self.libs] if self.libs else []), *self.deps]


@dataclass(frozen=True)
class GlueJobResource:
    """One Glue job as it should be: CreateJob's parameters minus Name and Tags."""

    artifact_id: str
    name: str
    definition: dict
    tags: dict


@dataclass(frozen=True)
class EmrRunSpec:
    """How to run one EMR job (EMR has no job resource: this is recorded, and `pkg run` uses it)."""

    artifact_id: str
    name: str
    spec: dict


# -- desired state ---------------------------------------------------------------------------------


def wheelhouse_members(path: str) -> list[str]:
    """The wheel names inside a built wheelhouse zip."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return sorted(name for name in archive.namelist() if name.endswith(".whl"))


def _uploads_of(item, bucket: str, store) -> tuple[list[S3Upload], str | None]:
    """The S3 objects of one built artifact (a wheelhouse gives one per wheel)."""
    spec, record = item.spec, item.record
    # Keyed by the bytes, not the inputs: a rebuild that resolves unpinned requirements anew gets a new key.
    sha256 = record.sha256 if record else PENDING_SHA256
    path = store.abspath(record.path) if record else None
    built = record.input_hash if record else ""
    if spec.kind == Kind.WHEELHOUSE:
        if path is None:  # not built yet (`pkg plan`): the wheels are known once it is
            return [S3Upload(spec.id, bucket, job_artifact_key(spec.id, sha256, "*.whl"), None)], spec.id
        return [
            S3Upload(spec.id, bucket, job_artifact_key(spec.id, sha256, wheel), path, wheel, sha256, built)
            for wheel in wheelhouse_members(path)
        ], None
    artifact = ArtifactId.parse(spec.id)
    filename = spec.meta.get("filename", artifact.name or artifact.role.value)
    return [S3Upload(spec.id, bucket, job_artifact_key(spec.id, sha256, filename), path, None, sha256, built)], None


def job_artifacts_of(planned: list, bucket: str, store) -> dict[str, JobArtifacts]:
    """Job artifact id -> what it needs in S3, from the build plan's items (`.spec`, `.record`)."""
    by_id = {item.spec.id: item for item in planned}
    found: dict[str, JobArtifacts] = {}
    for item in planned:
        spec = item.spec
        if spec.kind not in SCRIPT_KINDS.values():
            continue
        (script,), _ = _uploads_of(item, bucket, store)
        artifacts = JobArtifacts(script)
        for used in spec.uses:
            uploads, pending = _uploads_of(by_id[used], bucket, store)
            if ArtifactId.parse(used).role is Role.INTERNAL_LIBS:
                artifacts.libs = uploads[0]
            else:
                artifacts.deps, artifacts.deps_pending = uploads, pending
        found[spec.id] = artifacts
    return found


def _merge_list_argument(ours: list[str], theirs: str | None) -> str:
    return ",".join([*ours, *([theirs] if theirs else [])])


# JobUpdate members pkg does not manage (or manages only when configured): UpdateJob replaces the
# whole definition, so they are read from the live job and sent back rather than wiped. The others
# pkg always sets (Role, Command, DefaultArguments, GlueVersion, capacity, MaxRetries, Description),
# or leaves to Glue's default (Timeout unset, AllocatedCapacity: deprecated, CodeGenConfigurationNodes:
# visual jobs, which a script from pkg replaces).
GLUE_CARRIED_OVER = (
    "JobMode",
    "JobRunQueuingEnabled",
    "LogUri",
    "ExecutionProperty",
    "NonOverridableArguments",
    "Connections",
    "SecurityConfiguration",
    "NotificationProperty",
    "ExecutionClass",
    "SourceControlDetails",
    "MaintenanceWindow",
)


def carried_over(live_job: dict, update: dict) -> dict:
    """`update` plus the live job's values of the members pkg leaves to it (GLUE_CARRIED_OVER)."""
    kept = {key: live_job[key] for key in GLUE_CARRIED_OVER if key not in update and live_job.get(key) is not None}
    return {**update, **kept}


def _optional_fields(settings: dict) -> dict:
    """The JobUpdate members pkg sets only when configured (unset: Glue's default, or carried over on update)."""
    fields: dict = {}
    if settings.get("timeout") is not None:
        fields["Timeout"] = settings["timeout"]
    if settings.get("connections"):
        fields["Connections"] = {"Connections": list(settings["connections"])}
    if settings.get("security_configuration"):
        fields["SecurityConfiguration"] = settings["security_configuration"]
    if settings.get("max_concurrent_runs") is not None:
        fields["ExecutionProperty"] = {"MaxConcurrentRuns": settings["max_concurrent_runs"]}
    if settings.get("execution_class"):
        fields["ExecutionClass"] = settings["execution_class"]
    if settings.get("notify_delay_after") is not None:
        fields["NotificationProperty"] = {"NotifyDelayAfter": settings["notify_delay_after"]}
    if settings.get("non_overridable_arguments"):
        fields["NonOverridableArguments"] = dict(sorted(settings["non_overridable_arguments"].items()))
    if settings.get("job_run_queuing") is not None:
        fields["JobRunQueuingEnabled"] = settings["job_run_queuing"]
    return fields


def glue_job_resource(config: Config, target: Target, job_id: str, artifacts: JobArtifacts) -> GlueJobResource:
    """The Glue job of one script artifact, with DefaultArguments pointing at the content-addressed keys."""
    artifact = ArtifactId.parse(job_id)
    service, job = artifact.service, artifact.short_name
    settings = job_settings(config, service.value, job, target.stage)
    name = job_name(config.project, target.stage, job)
    check_job_name(name, job_id)
    role = require_role(settings, job_id, service.value, "job")
    arguments = dict(settings.get("default_arguments", {}))
    extra = [artifacts.libs.uri] if artifacts.libs else []
    if extra or EXTRA_PY_FILES in arguments:
        arguments[EXTRA_PY_FILES] = _merge_list_argument(extra, arguments.get(EXTRA_PY_FILES))
    wheels = [upload.uri for upload in artifacts.deps]
    if artifacts.deps_pending:
        wheels = [f"s3://{artifacts.script.bucket}/<wheels of {artifacts.deps_pending}, once built>"]
    if wheels or ADDITIONAL_MODULES in arguments:
        arguments[ADDITIONAL_MODULES] = _merge_list_argument(wheels, arguments.get(ADDITIONAL_MODULES))
    if service is Service.GLUE_PYTHON_SHELL:
        arguments.setdefault("library-set", settings["library_set"])
        command = {
            "Name": "pythonshell",
            "ScriptLocation": artifacts.script.uri,
            "PythonVersion": settings["python_version"],
        }
        capacity = {"MaxCapacity": float(settings["max_capacity"])}
    else:
        command = {"Name": "glueetl", "ScriptLocation": artifacts.script.uri, "PythonVersion": "3"}
        capacity = {"WorkerType": settings["worker_type"], "NumberOfWorkers": settings["number_of_workers"]}
    arguments = dict(sorted(arguments.items()))
    check_glue_arguments(job_id, arguments)
    definition = {
        "Role": role,
        "Command": command,
        "DefaultArguments": arguments,
        "GlueVersion": settings["glue_version"],
        **capacity,
        "MaxRetries": settings["max_retries"],
        "Description": settings.get("description", ""),
        **_optional_fields(settings),
    }
    tags = {**settings.get("tags", {}), **stage_tags(config.project, target.stage)}
    return GlueJobResource(job_id, name, definition, dict(sorted(tags.items())))


def emr_python(settings: dict) -> str | None:
    """The Python an EMR job runs (its dependencies are built for it): configured, else the release's default."""
    runtime = emr_runtime(settings["release_label"])
    return settings.get("python_version") or (runtime.pythons[0] if runtime else None)


def emr_conf(python: str | None, archive: str | None) -> dict[str, str]:
    """The Spark conf pkg sets for an EMR run: the dependency archive on PYTHONPATH, the Python it was built for."""
    conf: dict[str, str] = {}
    if archive is not None:
        conf["spark.archives"] = f"{archive}#deps"
        # Spark unpacks the archive as ./deps beside the driver and every executor.
        conf["spark.emr-serverless.driverEnv.PYTHONPATH"] = "./deps"
        conf["spark.yarn.appMasterEnv.PYTHONPATH"] = "./deps"
        conf["spark.executorEnv.PYTHONPATH"] = "./deps"
    # The dependencies were built for this Python: run it, not the release's default.
    executable = f"/usr/bin/python{python}"
    conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = executable
    # AWS's EMR Serverless examples for a non-default Python set the driver's interpreter too.
    conf["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = executable
    conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = executable
    conf["spark.executorEnv.PYSPARK_PYTHON"] = executable
    return dict(sorted(conf.items()))


def emr_configured(settings: dict) -> dict:
    """What a run specification copies from the configuration, as it records it."""
    return {
        "spark_submit_parameters": settings.get("spark_submit_parameters", ""),
        "arguments": list(settings.get("arguments", [])),
        "deploy_mode": settings["deploy_mode"],
        "application_id": settings.get("application_id"),
        "execution_role": settings.get("execution_role"),
        "cluster_id": settings.get("cluster_id"),
    }


def emr_run_spec(config: Config, target: Target, job_id: str, artifacts: JobArtifacts) -> EmrRunSpec:
    """How `pkg run` starts one EMR job: entry point, --py-files, the deps archive on PYTHONPATH."""
    job = ArtifactId.parse(job_id).short_name
    settings = job_settings(config, Service.EMR.value, job, target.stage)
    python = emr_python(settings)
    spec = {
        "release_label": settings["release_label"],
        "python": python,
        "entry_point": artifacts.script.uri,
        "py_files": [artifacts.libs.uri] if artifacts.libs else [],
        "conf": emr_conf(python, artifacts.deps[0].uri if artifacts.deps else None),
        **emr_configured(settings),
    }
    if artifacts.deps_pending:
        spec["conf"]["spark.archives"] = f"<{artifacts.deps_pending}, once built>#deps"
    return EmrRunSpec(job_id, job_name(config.project, target.stage, job), spec)


# -- planning --------------------------------------------------------------------------------------


def plan_upload(
    upload: S3Upload, recorded: dict[str, PublishedRecord], live: LiveState, refresh: bool, check: bool = False
) -> Action:
    """put_object unless this key was uploaded to this bucket (recorded; with refresh or `check`, also still there).

    `check`: the stage's jobs don't name the object yet, so `pkg gc` (maybe on another machine, its
    mark not seen here yet) may have deleted it since it was recorded.
    """
    if upload.path is None:  # not built yet: its key is known once it is
        return Action(upload.artifact_id, ActionKind.PUT_OBJECT, "new content (uploaded once built)", upload.uri)
    stored = recorded.get(upload.resource_id)
    row = UploadRow.from_details(stored.details) if stored is not None else None
    if row is not None and row.bucket == upload.bucket:
        if row.deleted:
            reason = "the object was deleted by gc"
        elif not (refresh or check) or live.object_exists(upload.bucket, upload.key):
            return Action(upload.artifact_id, SKIP, "uploaded from this input", upload.uri)
        else:
            reason = "drift: the object was deleted" if refresh else "the object was deleted (found missing)"
    elif live.object_exists(upload.bucket, upload.key):
        return Action(
            upload.artifact_id,
            SKIP,
            "already in the bucket (not recorded): adopting it",
            upload.uri,
            record=UploadRow(upload.bucket, upload.key).to_details(),
            resource_id=upload.resource_id,
            input_hash=upload.input_hash,
        )
    else:
        reason = "new content"
    params = {"Bucket": upload.bucket, "Key": upload.key, "path": upload.path}
    if upload.member:
        params["member"] = upload.member
    if upload.sha256:
        params["sha256"] = upload.sha256
    return Action(
        upload.artifact_id,
        ActionKind.PUT_OBJECT,
        reason,
        upload.uri,
        params,
        resource_id=upload.resource_id,
        input_hash=upload.input_hash,
    )


def live_glue_definition(job: dict, wanted: dict) -> dict:
    """GetJob's answer cut down to the keys pkg sets (AWS adds defaults and read-only fields)."""
    state = {key: job.get(key) for key in wanted}
    state["Command"] = {key: (job.get("Command") or {}).get(key) for key in wanted["Command"]}
    state["DefaultArguments"] = dict(sorted((job.get("DefaultArguments") or {}).items()))
    state["Description"] = job.get("Description") or ""
    capacity = state.get("MaxCapacity")
    if "MaxCapacity" in wanted and capacity is not None:
        state["MaxCapacity"] = float(capacity)
    return state


def _describe_definition_change(old: dict | None, new: dict) -> str:
    return describe_change(old, new, "definition", keys=list(new))


def plan_glue_job(
    job: GlueJobResource,
    arn: str,
    stored: PublishedRecord | None,
    live: LiveState,
    refresh: bool,
    why: str | None,
    drift: list[Drift],
) -> list[Action]:
    """The job's definition action, then glue_tag_resource / glue_untag_resource when its tags differ."""
    row = GlueJobRow.from_details(stored.details) if stored is not None else None
    main = _plan_glue_definition(job, row, live, refresh, why, drift)
    if main.kind is ActionKind.CREATE_JOB:  # tags are set by CreateJob itself
        return [main]
    recorded = (row.tags or {}) if row is not None else None
    drifted = False
    if refresh or row is None:
        current = live.glue_tags(arn)
        if main.record is not None:  # adopting a job: record its tags as they are
            main = replace(main, record={**main.record, "tags": current})
        elif row is None:  # updating a job the index doesn't hold: its row starts from the tags it has
            main = replace(main, record={"tags": current})
        if row is not None and current != recorded:
            drift.append(Drift(job.artifact_id, job.name, "tags", recorded, current))
            drifted = True
    else:
        current = recorded or {}
    prefix = "drift: tags changed out of band; " if drifted else ""
    tags = TagDiff.between(current, job.tags)
    steps: list[Action] = []
    if tags.added:
        steps.append(
            Action(
                job.artifact_id,
                ActionKind.GLUE_TAG_RESOURCE,
                prefix + tags.added_text,
                job.name,
                {"ResourceArn": arn, "TagsToAdd": tags.added},
                record={"tags": dict(sorted({**current, **tags.added}.items()))},
                resource_id=job.artifact_id,
            )
        )
    if tags.removed:
        steps.append(
            Action(
                job.artifact_id,
                ActionKind.GLUE_UNTAG_RESOURCE,
                prefix + tags.removed_text,
                job.name,
                {"ResourceArn": arn, "TagsToRemove": tags.removed},
                record={"tags": job.tags},
                resource_id=job.artifact_id,
            )
        )
    if steps and main.kind is SKIP and main.record is None:
        return steps
    return [main, *steps]


def _plan_glue_definition(
    job: GlueJobResource,
    row: GlueJobRow | None,
    live: LiveState,
    refresh: bool,
    why: str | None,
    drift: list[Drift],
) -> Action:
    """create_job, update_job (a full JobUpdate: what it leaves out, AWS resets), or skip."""
    wanted = job.definition

    def create(reason: str) -> Action:
        params = {"Name": job.name, **wanted, "Tags": job.tags}
        return Action(job.artifact_id, ActionKind.CREATE_JOB, reason, job.name, params, resource_id=job.artifact_id)

    def update(reason: str) -> Action:
        params = {"JobName": job.name, "JobUpdate": wanted}
        return Action(job.artifact_id, ActionKind.UPDATE_JOB, reason, job.name, params, resource_id=job.artifact_id)

    because = f" ({why})" if why else ""
    recorded = row.definition if row is not None else None
    if row is not None and not refresh:
        if recorded is None:  # an earlier `pkg plan --refresh` found the job deleted
            return create("drift: job deleted out of band")
        if recorded == wanted:
            return Action(job.artifact_id, SKIP, "up to date", job.name)
        return update(_describe_definition_change(recorded, wanted) + because)
    answer = live.glue_job(job.name)
    if answer is None:
        if row is not None:
            drift.append(Drift(job.artifact_id, job.name, "definition", recorded, None))
            return create("drift: job deleted out of band")
        return create("new job")
    current = live_glue_definition(answer, wanted)
    if row is None:
        if current == wanted:
            return Action(
                job.artifact_id,
                SKIP,
                "already live as wanted (not recorded): adopting it",
                job.name,
                record=GlueJobRow(job.name, wanted).to_details(),
                resource_id=job.artifact_id,
            )
        return update("exists but not recorded: " + _describe_definition_change(current, wanted))
    if current != recorded:
        drift.append(Drift(job.artifact_id, job.name, "definition", recorded, current))
        return update("drift: " + _describe_definition_change(current, recorded or wanted) + " out of band")
    if recorded != wanted:
        return update(_describe_definition_change(recorded, wanted) + because)
    return Action(job.artifact_id, SKIP, "up to date (checked live)", job.name)


def plan_emr_job(run: EmrRunSpec, stored: PublishedRecord | None) -> Action:
    """Nothing to call: record the run specification when it changed (a skip that writes the index)."""
    if stored is not None and EmrRunRow.from_details(stored.details).spec == run.spec:
        return Action(run.artifact_id, SKIP, "run specification up to date", run.name)
    reason = "new run specification" if stored is None else "run specification changed"
    return Action(
        run.artifact_id,
        SKIP,
        reason + " (recorded; `pkg run` starts it)",
        run.name,
        record=EmrRunRow(run.name, run.spec).to_details(),
        resource_id=run.artifact_id,
    )


def plan_job_services(inputs: StageInputs) -> ServicePlan:
    """The Glue and EMR share of a stage plan: uploads first, then jobs and run specifications."""
    config, target, planned, recorded = inputs.config, inputs.target, inputs.planned, inputs.recorded
    live, refresh, reasons = inputs.live, inputs.refresh, inputs.reasons
    job_items = [item for item in planned if item.spec.artifact.service in JOB_SERVICES]
    if not any(item.spec.kind in SCRIPT_KINDS.values() for item in job_items):
        return ServicePlan()
    bucket = require_bucket(inputs.bucket, "Glue and EMR jobs read their scripts and libraries from S3")
    artifacts = job_artifacts_of(job_items, bucket, inputs.store)
    actions: list[Action] = []
    drift: list[Drift] = []
    seen: set[str] = set()
    # What the stage's jobs and run specifications name now is in use, so gc left it: no read for it.
    named = " ".join(json.dumps(row.details) for key, row in recorded.items() if "@" not in key)
    for job_artifacts in artifacts.values():
        for upload in job_artifacts.uploads:
            if upload.resource_id not in seen:
                seen.add(upload.resource_id)
                actions.append(plan_upload(upload, recorded, live, refresh, check=upload.key not in named))
    for job_id, job_artifacts in artifacts.items():
        why = reasons.get(job_id) or next((reasons[u] for u in _uses(planned, job_id) if u in reasons), None)
        if ArtifactId.parse(job_id).service is Service.EMR:
            actions.append(plan_emr_job(emr_run_spec(config, target, job_id, job_artifacts), recorded.get(job_id)))
        else:
            job = glue_job_resource(config, target, job_id, job_artifacts)
            arn = f"arn:{target.partition}:glue:{target.region}:{target.account}:job/{job.name}"
            actions += plan_glue_job(job, arn, recorded.get(job_id), live, refresh, why, drift)
    return ServicePlan(actions, drift)


def _uses(planned: list, artifact_id: str) -> list[str]:
    return next((item.spec.uses for item in planned if item.spec.id == artifact_id), [])
