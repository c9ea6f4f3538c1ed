"""Glue and EMR jobs: desired state from the build's artifacts, and the actions that bring AWS there.

The same model as packager/deploy/lambda_plan.py (chalice): plain resources (`S3Upload`, `GlueJobResource`,
`EmrRunSpec`), a planner that compares them with the index rows of this account/region/stage and,
where asked or where nothing is recorded, with a read-only `JobLiveState`; it returns `Action`s
named after AWS operations and never calls a mutating API nor imports boto3.

Every artifact goes to S3 under a key holding its input hash (`pkg/<service>/<hash>/<file>`):
nothing is overwritten in place, and rolling back is pointing a job at an older key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol

from cache.index import PublishedRecord
from packager.builders.job_artifacts import JOB_SERVICES, SCRIPT_KINDS, WHEELHOUSE_KIND
from packager.config import Config, job_settings
from packager.errors import ConfigError, PkgError
from packager.deploy.lambda_plan import SKIP, Action, Drift, Target
from packager.runtimes import GLUE_ARGUMENTS_MAX_BYTES, GLUE_JOB_NAME_LENGTH, emr_runtime

S3_PREFIX = "pkg"
PENDING = "<sha256>"  # in the key of an artifact `pkg plan` has not built yet
PUT_OBJECT = "put_object"
CREATE_JOB = "create_job"
UPDATE_JOB = "update_job"
TAG_RESOURCE = "glue_tag_resource"  # Glue TagResource (Lambda's tag_resource is another call)
UNTAG_RESOURCE = "glue_untag_resource"
# Glue's own argument names that pkg fills from the build (a user's values are appended to ours).
EXTRA_PY_FILES = "--extra-py-files"
ADDITIONAL_MODULES = "--additional-python-modules"
_JOB_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


class JobPlanError(PkgError):
    """A job can't be published as configured (a limit, a name, a missing setting)."""


# -- resources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Upload:
    """One object to put in the artifact bucket: a built file, or one wheel inside a built wheelhouse."""

    artifact_id: str
    bucket: str
    key: str
    path: str | None  # the local file; None until built
    member: str | None = None  # the wheel's name inside a wheelhouse zip

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


class JobLiveState(Protocol):
    """Read-only views of AWS for the job planner (GetJob, HeadObject)."""

    def glue_job(self, name: str) -> dict | None:
        """GetJob's `Job`, or None if there is no such job."""

    def object_exists(self, bucket: str, key: str) -> bool:
        """Whether s3://bucket/key exists."""

    def glue_tags(self, arn: str) -> dict:
        """GetTags of a Glue job."""


# -- desired state ---------------------------------------------------------------------------------


def job_name(project: str, stage: str, job: str) -> str:
    return f"{project}-{stage}-{job}"


def s3_key(service: str, artifact_id: str, sha256: str, filename: str) -> str:
    """`pkg/<service>/<artifact>/<sha256 of the built file>/<file>`: the file name survives (pip needs a wheel's)."""
    what = artifact_id.split("/", 1)[1].replace("/", "-")
    return f"{S3_PREFIX}/{service}/{what}/{sha256}/{filename}"


