"""EMR runs from a recorded run specification: EMR Serverless StartJobRun, or a step on an EMR cluster.

EMR has no job resource: publishing uploads the artifacts and records the specification
(packager/deploy/jobs_plan.py); these calls start and follow runs of it. AWS errors are left to
the caller's boundary (`aws_errors` in packager/deploy/run.py).
"""

from __future__ import annotations

from packager.deploy.aws import AwsSession

SERVERLESS_FINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
STEP_FINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})


def spark_submit_options(spec: dict, serverless: bool) -> list[str]:
    """`--py-files` and `--conf` options of a run; driver settings only for the mode that reads them."""
    options: list[str] = []
    if spec["py_files"]:
        options += ["--py-files", ",".join(spec["py_files"])]
    for key, value in spec["conf"].items():
        if key.startswith("spark.emr-serverless.") and not serverless:
            continue
        if key.startswith("spark.yarn.") and serverless:
            continue
        options += ["--conf", f"{key}={value}"]
    extra = spec.get("spark_submit_parameters") or ""
    return options + extra.split()


def serverless_job_driver(spec: dict, arguments: list[str]) -> dict:
    """StartJobRun's jobDriver for EMR Serverless."""
    return {
        "sparkSubmit": {
            "entryPoint": spec["entry_point"],
            "entryPointArguments": list(arguments),
            "sparkSubmitParameters": " ".join(spark_submit_options(spec, serverless=True)),
        }
    }


def cluster_step(name: str, spec: dict, arguments: list[str]) -> dict:
    """AddJobFlowSteps' step: command-runner.jar running spark-submit."""
    args = ["spark-submit", "--deploy-mode", spec["deploy_mode"], *spark_submit_options(spec, serverless=False)]
    return {
        "Name": name,
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": [*args, spec["entry_point"], *arguments]},
    }


def start_serverless_run(aws: AwsSession, name: str, spec: dict, arguments: list[str]) -> str:
    """EMR Serverless StartJobRun on the configured application; the job run id."""
    answer = aws.client("emr-serverless").start_job_run(
        applicationId=spec["application_id"],
        executionRoleArn=spec["execution_role"],
        name=name,
        jobDriver=serverless_job_driver(spec, arguments),
    )
    return answer["jobRunId"]


def serverless_run_state(aws: AwsSession, spec: dict, run_id: str) -> tuple[str, bool, dict]:
    """(state, finished, the run as GetJobRun reports it)."""
    run = aws.client("emr-serverless").get_job_run(applicationId=spec["application_id"], jobRunId=run_id)["jobRun"]
    return run["state"], run["state"] in SERVERLESS_FINAL_STATES, run


def start_cluster_step(aws: AwsSession, name: str, spec: dict, arguments: list[str]) -> str:
    """AddJobFlowSteps on the configured cluster; the step id."""
    steps = [cluster_step(name, spec, arguments)]
    answer = aws.client("emr").add_job_flow_steps(JobFlowId=spec["cluster_id"], Steps=steps)
    return answer["StepIds"][0]


def cluster_step_state(aws: AwsSession, spec: dict, step_id: str) -> tuple[str, bool, dict]:
    """(state, finished, the step as DescribeStep reports it)."""
    step = aws.client("emr").describe_step(ClusterId=spec["cluster_id"], StepId=step_id)["Step"]
    state = step["Status"]["State"]
    return state, state in STEP_FINAL_STATES, step
