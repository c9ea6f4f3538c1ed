"""`pkg status --stage S`: each function and job of a stage, what pkg recorded beside what AWS reports.

Drift is the comparison `pkg plan --refresh` makes (the fields of `FunctionState`, a Glue job's
definition cut down by `live_glue_definition`, its tags), read cheaply and only with read calls:
a stage of many functions pages ListFunctions and the tagging API's GetResources instead of one
GetFunction each. Drift is reported by field and key, never by value (environment values stay
out of every report). Jobs add their newest run: Glue GetJobRuns, EMR Serverless ListJobRuns or
EMR ListSteps, matched by the name `pkg run` gives the run. Each resource is attributed the release
that deployed what it runs now, read from the stage's release objects (one listing, then reads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from cache.index import PublishedRecord
from packager.deploy.actions import Target
from packager.deploy.aws import AwsSession, aws_errors
from packager.deploy.emr import SERVERLESS_FINAL_STATES, STEP_FINAL_STATES
from packager.deploy.glue import GLUE_FINAL_STATES
from packager.deploy.jobs_plan import live_glue_definition
from packager.deploy.naming import NAME, resource_name
from packager.deploy.records import EmrRunRow, FunctionRow, FunctionState, GlueJobRow, changed_environment_keys, unit_of
from packager.deploy.releases import Release, ReleaseStore, job_release
from packager.deploy.settings import artifact_bucket
from packager.deploy.trust import StageScope, check_recorded
from packager.discover import discover_service
from packager.model import ArtifactId, Role, Service
from packager.reports import Drifted, LastRun, ResourceState, ResourceStatus, StatusReport

__all__ = ["AwsStatusReader", "deployed_by", "function_drift", "glue_drift", "running_pointers", "stage_status"]

# Up to this many functions, one GetFunction each (in parallel) is quicker than paging every function
# of the account (ListFunctions gives 50 a page); above it, the pages are fewer calls.
GET_EACH_UP_TO = 25
BATCH_GET_JOBS = 100  # job names per BatchGetJobs call
RUN_PAGES = 4  # pages of EMR runs or steps searched for a job's newest run (runs of other jobs share them)
RETRY_STATUS = "run `pkg status` again"
STATUS_RELEASES = 20  # newest releases read to find which one deployed each resource (a GET each, at most)


# -- drift: what differs, by field and key -------------------------------------------------------------


def _differing(recorded: dict, live: dict) -> list[str]:
    return sorted(key for key in set(recorded) | set(live) if recorded.get(key) != live.get(key))


def function_drift(recorded: FunctionState, live: FunctionState) -> list[Drifted]:
    """How a live function differs from its recorded state, field by field (the planner's fields)."""
    found: list[Drifted] = []
    if recorded.code_sha256 != live.code_sha256:
        found.append(Drifted("code_sha256"))
    if recorded.architecture != live.architecture:
        found.append(Drifted("architecture"))
    before, after = recorded.configuration, live.configuration
    if before is not None and after is not None and before != after:
        keys = [key for key in _differing(before, after) if key != "Environment"]
        keys += [f"Environment.{name}" for name in changed_environment_keys(before, after)]
        found.append(Drifted("configuration", tuple(keys)))
    if tuple(recorded.layers) != tuple(live.layers):
        found.append(Drifted("layers"))
    if (recorded.tags or {}) != (live.tags or {}):
        found.append(Drifted("tags", tuple(_differing(recorded.tags or {}, live.tags or {}))))
    return found


def definition_keys(recorded: dict, live: dict) -> tuple[str, ...]:
    """The keys of a Glue definition that differ; inside a table (Command, DefaultArguments), its keys."""
    keys: list[str] = []
    for key in _differing(recorded, live):
        before, after = recorded.get(key), live.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            keys += [f"{key}.{inner}" for inner in _differing(before, after)]
        else:
            keys.append(key)
    return tuple(keys)


def glue_drift(row: GlueJobRow, live_job: dict, live_tags: dict | None) -> list[Drifted]:
    """How a live Glue job differs from its recorded definition and tags (tags: when both are known)."""
    found: list[Drifted] = []
    assert row.definition is not None
    current = live_glue_definition(live_job, row.definition)
    if current != row.definition:
        found.append(Drifted("definition", definition_keys(row.definition, current)))
    if row.tags is not None and live_tags is not None and row.tags != live_tags:
        found.append(Drifted("tags", tuple(_differing(row.tags, live_tags))))
    return found


# -- runs ------------------------------------------------------------------------------------------------


def iso(value: object) -> str | None:
    """A time AWS answered (a datetime, or Lambda's `2026-03-01T11:02:40.000+0000`) as ISO 8601 UTC text."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(moment, datetime):
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return None if value is None else str(value)


def _seconds(start: object, end: object) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return max(0.0, (end - start).total_seconds())
    return None


def last_run(run_id: str, state: str, started: object, ended: object, finished: bool, now: datetime) -> LastRun:
    """A run's summary: a finished run's duration, a running one's time so far."""
    duration = _seconds(started, ended if finished else now)
    return LastRun(run_id, state, iso(started), duration, finished)


def glue_last_run(run: dict, now: datetime) -> LastRun:
    """A Glue JobRun (GetJobRuns) as a summary; ExecutionTime when AWS gives no CompletedOn."""
    state = run.get("JobRunState", "")
    finished = state in GLUE_FINAL_STATES
    summary = last_run(run.get("Id", ""), state, run.get("StartedOn"), run.get("CompletedOn"), finished, now)
    if finished and summary.duration_seconds is None and isinstance(run.get("ExecutionTime"), int):
        return LastRun(summary.run_id, state, summary.started, float(run["ExecutionTime"]), True)
    return summary


def serverless_last_run(summary: dict, now: datetime) -> LastRun:
    """An EMR Serverless JobRunSummary (ListJobRuns) as a summary: created to last updated."""
    state = summary.get("state", "")
    finished = state in SERVERLESS_FINAL_STATES
    return last_run(summary.get("id", ""), state, summary.get("createdAt"), summary.get("updatedAt"), finished, now)


def step_last_run(step: dict, now: datetime) -> LastRun:
    """An EMR step (ListSteps) as a summary."""
    status = step.get("Status") or {}
    timeline = status.get("Timeline") or {}
    state = status.get("State", "")
    started = timeline.get("StartDateTime") or timeline.get("CreationDateTime")
    finished = state in STEP_FINAL_STATES
    return last_run(step.get("Id", ""), state, started, timeline.get("EndDateTime"), finished, now)


# -- reading AWS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFunction:
    """A function as AWS reports it, in the planner's shape, and when it last changed."""

    state: FunctionState
    last_modified: str | None


class AwsStatusReader:
    """The read calls of `pkg status`, batched where AWS allows it and otherwise made in parallel."""

    def __init__(self, aws: AwsSession, jobs: int = 8):
        self.aws = aws
        self.jobs = jobs

    def _parallel(self, read: Callable, items: list) -> list:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(items)))) as pool:
            return list(pool.map(read, items))

    def functions(self, names: list[str]) -> dict[str, LiveFunction]:
        """The live functions among `names` (absent ones are left out)."""
        if len(names) <= GET_EACH_UP_TO:
            return self.get_functions(names)
        return self.list_functions(names)

    def get_functions(self, names: list[str]) -> dict[str, LiveFunction]:
        """One GetFunction per name (its answer has the tags too)."""
        client = self.aws.client("lambda")

        def read(name: str) -> LiveFunction | None:
            try:
                answer = client.get_function(FunctionName=name)
            except client.exceptions.ResourceNotFoundException:
                return None
            configuration = answer["Configuration"]
            state = FunctionState.from_configuration(configuration, answer.get("Tags"))
            return LiveFunction(state, iso(configuration.get("LastModified")))

        found = zip(names, self._parallel(read, names), strict=True)
        return {name: live for name, live in found if live is not None}

    def list_functions(self, names: list[str]) -> dict[str, LiveFunction]:
        """ListFunctions pages for the configurations, the tagging API's pages for their tags."""
        wanted = set(names)
        configurations = []
        for page in self.aws.client("lambda").get_paginator("list_functions").paginate():
            configurations += [c for c in page["Functions"] if c["FunctionName"] in wanted]
        tags = self._function_tags([c["FunctionArn"] for c in configurations])
        return {
            c["FunctionName"]: LiveFunction(
                FunctionState.from_configuration(c, tags.get(c["FunctionArn"], {})), iso(c.get("LastModified"))
            )
            for c in configurations
        }

    def _function_tags(self, arns: list[str]) -> dict[str, dict]:
        """ARN -> tags: GetResources pages (100 a page); ListTags each where the tagging API is denied."""
        import botocore.exceptions

        if not arns:
            return {}
        wanted = set(arns)
        found: dict[str, dict] = {}
        try:
            pages = self.aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
            for page in pages.paginate(ResourceTypeFilters=["lambda:function"], ResourcesPerPage=100):
                for mapping in page["ResourceTagMappingList"]:
                    if mapping["ResourceARN"] in wanted:
                        found[mapping["ResourceARN"]] = {tag["Key"]: tag["Value"] for tag in mapping["Tags"]}
            return found  # a function never tagged is not listed: no tags
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("AccessDeniedException", "AccessDenied"):
                raise
        client = self.aws.client("lambda")
        return dict(zip(arns, self._parallel(lambda arn: client.list_tags(Resource=arn)["Tags"], arns), strict=True))

    def glue_jobs(self, names: list[str]) -> dict[str, dict]:
        """name -> GetJob's `Job`, for the jobs that exist (BatchGetJobs, a hundred names a call)."""
        client = self.aws.client("glue")
        found: dict[str, dict] = {}
        for start in range(0, len(names), BATCH_GET_JOBS):
            answer = client.batch_get_jobs(JobNames=names[start : start + BATCH_GET_JOBS])
            found.update({job["Name"]: job for job in answer.get("Jobs", [])})
        return found

    def glue_details(self, jobs: list[tuple[str, str]]) -> list[tuple[dict, dict | None]]:
        """For each (name, ARN): its tags and its newest run (GetTags, GetJobRuns with MaxResults=1)."""
        client = self.aws.client("glue")

        def read(job: tuple[str, str]) -> tuple[dict, dict | None]:
            name, arn = job
            tags = dict(sorted(client.get_tags(ResourceArn=arn).get("Tags", {}).items()))
            runs = client.get_job_runs(JobName=name, MaxResults=1).get("JobRuns", [])
            return tags, (runs[0] if runs else None)

        return self._parallel(read, jobs)

    def serverless_runs(self, application_id: str, names: set[str]) -> dict[str, dict]:
        """name -> the newest EMR Serverless run of that name on the application (ListJobRuns, a few pages)."""
        pages = self.aws.client("emr-serverless").get_paginator("list_job_runs")
        newest: dict[str, dict] = {}
        for number, page in enumerate(pages.paginate(applicationId=application_id)):
            for run in page.get("jobRuns", []):
                name = run.get("name")
                if name in names and (name not in newest or run["createdAt"] > newest[name]["createdAt"]):
                    newest[name] = run
            if len(newest) == len(names) or number + 1 >= RUN_PAGES:
                break
        return newest

    def cluster_steps(self, cluster_id: str, names: set[str]) -> dict[str, dict]:
        """name -> the newest step of that name on the cluster (ListSteps lists newest first, a few pages)."""
        pages = self.aws.client("emr").get_paginator("list_steps")
        newest: dict[str, dict] = {}
        for number, page in enumerate(pages.paginate(ClusterId=cluster_id)):
            for step in page.get("Steps", []):
                if step.get("Name") in names:
                    newest.setdefault(step["Name"], step)
            if len(newest) == len(names) or number + 1 >= RUN_PAGES:
                break
        return newest