def wheelhouse_members(path: str) -> list[str]:
    """The wheel names inside a built wheelhouse zip."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return sorted(name for name in archive.namelist() if name.endswith(".whl"))


def _uploads_of(item, bucket: str, store) -> tuple[list[S3Upload], str | None]:
    """The S3 objects of one built artifact (a wheelhouse gives one per wheel)."""
    spec, record = item.spec, item.record
    service = spec.id.split("/", 1)[0]
    # Keyed by the bytes, not the inputs: a rebuild that resolves unpinned requirements anew gets a new key.
    sha256 = record.sha256 if record else PENDING
    path = store.abspath(record.path) if record else None
    if spec.kind == WHEELHOUSE_KIND:
        if path is None:  # not built yet (`pkg plan`): the wheels are known once it is
            return [S3Upload(spec.id, bucket, s3_key(service, spec.id, sha256, "*.whl"), None)], spec.id
        return [
            S3Upload(spec.id, bucket, s3_key(service, spec.id, sha256, wheel), path, member=wheel)
            for wheel in wheelhouse_members(path)
        ], None
    filename = spec.meta.get("filename", spec.id.rsplit("/", 1)[-1])
    return [S3Upload(spec.id, bucket, s3_key(service, spec.id, sha256, filename), path)], None


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
            if used.endswith("/internal_libs"):
                artifacts.libs = uploads[0]
            else:
                artifacts.deps, artifacts.deps_pending = uploads, pending
        found[spec.id] = artifacts
    return found


def _merge_list_argument(ours: list[str], theirs: str | None) -> str:
    return ",".join([*ours, *([theirs] if theirs else [])])


def glue_job_resource(config: Config, target: Target, job_id: str, artifacts: JobArtifacts) -> GlueJobResource:
    """The Glue job of one script artifact, with DefaultArguments pointing at the content-addressed keys."""
    service, _, job = job_id.split("/", 2)
    settings = job_settings(config, service, job, target.stage)
    name = job_name(config.project, target.stage, job)
    if len(name) > GLUE_JOB_NAME_LENGTH or not _JOB_NAME.match(name):
        raise JobPlanError(
            f"{job_id}: Glue job name '{name}' must be 1-{GLUE_JOB_NAME_LENGTH} letters, digits, '-' or '_'",
            hint="shorten the project, stage or file name (the name is <project>-<stage>-<job>)",
        )
    role = settings.get("role")
    if not role:
        raise ConfigError(
            f"{job_id}: no IAM role: set tool.pkg.{service}.role",
            hint='e.g. role = "arn:aws:iam::123456789012:role/datamart-glue" (per stage or job too)',
        )
    arguments = dict(settings.get("default_arguments", {}))
    extra = [artifacts.libs.uri] if artifacts.libs else []
    if extra or EXTRA_PY_FILES in arguments:
        arguments[EXTRA_PY_FILES] = _merge_list_argument(extra, arguments.get(EXTRA_PY_FILES))
    wheels = [upload.uri for upload in artifacts.deps]
    if artifacts.deps_pending:
        wheels = [f"s3://{artifacts.script.bucket}/<wheels of {artifacts.deps_pending}, once built>"]
    if wheels or ADDITIONAL_MODULES in arguments:
        arguments[ADDITIONAL_MODULES] = _merge_list_argument(wheels, arguments.get(ADDITIONAL_MODULES))
    if service == "glue_python_shell":
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
    size = len(json.dumps(arguments, separators=(",", ":")).encode())
    if size > GLUE_ARGUMENTS_MAX_BYTES:
        biggest = max(arguments, key=lambda key: len(arguments[key]))
        raise JobPlanError(
            f"{job_id}: job arguments take {size:,} bytes; Glue allows {GLUE_ARGUMENTS_MAX_BYTES:,}"
            f" (the biggest is {biggest}, {len(arguments[biggest]):,} bytes)",
            hint="fewer dependency wheels (Glue 5.x takes a requirements file instead), or shorter default_arguments",
        )
    definition = {
        "Role": role,
        "Command": command,
        "DefaultArguments": arguments,
        "GlueVersion": settings["glue_version"],
        **capacity,
        "Timeout": settings["timeout"],
        "MaxRetries": settings["max_retries"],
        "Description": settings.get("description", ""),
    }
    return GlueJobResource(job_id, name, definition, dict(sorted(settings.get("tags", {}).items())))


def emr_run_spec(config: Config, target: Target, job_id: str, artifacts: JobArtifacts) -> EmrRunSpec:
    """How `pkg run` starts one EMR job: entry point, --py-files, the deps archive on PYTHONPATH."""
    job = job_id.split("/", 2)[2]
    settings = job_settings(config, "emr", job, target.stage)
    python = settings.get("python_version") or emr_runtime(settings["release_label"]).pythons[0]
    conf: dict[str, str] = {}
    if artifacts.deps:
        archive = artifacts.deps[0].uri
        conf["spark.archives"] = f"{archive}#deps"
        # Spark unpacks the archive as ./deps beside the driver and every executor.
        conf["spark.emr-serverless.driverEnv.PYTHONPATH"] = "./deps"
        conf["spark.yarn.appMasterEnv.PYTHONPATH"] = "./deps"
        conf["spark.executorEnv.PYTHONPATH"] = "./deps"
    # The dependencies were built for this Python: run it, not the release's default.
    executable = f"/usr/bin/python{python}"
    conf["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = executable
    conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = executable
    conf["spark.executorEnv.PYSPARK_PYTHON"] = executable
    spec = {
        "release_label": settings["release_label"],
        "python": python,
        "entry_point": artifacts.script.uri,
        "py_files": [artifacts.libs.uri] if artifacts.libs else [],
        "conf": dict(sorted(conf.items())),
        "spark_submit_parameters": settings.get("spark_submit_parameters", ""),
        "arguments": list(settings.get("arguments", [])),
        "deploy_mode": settings["deploy_mode"],
        "application_id": settings.get("application_id"),
        "execution_role": settings.get("execution_role"),
        "cluster_id": settings.get("cluster_id"),
    }
    if artifacts.deps_pending:
        spec["conf"]["spark.archives"] = f"<{artifacts.deps_pending}, once built>#deps"
    return EmrRunSpec(job_id, job_name(config.project, target.stage, job), spec)


# -- planning --------------------------------------------------------------------------------------


def plan_upload(upload: S3Upload, recorded: dict[str, PublishedRecord], live: JobLiveState, refresh: bool) -> Action:
    """put_object unless this key was uploaded to this bucket (recorded; with refresh, also still there)."""
    if upload.path is None:  # not built yet: its key is known once it is
        return Action(upload.artifact_id, PUT_OBJECT, "new content (uploaded once built)", upload.uri)
    row = recorded.get(upload.resource_id)
    if row is not None and row.details.get("bucket") == upload.bucket:
        if not refresh or live.object_exists(upload.bucket, upload.key):
            return Action(upload.artifact_id, SKIP, "uploaded from this input", upload.uri)
        reason = "drift: the object was deleted"
    elif live.object_exists(upload.bucket, upload.key):
        return Action(
            upload.artifact_id,
            SKIP,
            "already in the bucket (not recorded): adopting it",
            upload.uri,
            record={"bucket": upload.bucket, "key": upload.key},
            resource_id=upload.resource_id,
        )
    else:
        reason = "new content"
    params = {"Bucket": upload.bucket, "Key": upload.key, "path": upload.path}
    if upload.member:
        params["member"] = upload.member
    return Action(upload.artifact_id, PUT_OBJECT, reason, upload.uri, params, resource_id=upload.resource_id)


def live_glue_definition(job: dict, wanted: dict) -> dict:
    """GetJob's answer cut down to the keys pkg sets (AWS adds defaults and read-only fields)."""
    state = {key: job.get(key) for key in wanted}
    state["Command"] = {key: (job.get("Command") or {}).get(key) for key in wanted["Command"]}
    state["DefaultArguments"] = dict(sorted((job.get("DefaultArguments") or {}).items()))
    state["Description"] = job.get("Description") or ""
    if "MaxCapacity" in wanted and state.get("MaxCapacity") is not None:
        state["MaxCapacity"] = float(state["MaxCapacity"])
    return state


