"""Glue and the artifact bucket for jobs: the calls the job planner's actions name, and the reads it needs.

`JobLiveStateAws` answers the planner (GetJob, HeadObject: never a mutating call);
`call_job_action` performs one job action (put_object, create_job, update_job) for the executor
and returns what the index records once AWS confirmed it.
"""

from __future__ import annotations

from packager.deploy.jobs_plan import CREATE_JOB, PUT_OBJECT, TAG_RESOURCE, UNTAG_RESOURCE, UPDATE_JOB
from packager.deploy.lambda_plan import Action
from packager.deploy.aws import AwsSession, explain_error, object_exists

# Glue job run states that end a run (GetJobRun's JobRunState).
GLUE_FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})


class JobLiveStateAws:
    """GetJob and HeadObject, for the job planner."""

    def __init__(self, aws: AwsSession):
        self.aws = aws

    def glue_job(self, name: str) -> dict | None:
        client = self.aws.client("glue")
        try:
            return client.get_job(JobName=name)["Job"]
        except client.exceptions.EntityNotFoundException:
            return None
        except Exception as error:
            raise explain_error(error, "GetJob", name) from None

    def glue_tags(self, arn: str) -> dict:
        try:
            return dict(sorted(self.aws.client("glue").get_tags(ResourceArn=arn).get("Tags", {}).items()))
        except Exception as error:
            raise explain_error(error, "GetTags", arn) from None

    def object_exists(self, bucket: str, key: str) -> bool:
        return object_exists(self.aws, bucket, key)


def _body(params: dict) -> bytes:
    """The bytes to upload: the built file, or one wheel inside a built wheelhouse zip."""
    if params.get("member"):
        import zipfile

        with zipfile.ZipFile(params["path"]) as archive:
            return archive.read(params["member"])
    with open(params["path"], "rb") as stream:
        return stream.read()


def call_job_action(aws: AwsSession, action: Action) -> dict:
    """Perform one job action; returns `{"details": ...}`, what the index row of its resource now says."""
    params = action.params
    if action.action == PUT_OBJECT:
        aws.client("s3").put_object(Bucket=params["Bucket"], Key=params["Key"], Body=_body(params))
        return {"details": {"bucket": params["Bucket"], "key": params["Key"]}}
    glue = aws.client("glue")
    if action.action == CREATE_JOB:
        glue.create_job(**params)
        definition = {key: value for key, value in params.items() if key not in ("Name", "Tags")}
        return {"details": {"name": action.name, "definition": definition, "tags": params.get("Tags", {})}}
    if action.action == UPDATE_JOB:
        glue.update_job(**params)
        return {"details": {"name": action.name, "definition": params["JobUpdate"]}}
    if action.action == TAG_RESOURCE:
        glue.tag_resource(**params)
        return {"details": action.record}
    if action.action == UNTAG_RESOURCE:
        glue.untag_resource(**params)
        return {"details": action.record}
    raise ValueError(f"not a job action: {action.action}")


def start_glue_run(aws: AwsSession, name: str, arguments: dict[str, str]) -> str:
    """StartJobRun; the run id."""
    try:
        return aws.client("glue").start_job_run(JobName=name, Arguments=arguments)["JobRunId"]
    except Exception as error:
        raise explain_error(error, "StartJobRun", name) from None


def glue_run_state(aws: AwsSession, name: str, run_id: str) -> tuple[str, bool, dict]:
    """(state, finished, the run as GetJobRun reports it)."""
    run = aws.client("glue").get_job_run(JobName=name, RunId=run_id)["JobRun"]
    return run["JobRunState"], run["JobRunState"] in GLUE_FINAL_STATES, run