# -- releases: which one deployed what runs now --------------------------------------------------------

Pointer = tuple[str, ...]  # what a resource runs: (alias, version) of a function, the S3 keys of a job


def running_pointers(recorded: dict[str, PublishedRecord], scope: StageScope) -> dict[str, Pointer]:
    """What each function and job of the stage runs now, from its (trust-checked) index row."""
    pointers: dict[str, Pointer] = {}
    for resource_id, stored in recorded.items():
        artifact = unit_of(resource_id)
        if artifact is None:
            continue
        if artifact.role is Role.FUNCTION:
            alias = FunctionRow.from_details(stored.details).alias
            if alias is not None:
                pointers[resource_id] = (alias.name, alias.version)
        else:
            job = job_release(artifact, stored.details, scope)
            if job is not None:
                pointers[resource_id] = job.keys
    return pointers


def _pointer_in(release: Release, resource_id: str) -> Pointer | None:
    if resource_id in release.functions:
        function = release.functions[resource_id]
        return (function.alias, function.version)
    job = release.jobs.get(resource_id)
    return job.keys if job is not None else None


def deployed_by(current: dict[str, Pointer], newest_first: Iterable[Release]) -> dict[str, int]:
    """Resource id -> the release that deployed what it runs now: going back from the newest release,
    the oldest of the unbroken run of releases that ran the same version or keys. A resource the
    newest release does not run as it runs now has none (changed since, or published without a bucket).
    Stops reading releases once every resource is placed."""
    found: dict[str, int] = {}
    looking = set(current)
    if not looking:
        return found
    for release in newest_first:
        for resource_id in sorted(looking):
            if _pointer_in(release, resource_id) == current[resource_id]:
                found[resource_id] = release.id
            else:
                looking.discard(resource_id)
        if not looking:
            break
    return found