def _describe_definition_change(old: dict | None, new: dict) -> str:
    if not old:
        return "definition changed"
    keys = [key for key in new if old.get(key) != new.get(key)]
    parts = []
    for key in keys[:3]:
        if key in ("Command", "DefaultArguments"):
            inner = old.get(key) or {}
            changed = sorted(k for k in set(inner) | set(new[key]) if inner.get(k) != new[key].get(k))
            parts.append(f"{key} {', '.join(changed)} changed")
        else:
            parts.append(f"{key} {old.get(key)} -> {new.get(key)}")
    return ", ".join(parts) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def plan_glue_job(
    job: GlueJobResource,
    arn: str,
    row: PublishedRecord | None,
    live: JobLiveState,
    refresh: bool,
    why: str | None,
    drift: list[Drift],
) -> list[Action]:
    """The job's definition action, then tag_resource / untag_resource when its tags differ."""
    main = _plan_glue_definition(job, row, live, refresh, why, drift)
    if main.action == CREATE_JOB:  # tags are set by CreateJob itself
        return [main]
    recorded = row.details.get("tags", {}) if row is not None else None
    drifted = False
    if refresh or row is None:
        current = live.glue_tags(arn)
        if main.record is not None:  # adopting a job: record its tags as they are
            main.record["tags"] = current
        if row is not None and current != recorded:
            drift.append(Drift(job.artifact_id, job.name, "tags", recorded, current))
            drifted = True
    else:
        current = recorded
    prefix = "drift: tags changed out of band; " if drifted else ""
    added = {key: value for key, value in job.tags.items() if current.get(key) != value}
    removed = sorted(key for key in current if key not in job.tags)
    steps: list[Action] = []
    if added:
        steps.append(
            Action(
                job.artifact_id,
                TAG_RESOURCE,
                prefix + f"tags set: {', '.join(sorted(added))}",
                job.name,
                {"ResourceArn": arn, "TagsToAdd": added},
                record={"tags": dict(sorted({**current, **added}.items()))},
                resource_id=job.artifact_id,
            )
        )
    if removed:
        steps.append(
            Action(
                job.artifact_id,
                UNTAG_RESOURCE,
                prefix + f"tags removed: {', '.join(removed)}",
                job.name,
                {"ResourceArn": arn, "TagsToRemove": removed},
                record={"tags": job.tags},
                resource_id=job.artifact_id,
            )
        )
    if steps and main.action == SKIP and main.record is None:
        return steps
    return [main, *steps]


