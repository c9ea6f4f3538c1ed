"""Read-only views of what is deployed, for the planners: one `LiveState` protocol, one AWS implementation.

The planners only ever read through a `LiveState`; tests give them an in-memory one. `AwsLiveState`
answers with GetFunction, ListLayerVersions, HeadObject, GetJob and GetTags: never a mutating call.
"""

from __future__ import annotations

from typing import Protocol

from packager.deploy.aws import AwsSession, explain_error, object_exists
from packager.deploy.records import AliasState, FunctionState, version_digest


class LiveState(Protocol):
    """What the planners may read from AWS."""

    def function(self, name: str) -> FunctionState | None:
        """A function's managed state, or None if absent."""

    def prefetch_functions(self, names: list[str]) -> None:
        """Read many functions at once, ahead of `function` calls (a hint; may do nothing)."""

    def layer_versions(self, name: str) -> list[dict]:
        """[{"arn", "version", "description"}] of one layer, newest first."""

    def object_exists(self, bucket: str, key: str) -> bool:
        """Whether s3://bucket/key exists."""

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists (HeadBucket)."""

    def glue_job(self, name: str) -> dict | None:
        """GetJob's `Job`, or None if there is no such job."""

    def glue_tags(self, arn: str) -> dict:
        """GetTags of a Glue job."""

    def function_alias(self, name: str, alias: str) -> AliasState | None:
        """Where a function's alias points (with that version's digest), or None without that alias."""


class AwsLiveState:
    """The planners' reads, from AWS, each answer kept for the rest of the plan."""

    def __init__(self, aws: AwsSession, jobs: int = 8):
        self.aws = aws
        self.jobs = jobs
        self._layer_versions: dict[str, list[dict]] = {}
        self._functions: dict[str, FunctionState | None] = {}

    def prefetch_functions(self, names: list[str]) -> None:
        """GetFunction has no batch form and a hundred in a row are slow: read them in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        todo = [name for name in names if name not in self._functions]
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(todo)))) as pool:
            for name, state in zip(todo, pool.map(self._get_function, todo), strict=True):
                self._functions[name] = state

    def function(self, name: str) -> FunctionState | None:
        if name not in self._functions:
            self._functions[name] = self._get_function(name)
        return self._functions[name]

    def _get_function(self, name: str) -> FunctionState | None:
        client = self.aws.client("lambda")
        try:
            answer = client.get_function(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            return None
        except Exception as error:
            raise explain_error(error, "GetFunction", name) from None
        return FunctionState.from_configuration(answer["Configuration"], answer.get("Tags"))

    def layer_versions(self, name: str) -> list[dict]:
        if name not in self._layer_versions:
            client = self.aws.client("lambda")
            versions = []
            try:
                for page in client.get_paginator("list_layer_versions").paginate(LayerName=name):
                    versions += [
                        {"arn": v["LayerVersionArn"], "version": v["Version"], "description": v.get("Description", "")}
                        for v in page["LayerVersions"]
                    ]
            except client.exceptions.ResourceNotFoundException:
                versions = []
            except Exception as error:
                raise explain_error(error, "ListLayerVersions", name) from None
            self._layer_versions[name] = sorted(versions, key=lambda v: -v["version"])
        return self._layer_versions[name]

    def object_exists(self, bucket: str, key: str) -> bool:
        return object_exists(self.aws, bucket, key)

    def bucket_exists(self, bucket: str) -> bool:
        import botocore.exceptions

        try:
            self.aws.client("s3").head_bucket(Bucket=bucket)
            return True
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise explain_error(error, "HeadBucket", f"s3://{bucket}") from None

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

    # -- what a stage has, for removals and `pkg destroy` (packager/deploy/removal.py, destroy.py) --------

    def stage_functions(self, prefix: str) -> dict[str, str]:
        """Name -> ARN of the region's functions whose name starts with `prefix` (ListFunctions)."""
        client = self.aws.client("lambda")
        found: dict[str, str] = {}
        try:
            for page in client.get_paginator("list_functions").paginate():
                for function in page["Functions"]:
                    if function["FunctionName"].startswith(prefix):
                        found[function["FunctionName"]] = function["FunctionArn"]
        except Exception as error:
            raise explain_error(error, "ListFunctions", prefix + "*") from None
        return found

    def function_tags(self, arn: str) -> dict | None:
        """A function's tags (ListTags), or None when there is no such function."""
        client = self.aws.client("lambda")
        try:
            return dict(client.list_tags(Resource=arn).get("Tags", {}))
        except client.exceptions.ResourceNotFoundException:
            return None
        except Exception as error:
            raise explain_error(error, "ListTags", arn) from None

    def tagged_glue_jobs(self, tags: dict[str, str]) -> list[str]:
        """Names of the Glue jobs carrying every tag of `tags` (ListJobs with its tag filter)."""
        client = self.aws.client("glue")
        try:
            return [name for page in client.get_paginator("list_jobs").paginate(Tags=tags) for name in page["JobNames"]]
        except Exception as error:
            raise explain_error(error, "ListJobs", ", ".join(f"{k}={v}" for k, v in tags.items())) from None

    def stage_layers(self, prefix: str) -> list[str]:
        """Names of the region's layers that start with `prefix` (ListLayers)."""
        client = self.aws.client("lambda")
        try:
            return [
                layer["LayerName"]
                for page in client.get_paginator("list_layers").paginate()
                for layer in page["Layers"]
                if layer["LayerName"].startswith(prefix)
            ]
        except Exception as error:
            raise explain_error(error, "ListLayers", prefix + "*") from None

    def object_keys(self, bucket: str, prefix: str) -> set[str]:
        """The keys under `prefix` in `bucket` (ListObjectsV2)."""
        try:
            paginator = self.aws.client("s3").get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
            return {obj["Key"] for page in pages for obj in page.get("Contents", [])}
        except Exception as error:
            raise explain_error(error, "ListObjectsV2", f"s3://{bucket}/{prefix}") from None

    def glue_jobs(self) -> list[dict]:
        """Every Glue job of the region as GetJobs reports it."""
        try:
            paginator = self.aws.client("glue").get_paginator("get_jobs")
            return [job for page in paginator.paginate() for job in page.get("Jobs", [])]
        except Exception as error:
            raise explain_error(error, "GetJobs", "*") from None
    def function_alias(self, name: str, alias: str) -> AliasState | None:
        """GetAlias, then GetFunctionConfiguration of its version (for the digest of what it runs)."""
        client = self.aws.client("lambda")
        try:
            version = client.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
            answer = client.get_function_configuration(FunctionName=name, Qualifier=version)
        except client.exceptions.ResourceNotFoundException:
            return None
        except Exception as error:
            raise explain_error(error, "GetAlias", f"{name}:{alias}") from None
        return AliasState(alias, version, version_digest(FunctionState.from_configuration(answer, None)))