def _newest_releases(store: ReleaseStore, count: int) -> Iterator[Release]:
    """The stage's valid releases, newest first, read one at a time (one listing; at most `count` reads)."""
    for release_id in reversed(store.ids()[-count:]):
        release = store.read(release_id)
        if release is not None:
            yield release


def release_ids(ws, stage: str, aws: AwsSession, recorded: dict[str, PublishedRecord], warn) -> dict[str, int]:
    """Resource id -> the release that deployed what it runs now; empty for a stage without a bucket."""
    bucket = artifact_bucket(ws.config, stage)
    if not bucket:
        return {}
    scope = StageScope.of(ws.config, Target(aws.account, aws.region, stage))
    store = ReleaseStore(aws, bucket, scope, warn)
    return deployed_by(running_pointers(recorded, scope), _newest_releases(store, STATUS_RELEASES))


# -- one stage -----------------------------------------------------------------------------------------


def stage_ids(root: str, recorded: dict[str, PublishedRecord]) -> list[str]:
    """The function and job ids of a stage: recorded, or in src/ (a listing: nothing is parsed).

    A source whose name breaks the name rule is left out: `pkg build` reports it, and AWS would refuse it.
    """
    ids: set[str] = {resource_id for resource_id in recorded if unit_of(resource_id) is not None}
    for service in Service:
        for entry in discover_service(root, service).entries:
            if NAME.match(entry.name):
                found = (
                    ArtifactId.function(entry.name)
                    if service is Service.LAMBDA
                    else ArtifactId.job(service, entry.name)
                )
                ids.add(str(found))
    return sorted(ids)


