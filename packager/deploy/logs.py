"""`pkg logs <service>/<name> --stage S`: the CloudWatch Logs of a function or of a Glue run, merged by time.

A function writes to `/aws/lambda/<function name>`; a Glue run to its service's output and error
groups, in streams named after the run id (the driver's is the id itself, executors' start with
it). Reads only: FilterLogEvents, and GetJobRuns to find a job's newest run. `--follow` polls
FilterLogEvents from the newest event seen (a little earlier: CloudWatch may ingest an event after
later ones), skipping events already shown by their id, until Ctrl-C.

EMR runs are not read: pkg starts them without a CloudWatch monitoring configuration, so EMR keeps
their logs in its own managed storage (the Spark UI of the run), which has no log API.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from packager.deploy.aws import AwsSession, aws_errors
from packager.deploy.naming import NAME, resource_name
from packager.errors import PkgError
from packager.model import ArtifactId, Service
from packager.units import parse_duration

__all__ = ["LogEvent", "LogSource", "follow", "merge", "parse_since", "read_events", "stage_log_source"]

POLL_SECONDS = 2.0  # FilterLogEvents allows 5 calls a second per account and region, shared by everyone
LATE_MS = 15_000  # each poll looks back this far for events ingested after newer ones (shown once, by id)
LAMBDA_SINCE = "10m"  # a function's default window, as `aws logs tail` has it
RETRY_LOGS = "run `pkg logs` again"

# Where Glue writes a run's output and errors, per job type (continuous logging writes elsewhere).
GLUE_LOG_GROUPS: dict[Service, tuple[str, ...]] = {
    Service.GLUE_PYTHON_SHELL: ("/aws-glue/python-jobs/output", "/aws-glue/python-jobs/error"),
    Service.GLUE_SPARK: ("/aws-glue/jobs/output", "/aws-glue/jobs/error"),
}



@dataclass(frozen=True)
class LogEvent:
    """One log line: when (ms since the epoch), where (group and stream), what, and its id in the group."""

    timestamp: int
    group: str
    stream: str
    message: str
    event_id: str

    @property
    def time(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp / 1000, timezone.utc)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def text(self) -> str:
        """`timestamp stream message`, the message without its trailing newline."""
        return f"{self.time} {self.stream} {self.message.rstrip(chr(10))}"

    def to_json(self) -> dict:
        return {
            "timestamp": self.time,
            "group": self.group,
            "stream": self.stream,
            "message": self.message.rstrip("\n"),
            "id": self.event_id,
        }


@dataclass(frozen=True)
class LogSource:
    """Where one function's or run's events are."""

    id: str  # the artifact id
    name: str  # the function or job name
    groups: tuple[str, ...]
    stream_prefix: str | None  # a Glue run's id; None: every stream of the group
    start_ms: int | None  # None: from the first event
    run_id: str | None = None
    missing_hint: str = ""  # what to say when none of the groups exists


def parse_since(text: str, now: datetime) -> int:
    """`30s`, `15m`, `1h`, `2d` (before `now`) or an ISO 8601 time (UTC unless it says) -> ms since the epoch."""
    try:
        moment = now - timedelta(seconds=parse_duration(text))
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PkgError(
                f"--since {text!r} is neither a duration nor an ISO time",
                hint="use 30s, 15m, 1h, 2d, or a time such as 2026-01-31T08:00 (UTC unless it says +HH:MM)",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def merge(batches: Iterable[list[LogEvent]]) -> list[LogEvent]:
    """Events of several groups in one time order (stable: equal times keep their group's order)."""
    return list(heapq.merge(*(sorted(batch, key=_when) for batch in batches), key=_when))


def _when(event: LogEvent) -> int:
    return event.timestamp


def parse_target(text: str) -> ArtifactId:
    """`lambda/<function>`, `<glue service>/<job>` (or their artifact ids) -> the artifact id."""
    service, _, name = text.strip("/").partition("/")
    for prefix in ("function/", "job/"):
        name = name.removeprefix(prefix)
    if service == Service.EMR.value and NAME.match(name):
        raise PkgError(
            f"pkg logs does not read EMR runs ({text})",
            hint="pkg starts EMR runs without a CloudWatch monitoring configuration: EMR keeps their logs in its"
            " managed storage; open the run's Spark UI from EMR Studio or `aws emr-serverless"
            " get-dashboard-for-job-run`",
        )
    if service == Service.LAMBDA.value and NAME.match(name):
        return ArtifactId.function(name)
    if service in (Service.GLUE_PYTHON_SHELL.value, Service.GLUE_SPARK.value) and NAME.match(name):
        return ArtifactId.job(service, name)
    raise PkgError(
        f"'{text}' does not name a function or a Glue job",
        hint="use lambda/<function>, glue_python_shell/<job> or glue_spark/<job>",
    )


def newest_glue_run(aws: AwsSession, name: str, stage: str) -> dict | None:
    """The job's newest run (GetJobRuns lists newest first), or None before its first run."""
    client = aws.client("glue")
    try:
        runs = client.get_job_runs(JobName=name, MaxResults=1).get("JobRuns", [])
    except client.exceptions.EntityNotFoundException:
        raise PkgError(
            f"there is no Glue job {name} in stage '{stage}'", hint=f"publish it: `pkg publish --stage {stage}`"
        ) from None
    return runs[0] if runs else None


def stage_log_source(
    config, stage: str, aws: AwsSession, artifact: ArtifactId, start: int | None, run_id: str | None, now: datetime
) -> LogSource:
    """Where the logs of `artifact` (parse_target) in `stage` are, and from when (`start`, ms since the epoch).

    By default a function's last LAMBDA_SINCE, and a Glue run from its beginning (of its newest run unless
    `run_id` says which).
    """
    name = resource_name(config.project, stage, artifact.short_name)
    if artifact.service is Service.LAMBDA:
        if run_id:
            raise PkgError("a Lambda function has no runs to choose from", hint="pick the time with --since")
        hint = (
            f"{name} has not been invoked yet (Lambda makes the group on the first invocation),"
            f" or it is not in stage '{stage}': check --stage"
        )
        return LogSource(str(artifact), name, (f"/aws/lambda/{name}",), None, start or parse_since(LAMBDA_SINCE, now),
                         missing_hint=hint)  # fmt: skip
    if run_id is None:
        with aws_errors(name, RETRY_LOGS):
            run = newest_glue_run(aws, name, stage)
        if run is None:
            raise PkgError(
                f"{name} has no runs yet (stage '{stage}')",
                hint=f"start one with `pkg run {artifact.service}/{artifact.short_name} --stage {stage}`",
            )
        run_id = run["Id"]
    hint = f"run {run_id} of {name} has written no logs yet, or it is not a run of stage '{stage}'"
    return LogSource(str(artifact), name, GLUE_LOG_GROUPS[artifact.service], run_id, start, run_id, hint)


def read_events(aws: AwsSession, source: LogSource, start_ms: int | None) -> list[LogEvent]:
    """Every event of the source from `start_ms`, merged by time; a PkgError when none of its groups exists."""
    client = aws.client("logs")
    batches = []
    for group in source.groups:
        query: dict = {"logGroupName": group}
        if start_ms is not None:
            query["startTime"] = start_ms
        if source.stream_prefix:
            query["logStreamNamePrefix"] = source.stream_prefix
        events: list[LogEvent] = []
        try:
            for page in client.get_paginator("filter_log_events").paginate(**query):
                events += [
                    LogEvent(e["timestamp"], group, e["logStreamName"], e["message"], e["eventId"])
                    for e in page.get("events", [])
                ]
        except client.exceptions.ResourceNotFoundException:
            continue  # a Glue run with no errors may never make its error group
        batches.append(events)
    if not batches:
        groups = " and ".join(source.groups)
        raise PkgError(f"no log group {groups} for {source.id}", hint=source.missing_hint)
    return merge(batches)


def follow(
    fetch: Callable[[int | None], list[LogEvent]],
    emit: Callable[[LogEvent], None],
    start_ms: int | None,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = POLL_SECONDS,
) -> None:
    """Show what `fetch(start)` returns, then poll it for new events until interrupted (KeyboardInterrupt).

    Each poll starts LATE_MS before the newest event seen, and an event already shown (by group
    and id) is not shown again.
    """
    seen: dict[tuple[str, str], int] = {}
    since = start_ms
    while True:
        for event in fetch(since):
            key = (event.group, event.event_id)
            if key not in seen:
                seen[key] = event.timestamp
                emit(event)
        if seen:
            since = max(start_ms or 0, max(seen.values()) - LATE_MS)
            seen = {key: stamp for key, stamp in seen.items() if stamp >= since}
        sleep(interval)
