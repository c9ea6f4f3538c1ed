"""`[tool.pkg]` in the pipelines repo's pyproject.toml: finding the repo, parsing and validating.

The schema is data: each table lists its keys and their types, so an unknown key or a wrong
type is an error that names the key. Settings resolve in layers: service defaults, the stage's
overrides, the function's overrides, and the stage's overrides of that function.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Any

from packager.errors import ConfigError
from packager.runtimes import LAMBDA_ARCHITECTURES, LAMBDA_RUNTIMES


class Table(dict):
    """A TOML table schema: key -> type, or a nested Table / NamedTables."""


@dataclass(frozen=True)
class NamedTables:
    """A table whose keys are user-chosen names (functions, stages), each holding `schema`."""

    schema: Table


StrMap = dict[str, str]

# Settings a Lambda function can take, as defaults or as per-function / per-stage overrides.
LAMBDA_SETTINGS = Table(
    runtime=str,
    architecture=str,
    role=str,
    memory=int,
    timeout=int,
    environment=StrMap,
    tags=StrMap,
    description=str,
)

LAMBDA_DEFAULTS: dict[str, Any] = {
    "runtime": "python3.12",
    "architecture": "x86_64",
    "memory": 128,
    "timeout": 3,
    "environment": {},
    "tags": {},
    "description": "",
}

LAMBDA_TABLE = Table(LAMBDA_SETTINGS, functions=NamedTables(LAMBDA_SETTINGS))

STAGE_TABLE = Table(
    region=str,
    account=str,
    profile=str,
    artifact_bucket=str,
    **{"lambda": LAMBDA_TABLE},
)

ROOT_TABLE = Table(
    project=str,
    artifact_bucket=str,
    cache_uri=str,
    stages=NamedTables(STAGE_TABLE),
    **{"lambda": LAMBDA_TABLE},
)


def _type_name(expected: Any) -> str:
    if expected is StrMap:
        return "a table of strings"
    if isinstance(expected, (Table, NamedTables)):
        return "a table"
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number", list: "an array"}.get(
        expected, str(expected)
    )


def validate(value: Any, schema: Any, where: str) -> None:
    """Raise ConfigError naming the first key that is unknown or of the wrong type."""
    if isinstance(schema, NamedTables):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        for name, entry in value.items():
            validate(entry, schema.schema, f"{where}.{name}")
        return
    if isinstance(schema, Table):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        for key, entry in value.items():
            if key not in schema:
                known = ", ".join(sorted(schema))
                raise ConfigError(f"{where}: unknown key '{key}'", hint=f"known keys: {known}")
            validate(entry, schema[key], f"{where}.{key}")
        return
    if schema is StrMap:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{where} must be {_type_name(schema)}, got {value!r}")
        return
    # bool is an int in Python; TOML keeps them apart, so do we.
    if not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {_type_name(schema)}, got {type(value).__name__} {value!r}")


def find_root(start: str) -> str:
    """The nearest folder at or above `start` whose pyproject.toml has a [tool.pkg] table."""
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            with open(candidate, "rb") as stream:
                if b"[tool.pkg" in stream.read():
                    return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ConfigError(
                f"no pkg repository found at or above {os.path.abspath(start)}",
                hint="run pkg inside a repository whose pyproject.toml has a [tool.pkg] table, or pass --root DIR",
            )
        folder = parent


@dataclass
class Config:
    """The validated `[tool.pkg]` table of one repository."""

    root: str
    raw: dict

    @property
    def project(self) -> str:
        return self.raw.get("project") or os.path.basename(self.root)

    def stage(self, name: str) -> dict:
        stages = self.raw.get("stages", {})
        if name not in stages:
            known = ", ".join(sorted(stages)) or "none configured"
            raise ConfigError(f"unknown stage '{name}'", hint=f"stages in [tool.pkg.stages]: {known}")
        return stages[name]

    def lambda_settings(self, function: str, stage: str | None = None) -> dict[str, Any]:
        """The resolved settings of one Lambda function (defaults < stage < function < stage's function)."""
        layers = [LAMBDA_DEFAULTS, self.raw.get("lambda", {})]
        staged = self.stage(stage).get("lambda", {}) if stage else {}
        layers.append(staged)
        layers.append(self.raw.get("lambda", {}).get("functions", {}).get(function, {}))
        layers.append(staged.get("functions", {}).get(function, {}))
        settings: dict[str, Any] = {}
        for layer in layers:
            for key, value in layer.items():
                if key == "functions":
                    continue
                if isinstance(value, dict):
                    settings[key] = {**settings.get(key, {}), **value}
                else:
                    settings[key] = value
        return settings


def _check_values(raw: dict) -> None:
    """Values the types alone don't catch: runtime and architecture names, memory and timeout ranges."""

    def check(table: dict, where: str) -> None:
        runtime = table.get("runtime")
        if runtime is not None and runtime not in LAMBDA_RUNTIMES:
            raise ConfigError(
                f"{where}.runtime: unsupported runtime '{runtime}'",
                hint="one of " + ", ".join(LAMBDA_RUNTIMES),
            )
        arch = table.get("architecture")
        if arch is not None and arch not in LAMBDA_ARCHITECTURES:
            raise ConfigError(
                f"{where}.architecture: unsupported architecture '{arch}'",
                hint="one of " + ", ".join(LAMBDA_ARCHITECTURES),
            )
        memory = table.get("memory")
        if memory is not None and not 128 <= memory <= 10240:
            raise ConfigError(f"{where}.memory must be between 128 and 10240 MB, got {memory}")
        timeout = table.get("timeout")
        if timeout is not None and not 1 <= timeout <= 900:
            raise ConfigError(f"{where}.timeout must be between 1 and 900 seconds, got {timeout}")
        for name, overrides in table.get("functions", {}).items():
            check(overrides, f"{where}.functions.{name}")

    check(raw.get("lambda", {}), "tool.pkg.lambda")
    for stage, table in raw.get("stages", {}).items():
        check(table.get("lambda", {}), f"tool.pkg.stages.{stage}.lambda")


def load_config(root: str) -> Config:
    """Parse and validate `[tool.pkg]` of the repository at `root`."""
    path = os.path.join(root, "pyproject.toml")
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found", hint="pass --root DIR pointing at a pipelines repository") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    raw = document.get("tool", {}).get("pkg", {})
    validate(raw, ROOT_TABLE, "tool.pkg")
    _check_values(raw)
    return Config(root=root, raw=raw)