def _function_statuses(
    ids: list[str], names: dict[str, str], recorded: dict[str, PublishedRecord], live: dict[str, LiveFunction]
) -> list[ResourceStatus]:
    statuses = []
    for artifact_id in ids:
        name = names[artifact_id]
        stored = recorded.get(artifact_id)
        row = FunctionRow.from_details(stored.details) if stored is not None else None
        found = live.get(name)
        live_code = found.state.code_sha256 if found else None
        modified = found.last_modified if found else None
        if row is None:
            state = ResourceState.NOT_RECORDED if found else ResourceState.NOT_PUBLISHED
            statuses.append(ResourceStatus(artifact_id, name, state, None, live_code, modified, []))
            continue
        recorded_state = row.state
        recorded_code = recorded_state.code_sha256 if recorded_state else None
        if found is None:
            state, drift = ResourceState.MISSING, []
        elif recorded_state is None:  # `plan --refresh` saw it deleted; it is back
            state, drift = ResourceState.LIVE, [Drifted("function")]
        else:
            state, drift = ResourceState.LIVE, function_drift(recorded_state, found.state)
        statuses.append(
            ResourceStatus(artifact_id, name, state, recorded_code, live_code, modified, drift, pending=row.pending)
        )
    return statuses


def _glue_statuses(
    ids: list[str],
    names: dict[str, str],
    recorded: dict[str, PublishedRecord],
    reader: AwsStatusReader,
    target: Target,
    now: datetime,
) -> list[ResourceStatus]:
    jobs = reader.glue_jobs([names[artifact_id] for artifact_id in ids])
    present = [artifact_id for artifact_id in ids if names[artifact_id] in jobs]
    arn = f"arn:{target.partition}:glue:{target.region}:{target.account}:job/"
    details = dict(zip(present, reader.glue_details([(names[i], arn + names[i]) for i in present]), strict=True))
    statuses = []
    for artifact_id in ids:
        name = names[artifact_id]
        stored = recorded.get(artifact_id)
        row = GlueJobRow.from_details(stored.details) if stored is not None else None
        job = jobs.get(name)
        live_code = (job.get("Command") or {}).get("ScriptLocation") if job else None
        modified = iso(job.get("LastModifiedOn")) if job else None
        tags, run = details.get(artifact_id, ({}, None))
        newest = glue_last_run(run, now) if run else None
        recorded_code = (row.definition or {}).get("Command", {}).get("ScriptLocation") if row else None
        if row is None:
            state = ResourceState.NOT_RECORDED if job else ResourceState.NOT_PUBLISHED
            drift: list[Drifted] = []
        elif job is None:
            state, drift = ResourceState.MISSING, []
        elif row.definition is None:  # `plan --refresh` saw it deleted; it is back
            state, drift = ResourceState.LIVE, [Drifted("job")]
        else:
            state, drift = ResourceState.LIVE, glue_drift(row, job, tags)
        statuses.append(
            ResourceStatus(artifact_id, name, state, recorded_code, live_code, modified, drift, last_run=newest)
        )
    return statuses


