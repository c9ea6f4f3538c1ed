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
