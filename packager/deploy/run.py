"""`pkg run <service>/<job>`: start one run of a published Glue or EMR job, and optionally wait for it.

What runs is what `pkg publish` recorded for the stage: the Glue job's name, or the EMR run
specification (EMR Serverless application, or EMR on EC2 cluster). Waiting always has a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from packager.deploy.actions import Target
from packager.deploy.aws import aws_errors, open_session
from packager.deploy.records import EmrRunRow, GlueJobRow, without_removed
from packager.deploy.trust import StageScope, trusted_run_row
from packager.errors import ConfigError, PkgError, RunTimeoutError
from packager.model import JOB_SERVICES, ArtifactId, ArtifactIdError, Role, Service

__all__ = ["DEFAULT_TIMEOUT", "RunReport", "RunTimeoutError", "run_job"]

DEFAULT_TIMEOUT = 3600.0
POLL_SECONDS = 5.0
START_AGAIN = "run `pkg run` again"
OnRunState = Callable[["RunReport"], None]
STILL_RUNNING = "the run may go on in AWS: check it in the console, or wait with `pkg run --wait` on a new run"


@dataclass
class RunReport:
    """One started run: where, with what parameters, and its last seen state."""

    id: str
    name: str
    platform: str  # glue | emr-serverless | emr-cluster
    run_id: str
    parameters: dict
    state: str = "STARTED"
    finished: bool = False
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "platform": self.platform,
            "run_id": self.run_id,
            "state": self.state,
            "finished": self.finished,
            "parameters": self.parameters,
        }


def resolve_job_id(name: str) -> str:
    """`glue_spark/orders` or `glue_spark/job/orders` -> `glue_spark/job/orders`."""
    service, _, rest = name.partition("/")
    try:
        artifact = ArtifactId.parse(name) if "/" in rest else ArtifactId.job(service, rest)
    except (ArtifactIdError, ValueError):
        artifact = None
    if artifact is not None and artifact.service in JOB_SERVICES and artifact.role is Role.JOB and artifact.name:
        return str(artifact)
    raise PkgError(
        f"'{name}' does not name a Glue or EMR job",
        hint="use <service>/<job>, e.g. glue_spark/orders_by_day (services: " + ", ".join(JOB_SERVICES) + ")",
    )


def glue_arguments(args: list[str]) -> dict[str, str]:
    """`--key value` pairs (as Glue passes them to the script) -> StartJobRun's Arguments."""
    if len(args) % 2 or any(not key.startswith("--") for key in args[::2]):
        raise PkgError(
            f"Glue job arguments come as --key value pairs, got: {' '.join(args)}",
            hint="e.g. pkg run glue_spark/orders_by_day --stage dev -- --source s3://in/ --target s3://out/",
        )
    return dict(zip(args[::2], args[1::2], strict=True))


def start_run(
    aws, recorded: dict, artifact_id: str, stage: str, args: list[str], scope: StageScope | None = None
) -> RunReport:
    """Start one run of a published job; `recorded` is the stage's index rows, checked against `scope`."""
    if scope is not None:
        trusted_run_row(recorded, artifact_id, scope)
    row = recorded.get(artifact_id)
    if row is None:
        raise PkgError(
            f"{artifact_id} is not published to stage '{stage}'",
            hint=f"run `pkg publish --stage {stage}` first",
        )
    if ArtifactId.parse(artifact_id).service is not Service.EMR:
        from packager.deploy.glue import start_glue_run

        name = GlueJobRow.from_details(row.details).name
        glue_args = glue_arguments(args)
        run_id = start_glue_run(aws, name, glue_args)
        return RunReport(artifact_id, name, "glue", run_id, {"JobName": name, "Arguments": glue_args})
    from packager.deploy import emr

    run_row = EmrRunRow.from_details(row.details)
    name, spec = run_row.name, run_row.spec
    arguments = [*spec["arguments"], *args]
    if spec.get("application_id"):
        if not spec.get("execution_role"):
            raise ConfigError(
                f"{artifact_id}: EMR Serverless needs a job runtime role: set tool.pkg.emr.execution_role",
                hint="then `pkg publish` records it in the run specification",
            )
        run_id = emr.start_serverless_run(aws, name, spec, arguments)
        parameters = {
            "applicationId": spec["application_id"],
            "jobDriver": emr.serverless_job_driver(spec, arguments),
        }
        return RunReport(artifact_id, name, "emr-serverless", run_id, parameters)
    if spec.get("cluster_id"):
        step_id = emr.start_cluster_step(aws, name, spec, arguments)
        parameters = {"JobFlowId": spec["cluster_id"], **emr.cluster_step(name, spec, arguments)}
        return RunReport(artifact_id, name, "emr-cluster", step_id, parameters)
    raise ConfigError(
        f"{artifact_id}: no EMR application or cluster to run on",
        hint="set tool.pkg.emr.application_id (EMR Serverless) or tool.pkg.emr.cluster_id (EMR on EC2),"
        " per stage if they differ, then `pkg publish`",
    )


def poll(aws, report: RunReport, spec: dict | None) -> None:
    """Refresh `report.state` / `report.finished` with one read call (`spec`: an EMR run's recorded specification)."""
    if report.platform == "glue":
        from packager.deploy.glue import glue_run_state

        report.state, report.finished, report.details = glue_run_state(aws, report.name, report.run_id)
    elif report.platform == "emr-serverless":
        from packager.deploy.emr import serverless_run_state

        report.state, report.finished, report.details = serverless_run_state(aws, spec or {}, report.run_id)
    else:
        from packager.deploy.emr import cluster_step_state

        report.state, report.finished, report.details = cluster_step_state(aws, spec or {}, report.run_id)


def wait_for(
    aws,
    report: RunReport,
    spec: dict | None,
    timeout: float,
    interval: float = POLL_SECONDS,
    on_state: OnRunState | None = None,
) -> None:
    """Poll until the run finishes; RunTimeoutError after `timeout` seconds (the run goes on).

    `on_state` hears of each state change as it is seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = report.state
        poll(aws, report, spec)
        if on_state and report.state != seen:
            on_state(report)
        if report.finished:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunTimeoutError(
                f"{report.id}: run {report.run_id} still {report.state} after {timeout:g} s",
                hint="it goes on in AWS; wait longer with --timeout, or check it in the console",
            )
        time.sleep(min(interval, remaining))


def run_job(
    ws,
    stage: str,
    name: str,
    args: list[str],
    wait: bool,
    timeout: float,
    profile=None,
    region=None,
    on_state: OnRunState | None = None,
) -> RunReport:
    """Start (and with `wait`, follow) one run of a published job of `stage`; AWS errors end as PkgErrors.

    With `wait`, `on_state` hears of the run once started (its id) and of each state change after.
    """
    artifact_id = resolve_job_id(name)
    aws = open_session(stage, ws.config.stage(stage), profile, region)
    target = Target(aws.account, aws.region, stage)
    recorded = without_removed(ws.store.index.published(target.account, target.region, stage))
    with aws_errors(artifact_id, START_AGAIN):
        report = start_run(aws, recorded, artifact_id, stage, list(args), StageScope.of(ws.config, target))
    if wait:
        if on_state:
            on_state(report)
        details = recorded[artifact_id].details
        spec = EmrRunRow.from_details(details).spec if report.platform != "glue" else None
        with aws_errors(f"{artifact_id} run {report.run_id}", STILL_RUNNING):
            interval = min(POLL_SECONDS, max(timeout / 10, 0.2))
            wait_for(aws, report, spec, timeout, interval=interval, on_state=on_state)
    return report
