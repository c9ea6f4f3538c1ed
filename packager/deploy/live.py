"""Read-only views of what is deployed, in the shapes the planner compares (packager.deploy.lambda_plan.LiveState)."""

from __future__ import annotations

from packager.deploy.aws import AwsSession, explain_error, object_exists


def function_state(configuration: dict, tags: dict | None) -> dict:
    """A GetFunction answer in the planner's shape (the keys pkg manages, nothing else)."""
    return {
        "arn": configuration["FunctionArn"],
        "code_sha256": configuration["CodeSha256"],
        "architecture": (configuration.get("Architectures") or ["x86_64"])[0],
        "configuration": {
            "Role": configuration.get("Role"),
            "Handler": configuration.get("Handler"),
            "Runtime": configuration.get("Runtime"),
            "MemorySize": configuration.get("MemorySize"),
            "Timeout": configuration.get("Timeout"),
            "Description": configuration.get("Description", ""),
            "Environment": {
                "Variables": dict(sorted((configuration.get("Environment") or {}).get("Variables", {}).items()))
            },
        },
        "layers": [layer["Arn"] for layer in configuration.get("Layers", [])],
        # aws:* tags belong to AWS services (e.g. CloudFormation) and can't be changed.
        "tags": dict(sorted((k, v) for k, v in (tags or {}).items() if not k.startswith("aws:"))),
    }


class LambdaLiveState:
    """GetFunction, ListLayerVersions and HeadObject, for the planner; never a mutating call."""

    def __init__(self, aws: AwsSession, jobs: int = 8):
        self.aws = aws
        self.jobs = jobs
        self._layer_versions: dict[str, list[dict]] = {}
        self._functions: dict[str, dict | None] = {}

    def prefetch_functions(self, names: list[str]) -> None:
        """Read many functions at once (GetFunction has no batch form; a hundred in a row is slow)."""
        from concurrent.futures import ThreadPoolExecutor

        todo = [name for name in names if name not in self._functions]
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(todo)))) as pool:
            for name, state in zip(todo, pool.map(self._get_function, todo)):
                self._functions[name] = state

    def function(self, name: str) -> dict | None:
        if name not in self._functions:
            self._functions[name] = self._get_function(name)
        return self._functions[name]

    def _get_function(self, name: str) -> dict | None:
        client = self.aws.client("lambda")
        try:
            answer = client.get_function(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            return None
        except Exception as error:
            raise explain_error(error, "GetFunction", name) from None
        return function_state(answer["Configuration"], answer.get("Tags"))

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
