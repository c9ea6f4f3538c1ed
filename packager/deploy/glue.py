"""Glue job runs for `pkg run`: start one, read its state (the job itself is published by handlers.py).

AWS errors are left to the caller's boundary (`aws_errors` in packager/deploy/run.py).
"""

from __future__ import annotations

from packager.deploy.aws import AwsSession

# Glue job run states that end a run (GetJobRun's JobRunState).
GLUE_FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})


def start_glue_run(aws: AwsSession, name: str, arguments: dict[str, str]) -> str:
    """StartJobRun; the run id."""
    return aws.client("glue").start_job_run(JobName=name, Arguments=arguments)["JobRunId"]


def glue_run_state(aws: AwsSession, name: str, run_id: str) -> tuple[str, bool, dict]:
    """(state, finished, the run as GetJobRun reports it)."""
    run = aws.client("glue").get_job_run(JobName=name, RunId=run_id)["JobRun"]
    return run["JobRunState"], run["JobRunState"] in GLUE_FINAL_STATES, run