def _plan_glue_definition(
    job: GlueJobResource,
    row: PublishedRecord | None,
    live: JobLiveState,
    refresh: bool,
    why: str | None,
    drift: list[Drift],
) -> Action:
    """create_job, update_job (a full JobUpdate: what it leaves out, AWS resets), or skip."""
    wanted = job.definition
    create = Action(
        job.artifact_id,
        CREATE_JOB,
        "new job",
        job.name,
        {"Name": job.name, **wanted, "Tags": job.tags},
        resource_id=job.artifact_id,
    )
    update = Action(
        job.artifact_id,
        UPDATE_JOB,
        "",
        job.name,
        {"JobName": job.name, "JobUpdate": wanted},
        resource_id=job.artifact_id,
    )
    recorded = row.details.get("definition") if row is not None else None
    if row is not None and not refresh:
        if recorded is None:  # an earlier `pkg plan --refresh` found the job deleted
            create.reason = "drift: job deleted out of band"
            return create
        if recorded == wanted:
            return Action(job.artifact_id, SKIP, "up to date", job.name)
        update.reason = _describe_definition_change(recorded, wanted) + (f" ({why})" if why else "")
        return update
    answer = live.glue_job(job.name)
    if answer is None:
        if row is not None:
            drift.append(Drift(job.artifact_id, job.name, "definition", recorded, None))
            create.reason = "drift: job deleted out of band"
        return create
    current = live_glue_definition(answer, wanted)
    if row is None:
        if current == wanted:
            return Action(
                job.artifact_id,
                SKIP,
                "already live as wanted (not recorded): adopting it",
                job.name,
                record={"name": job.name, "definition": wanted},
                resource_id=job.artifact_id,
            )
        update.reason = "exists but not recorded: " + _describe_definition_change(current, wanted)
        return update
    if current != recorded:
        drift.append(Drift(job.artifact_id, job.name, "definition", recorded, current))
        update.reason = "drift: " + _describe_definition_change(current, recorded or wanted) + " out of band"
        return update
    if recorded != wanted:
        update.reason = _describe_definition_change(recorded, wanted) + (f" ({why})" if why else "")
        return update
    return Action(job.artifact_id, SKIP, "up to date (checked live)", job.name)


def plan_emr_job(run: EmrRunSpec, row: PublishedRecord | None) -> Action:
    """Nothing to call: record the run specification when it changed (a skip that writes the index)."""
    if row is not None and row.details.get("spec") == run.spec:
        return Action(run.artifact_id, SKIP, "run specification up to date", run.name)
    reason = "new run specification" if row is None else "run specification changed"
    return Action(
        run.artifact_id,
        SKIP,
        reason + " (recorded; `pkg run` starts it)",
        run.name,
        record={"name": run.name, "spec": run.spec},
        resource_id=run.artifact_id,
    )


def plan_jobs(
    config: Config,
    target: Target,
    planned: list,
    store,
    recorded: dict[str, PublishedRecord],
    live: JobLiveState,
    refresh: bool = False,
    bucket: str | None = None,
    reasons: dict[str, str] | None = None,
) -> tuple[list[Action], list[Drift]]:
    """Every action publishing the Glue and EMR jobs of `planned` needs: uploads first, then jobs."""
    reasons = reasons or {}
    job_items = [item for item in planned if item.spec.id.split("/", 1)[0] in JOB_SERVICES]
    if not any(item.spec.kind in SCRIPT_KINDS.values() for item in job_items):
        return [], []
    if not bucket:
        raise ConfigError(
            "Glue and EMR jobs read their scripts and libraries from S3, and no artifact bucket is configured",
            hint="set tool.pkg.artifact_bucket (or tool.pkg.stages.<stage>.artifact_bucket)",
        )
    artifacts = job_artifacts_of(job_items, bucket, store)
    actions: list[Action] = []
    drift: list[Drift] = []
    seen: set[str] = set()
    for job_artifacts in artifacts.values():
        for upload in job_artifacts.uploads:
            if upload.resource_id not in seen:
                seen.add(upload.resource_id)
                actions.append(plan_upload(upload, recorded, live, refresh))
    for job_id, job_artifacts in artifacts.items():
        service = job_id.split("/", 1)[0]
        why = reasons.get(job_id) or next((reasons[u] for u in _uses(planned, job_id) if u in reasons), None)
        if service == "emr":
            actions.append(plan_emr_job(emr_run_spec(config, target, job_id, job_artifacts), recorded.get(job_id)))
        else:
            job = glue_job_resource(config, target, job_id, job_artifacts)
            arn = f"arn:{target.partition}:glue:{target.region}:{target.account}:job/{job.name}"
            actions += plan_glue_job(job, arn, recorded.get(job_id), live, refresh, why, drift)
    return actions, drift


def _uses(planned: list, artifact_id: str) -> list[str]:
    return next((item.spec.uses for item in planned if item.spec.id == artifact_id), [])