def emr_statuses(
    ids: list[str], names: dict[str, str], recorded: dict[str, PublishedRecord], reader: AwsStatusReader, now: datetime
) -> list[ResourceStatus]:
    """The EMR jobs of a stage: their run specifications (recorded) and each one's newest run."""
    specs = {i: EmrRunRow.from_details(recorded[i].details).spec for i in ids if i in recorded}
    # One pass over each application's runs (and each cluster's steps) for all the jobs that run there.
    runs: dict[str, LastRun] = {}
    for key, read, summary in (
        ("application_id", reader.serverless_runs, serverless_last_run),
        ("cluster_id", reader.cluster_steps, step_last_run),
    ):
        places = {spec[key] for spec in specs.values() if spec.get(key)}
        for place in sorted(places):
            wanted = {names[i] for i, spec in specs.items() if spec.get(key) == place}
            runs.update({name: summary(run, now) for name, run in read(place, wanted).items()})
    statuses = []
    for artifact_id in ids:
        name = names[artifact_id]
        if artifact_id not in specs:
            statuses.append(ResourceStatus(artifact_id, name, ResourceState.NOT_PUBLISHED, None, None, None, []))
            continue
        recorded_at = recorded[artifact_id].published
        code = specs[artifact_id].get("entry_point")
        statuses.append(
            ResourceStatus(
                artifact_id, name, ResourceState.RECORDED, code, None, recorded_at, [], last_run=runs.get(name)
            )
        )
    return statuses


def stage_status(
    ws, stage: str, aws: AwsSession, jobs: int = 8, warn: Callable[[str], None] | None = None
) -> StatusReport:
    """Every function and job of `stage`: recorded beside live, drift, and each job's newest run (reads only)."""
    config = ws.config
    target = Target(aws.account, aws.region, stage)
    rows = ws.store.index.published(target.account, target.region, stage)
    recorded = check_recorded(rows, StageScope.of(config, target), warn)
    ids = stage_ids(ws.root, recorded)
    parsed = {artifact_id: ArtifactId.parse(artifact_id) for artifact_id in ids}
    names = {artifact_id: resource_name(config.project, stage, a.short_name) for artifact_id, a in parsed.items()}
    functions = [i for i in ids if parsed[i].service is Service.LAMBDA]
    glue = [i for i in ids if parsed[i].service.is_glue]
    emr = [i for i in ids if parsed[i].service is Service.EMR]
    reader = AwsStatusReader(aws, jobs)
    now = datetime.now(timezone.utc)
    with aws_errors(f"stage {stage}", RETRY_STATUS):
        live = reader.functions([names[i] for i in functions]) if functions else {}
        statuses = _function_statuses(functions, names, recorded, live)
        statuses += _glue_statuses(glue, names, recorded, reader, target, now) if glue else []
        statuses += emr_statuses(emr, names, recorded, reader, now) if emr else []
        releases = release_ids(ws, stage, aws, recorded, warn) if statuses else {}
    for status in statuses:
        status.release = releases.get(status.id)
    return StatusReport(stage, target.account, target.region, statuses)
