"""`[tool.pkg]` in the pipelines repo's pyproject.toml: finding the repo, parsing and validating.

The schema is data: each table lists its keys and their types, so an unknown key or a wrong
type is an error that names the key. Settings resolve in layers: service defaults, the stage's
overrides, the function's overrides, and the stage's overrides of that function.
"""

from __future__ import annotations

import keyword
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packager.errors import ConfigError
from packager.model import Service
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
    handler=str,  # the function in <name>.py that Lambda calls: Handler "<name>.<handler>"
    alias=str,  # the alias pkg moves to each published version (packager/deploy/versions.py)
)

LAMBDA_DEFAULTS: dict[str, Any] = {
    "handler": "handler",
    "runtime": "python3.12",
    "architecture": "x86_64",
    "memory": 128,
    "timeout": 3,
    "environment": {},
    "tags": {},
    "description": "",
    "alias": "live",
}

LAMBDA_TABLE = Table(LAMBDA_SETTINGS, functions=NamedTables(LAMBDA_SETTINGS))

STAGE_TABLE = Table(
    cache_uri=str,
    **{name: str for name in ("cache_trust", "cache_signing_key", "cache_public_key")},  # packager/shared.py
    cache_push=bool,
    region=str,
    account=str,
    profile=str,
    artifact_bucket=str,
    deletion_protection=bool,  # deletions (removed sources, `pkg destroy`) need --allow-delete
    **{"lambda": LAMBDA_TABLE},
)

# [tool.pkg.dependencies]: how Lambda dependency layers are installed (packager/builders/lambda_deps.py).
# Build-time only, so not per stage; every key but `installer` is part of each dependency-set hash.
DEPENDENCIES_TABLE = Table(
    index_url=str,  # a team mirror instead of PyPI
    extra_index_urls=list,  # of strings
    find_links=list,  # of strings: folders (relative to the repo root) or URLs holding wheels
    no_index=bool,  # only find_links
    installer=str,  # "auto" (uv if installed, else pip), "uv" or "pip"
    skip_runtime_provided=bool,  # leave out boto3, botocore, ... unless pinned directly (default true)
)

ROOT_TABLE = Table(
    project=str,
    artifact_bucket=str,
    cache_uri=str,
    cache_max_index_bytes=int,  # the largest shared index pkg downloads (packager/shared.py)
    # Signed rows and read-only members (packager/shared.py, docs/shared-cache.md); also per stage.
    **{name: str for name in ("cache_trust", "cache_signing_key", "cache_public_key")},
    cache_push=bool,
    stages=NamedTables(STAGE_TABLE),
    dependencies=DEPENDENCIES_TABLE,
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
    if schema is float and isinstance(value, int) and not isinstance(value, bool):
        return  # TOML writes 1.0 as 1 just as often
    # bool is an int in Python; TOML keeps them apart, so do we.
    if not isinstance(value, schema) or (schema is int and isinstance(value, bool)):
        raise ConfigError(f"{where} must be {_type_name(schema)}, got {type(value).__name__} {value!r}")


def _merge(settings: dict[str, Any], layers: list[dict], members: str) -> dict[str, Any]:
    """Apply settings layers in order; tables (environment, tags) merge key by key; `members` is skipped."""
    for layer in layers:
        for key, value in layer.items():
            if key == members:
                continue
            if isinstance(value, dict):
                settings[key] = {**settings.get(key, {}), **value}
            else:
                settings[key] = value
    return settings


def _copied(settings: dict[str, Any]) -> dict[str, Any]:
    """A copy a caller may change without changing the cached base (tables and arrays too)."""
    return {key: type(value)(value) if isinstance(value, (dict, list)) else value for key, value in settings.items()}


@dataclass
class Config:
    """The validated `[tool.pkg]` table of one repository."""

    root: str
    raw: dict
    _bases: dict = field(default_factory=dict, repr=False)  # (service, stage) -> merged defaults

    @property
    def project(self) -> str:
        """`[tool.pkg] project`: the first part of every AWS name, so never guessed from the folder's name."""
        project = self.raw.get("project")
        if not project:
            raise ConfigError(
                f"{os.path.join(self.root, 'pyproject.toml')}: [tool.pkg] has no project name",
                hint='set project = "NAME" under [tool.pkg] (it starts every AWS name pkg gives);'
                " `pkg init` writes it in a new repository",
            )
        return project

    def stage(self, name: str) -> dict:
        stages = self.raw.get("stages", {})
        if name not in stages:
            known = ", ".join(sorted(stages)) or "none configured"
            raise ConfigError(f"unknown stage '{name}'", hint=f"stages in [tool.pkg.stages]: {known}")
        return stages[name]

    def resolve(self, service: Service | str, name: str, stage: str | None = None) -> dict[str, Any]:
        """The settings of one function or job: defaults < service < stage < its own < the stage's of it.

        `[tool.pkg.<service>]` holds the service's settings and its `functions` (Lambda) or `jobs`
        tables; `[tool.pkg.stages.<stage>.<service>]` the same, per stage.
        """
        service = Service(service)
        members = MEMBER_TABLES[service]
        own = self.raw.get(service, {})
        staged = self.stage(stage).get(service, {}) if stage else {}
        base = self._bases.get((service, stage))
        if base is None:  # the same for every function or job of the stage: merged once
            base = self._bases[service, stage] = _merge({}, [SERVICE_DEFAULTS[service], own, staged], members)
        overrides = [own.get(members, {}).get(name, {}), staged.get(members, {}).get(name, {})]
        settings = _merge(_copied(base), overrides, members)
        if service.is_job:
            _check_job_combination(service, name, settings)
        return settings

    def lambda_settings(self, function: str, stage: str | None = None) -> dict[str, Any]:
        """The resolved settings of one Lambda function (defaults < stage < function < stage's function)."""
        return self.resolve(Service.LAMBDA, function, stage)

    def lambda_handler(self, function: str) -> str:
        """The name of the function in `<function>.py` that Lambda calls (`handler` unless set; never per stage)."""
        # Read from the two tables that may set it (a stage may not): discovery asks for every function,
        # and resolving all of its settings for one key doubled the settings work of a build.
        table = self.raw.get("lambda", {})
        own = table.get("functions", {}).get(function, {})
        return own.get("handler") or table.get("handler") or LAMBDA_DEFAULTS["handler"]


# What AWS accepts for the publish settings (checked at load, so the error names the key).
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d\Z")
_ACCOUNT = re.compile(r"\d{12}\Z")
_ENVIRONMENT_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# Lambda's alias Name: letters, digits, '-' and '_', 1-128 characters, not only digits (that would be a version).
_ALIAS_NAME = re.compile(r"(?![0-9]+\Z)[a-zA-Z0-9_-]{1,128}\Z")


def _check_values(raw: dict) -> None:
    """Values the types alone don't catch: runtime and architecture names, ranges, ARNs, regions, accounts."""

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
        handler = table.get("handler")
        if handler is not None and (not handler.isidentifier() or keyword.iskeyword(handler)):
            raise ConfigError(
                f"{where}.handler: '{handler}' can't name a Python function",
                hint='the name of the function in each <name>.py that Lambda calls, e.g. handler = "main"',
            )
        memory = table.get("memory")
        if memory is not None and not 128 <= memory <= 10240:
            raise ConfigError(f"{where}.memory must be between 128 and 10240 MB, got {memory}")
        timeout = table.get("timeout")
        if timeout is not None and not 1 <= timeout <= 900:
            raise ConfigError(f"{where}.timeout must be between 1 and 900 seconds, got {timeout}")
        role = table.get("role")
        if role is not None and not _ROLE_ARN.match(role):
            raise ConfigError(
                f"{where}.role: '{role}' is not an IAM role ARN",
                hint='e.g. role = "arn:aws:iam::123456789012:role/datamart-lambda"',
            )
        for key in table.get("environment", {}):
            if not _ENVIRONMENT_KEY.match(key):
                raise ConfigError(
                    f"{where}.environment: '{key}' can't name a Lambda environment variable",
                    hint="start with a letter; then letters, digits and underscores",
                )
        alias = table.get("alias")
        if alias is not None and not _ALIAS_NAME.match(alias):
            raise ConfigError(
                f"{where}.alias: '{alias}' can't name a Lambda alias",
                hint='1-128 letters, digits, "-" or "_", not only digits (e.g. alias = "live")',
            )
        check_tags(table.get("tags", {}), where)
        for name, overrides in table.get("functions", {}).items():
            check(overrides, f"{where}.functions.{name}")

    check(raw.get("lambda", {}), "tool.pkg.lambda")
    for stage, table in raw.get("stages", {}).items():
        check(table.get("lambda", {}), f"tool.pkg.stages.{stage}.lambda")
        region, account = table.get("region"), table.get("account")
        if region is not None and not _REGION.match(region):
            raise ConfigError(f"tool.pkg.stages.{stage}.region: '{region}' is not an AWS region", hint="e.g. us-east-1")
        if account is not None and not _ACCOUNT.match(account):
            raise ConfigError(
                f"tool.pkg.stages.{stage}.account must be a 12-digit AWS account id, got '{account}'",
                hint='quote it: account = "123456789012"',
            )
        staged = table.get("lambda", {})
        for where, overrides in [
            ("", staged),
            *((f".functions.{n}", t) for n, t in staged.get("functions", {}).items()),
        ]:
            shaping = sorted(set(overrides) & {"runtime", "architecture", "handler"})
            if shaping:
                raise ConfigError(
                    f"tool.pkg.stages.{stage}.lambda{where}: '{shaping[0]}' can't differ per stage",
                    hint="it decides what `pkg build` builds and checks (code, dependency layers, the handler), which"
                    " knows no stage;"
                    " set it in [tool.pkg.lambda] or its functions table",
                )


# AWS's tag rules, the same for Lambda, Glue and EMR Serverless resources.
TAGS_PER_RESOURCE = 50
TAG_KEY_LENGTH = 128
TAG_VALUE_LENGTH = 256
# pkg's own tags on every function and Glue job (packager/deploy/naming.py): not the user's to set.
PKG_TAG_KEYS = ("pkg:project", "pkg:stage")
# The longest job timeout Glue accepts: 7 days.
GLUE_TIMEOUT_MAX_MINUTES = 10_080
# Integers the AWS APIs carry are 32-bit.
API_INT_MAX = 2**31 - 1
_RELEASE_LABEL = re.compile(r"emr-(spark-)?\d+\.\d+\.\d+\Z")


def check_tags(tags: dict, where: str) -> None:
    """AWS's tag rules: at most 50, keys 1-128 characters not starting with `aws:`, values up to 256."""
    if len(tags) > TAGS_PER_RESOURCE - len(PKG_TAG_KEYS):
        raise ConfigError(
            f"{where}.tags: {len(tags)} tags; AWS allows {TAGS_PER_RESOURCE} per resource,"
            f" and pkg sets {len(PKG_TAG_KEYS)} ({', '.join(PKG_TAG_KEYS)})"
        )
    for key, value in tags.items():
        if key in PKG_TAG_KEYS:
            raise ConfigError(
                f"{where}.tags: '{key}' is pkg's own tag (it marks what a publish may delete)",
                hint="choose another key",
            )
        if not 1 <= len(key) <= TAG_KEY_LENGTH:
            raise ConfigError(f"{where}.tags: key '{key}' must be 1-{TAG_KEY_LENGTH} characters")
        if key.lower().startswith("aws:"):
            raise ConfigError(f"{where}.tags: key '{key}' starts with 'aws:', which AWS reserves for itself")
        if len(value) > TAG_VALUE_LENGTH:
            raise ConfigError(f"{where}.tags.{key}: the value is {len(value)} characters; AWS takes {TAG_VALUE_LENGTH}")


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
    _check_job_values(raw)
    _check_include(raw)
    return Config(root=root, raw=raw)


# ---------------------------------------------------------------------------------------------
# Glue Python shell, Glue Spark and EMR jobs (issue 6): [tool.pkg.<service>] with `jobs.<name>`
# overrides, and the same under [tool.pkg.stages.<stage>.<service>].
# ---------------------------------------------------------------------------------------------

# Where platform wheels come from (a team mirror, or a local wheelhouse offline).
_INDEX_SETTINGS = dict(index_url=str, extra_index_urls=list, find_links=list, no_index=bool)
# Glue job fields pkg sets only when configured; unset, UpdateJob carries the live job's value over.
_GLUE_JOB_SETTINGS = dict(
    connections=list,
    security_configuration=str,
    max_concurrent_runs=int,
    notify_delay_after=int,  # minutes before a running job's delay notification
    non_overridable_arguments=StrMap,
    job_run_queuing=bool,  # JobRunQueuingEnabled: runs over a limit wait in Glue's queue instead of failing
)

GLUE_PYTHON_SHELL_SETTINGS = Table(
    role=str,
    glue_version=str,
    python_version=str,
    max_capacity=float,
    library_set=str,
    timeout=int,  # minutes, as Glue counts; unset: Glue's default
    max_retries=int,
    default_arguments=StrMap,
    tags=StrMap,
    description=str,
    **_GLUE_JOB_SETTINGS,
    **_INDEX_SETTINGS,
)
GLUE_SPARK_SETTINGS = Table(
    role=str,
    glue_version=str,
    worker_type=str,
    number_of_workers=int,
    timeout=int,
    max_retries=int,
    default_arguments=StrMap,
    tags=StrMap,
    description=str,
    execution_class=str,  # STANDARD or FLEX (Spark only)
    **_GLUE_JOB_SETTINGS,
    **_INDEX_SETTINGS,
)
EMR_SETTINGS = Table(
    release_label=str,
    python_version=str,
    architecture=str,
    application_id=str,  # EMR Serverless application: `pkg run` starts a job run there
    execution_role=str,  # EMR Serverless job runtime role
    cluster_id=str,  # EMR on EC2 cluster: `pkg run` adds a step there
    deploy_mode=str,
    spark_submit_parameters=str,
    arguments=list,
    tags=StrMap,
    **_INDEX_SETTINGS,
)
# Settings that shape built artifacts (the Python the dependencies are built for).
BUILD_SHAPING_JOB_SETTINGS = ("glue_version", "python_version", "release_label", "architecture")

JOB_SETTINGS = {
    Service.GLUE_PYTHON_SHELL: GLUE_PYTHON_SHELL_SETTINGS,
    Service.GLUE_SPARK: GLUE_SPARK_SETTINGS,
    Service.EMR: EMR_SETTINGS,
}

JOB_DEFAULTS: dict[Service, dict[str, Any]] = {
    Service.GLUE_PYTHON_SHELL: {
        "glue_version": "3.0",
        "python_version": "3.9",
        "max_capacity": 0.0625,
        "library_set": "analytics",
        "max_retries": 0,
        "default_arguments": {},
        "tags": {},
        "description": "",
    },
    Service.GLUE_SPARK: {
        "glue_version": "5.0",
        "worker_type": "G.1X",
        "number_of_workers": 2,
        "max_retries": 0,
        "default_arguments": {},
        "tags": {},
        "description": "",
    },
    Service.EMR: {
        "release_label": "emr-7.9.0",
        "architecture": "x86_64",
        "deploy_mode": "cluster",
        "spark_submit_parameters": "",
        "arguments": [],
        "tags": {},
    },
}

# Per service: the table naming its functions or jobs, and its defaults (read by Config.resolve).
MEMBER_TABLES: dict[Service, str] = {service: "jobs" if service.is_job else "functions" for service in Service}
SERVICE_DEFAULTS: dict[Service, dict[str, Any]] = {
    Service.LAMBDA: LAMBDA_DEFAULTS,
    **JOB_DEFAULTS,
}

for _service, _settings in JOB_SETTINGS.items():
    ROOT_TABLE[_service] = Table(_settings, jobs=NamedTables(_settings))
    STAGE_TABLE[_service] = Table(_settings, jobs=NamedTables(_settings))


# ---------------------------------------------------------------------------------------------
# The opt-in packaging allowlist (issue 12): `include = ["*.py", "*.json"]` in [tool.pkg.<service>].
# It shapes the service's internal_libs artifact, one per service: not per function, job or stage.
# ---------------------------------------------------------------------------------------------

for _service in Service:
    ROOT_TABLE[_service] = Table(ROOT_TABLE[_service], include=list)


def packaging_include(config: Config, service: Service | str) -> tuple[str, ...]:
    """The patterns a service's internal_libs files must match to be packaged; () packages every file."""
    return tuple(config.raw.get(Service(service), {}).get("include", ()))


def _check_include(raw: dict) -> None:
    """Each `include` is a non-empty array of relative glob patterns."""
    for service in Service:
        patterns = raw.get(service, {}).get("include")
        if patterns is None:
            continue
        where = f"tool.pkg.{service}.include"
        if not patterns:
            raise ConfigError(f"{where} is empty: nothing would be packaged", hint="leave it out to package every file")
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(f"{where} must be an array of glob patterns, got {pattern!r}")
            if pattern.startswith("/") or "\\" in pattern or ".." in pattern.split("/"):
                raise ConfigError(
                    f"{where}: {pattern!r} is not a pattern relative to internal_libs",
                    hint='e.g. include = ["*.py", "*.json", "templates/*.sql"]',
                )


def check_member_overrides(config: Config, sources: Mapping[Service, list[str]]) -> None:
    """Every `functions.<name>` / `jobs.<name>` table, at the root or in a stage, names a source file.

    `sources` lists each service's functions or jobs as discovered in src/. An override of a name
    that has none would be ignored silently (a typo): it is an error naming the key and the closest name.
    """
    import difflib

    tables = [("tool.pkg", config.raw)]
    tables += [(f"tool.pkg.stages.{stage}", table) for stage, table in config.raw.get("stages", {}).items()]
    for where, table in tables:
        for service in Service:
            members = MEMBER_TABLES[service]
            known = sources.get(service, [])
            for name in (table.get(service) or {}).get(members, {}):
                if name in known:
                    continue
                close = difflib.get_close_matches(name, known, n=1)
                what = "function" if members == "functions" else "job"
                raise ConfigError(
                    f"{where}.{service}.{members}.{name}: no {what} '{name}' in src/{service}/",
                    hint=f"did you mean '{close[0]}'?" if close else f"{what}s there: {', '.join(known) or 'none'}",
                )


def job_settings(config: Config, service: str, job: str, stage: str | None = None) -> dict[str, Any]:
    """The resolved settings of one Glue/EMR job (defaults < service < stage < job < stage's job)."""
    return config.resolve(service, job, stage)


def runtime_version(service: Service, settings: dict[str, Any]) -> str:
    """A job's runtime version from its resolved settings: its GlueVersion or EMR release label."""
    from packager.runtimes import RUNTIME_VERSION_SETTING

    return settings[RUNTIME_VERSION_SETTING[service]]


def _check_job_combination(service: Service, job: str, settings: dict[str, Any]) -> None:
    """What only the resolved settings can tell: the Python a runtime version offers."""
    from packager.runtimes import job_runtime

    where = f"tool.pkg.{service} (job {job})"
    version = runtime_version(service, settings)
    runtime = job_runtime(service, version)
    python = settings.get("python_version")
    if runtime is not None and python is not None and python not in runtime.pythons:
        raise ConfigError(
            f"{where}: python_version {python} is not offered by {version}",
            hint="one of " + ", ".join(runtime.pythons),
        )


def _check_job_values(raw: dict) -> None:
    """Names and ranges the types alone don't catch, in every job table of the root and the stages."""
    from packager.runtimes import (
        GLUE_LIBRARY_SETS,
        GLUE_PYTHON_SHELL_CAPACITIES,
        GLUE_PYTHON_SHELL_RUNTIMES,
        GLUE_SPARK_RUNTIMES,
        GLUE_WORKER_TYPES,
        JOB_ARCHITECTURES,
        emr_runtime,
    )

    def one_of(where: str, key: str, value, allowed) -> None:
        if value is not None and value not in allowed:
            raise ConfigError(
                f"{where}.{key}: unsupported value {value!r}", hint="one of " + ", ".join(map(str, allowed))
            )

    def check(service: Service, table: dict, where: str) -> None:
        if service is Service.GLUE_PYTHON_SHELL:
            one_of(where, "glue_version", table.get("glue_version"), list(GLUE_PYTHON_SHELL_RUNTIMES))
            one_of(where, "python_version", table.get("python_version"), ["3.9"])
            one_of(where, "max_capacity", table.get("max_capacity"), GLUE_PYTHON_SHELL_CAPACITIES)
            one_of(where, "library_set", table.get("library_set"), GLUE_LIBRARY_SETS)
        elif service is Service.GLUE_SPARK:
            one_of(where, "glue_version", table.get("glue_version"), list(GLUE_SPARK_RUNTIMES))
            one_of(where, "worker_type", table.get("worker_type"), GLUE_WORKER_TYPES)
            workers = table.get("number_of_workers")
            if workers is not None and not 2 <= workers <= API_INT_MAX:
                raise ConfigError(f"{where}.number_of_workers must be between 2 and {API_INT_MAX}, got {workers}")
        else:
            label = table.get("release_label")
            if label is not None and (not _RELEASE_LABEL.match(label) or emr_runtime(label) is None):
                raise ConfigError(
                    f"{where}.release_label: unsupported release {label!r}",
                    hint="an emr-7.x.y label (e.g. emr-7.9.0) or emr-spark-8.0.0",
                )
            one_of(where, "architecture", table.get("architecture"), JOB_ARCHITECTURES[Service.EMR])
            one_of(where, "deploy_mode", table.get("deploy_mode"), ["cluster", "client"])
            if any(not isinstance(a, str) for a in table.get("arguments", [])):
                raise ConfigError(f"{where}.arguments must be an array of strings")
        for key in ("find_links", "extra_index_urls"):
            if any(not isinstance(v, str) for v in table.get(key, [])):
                raise ConfigError(f"{where}.{key} must be an array of strings")
        timeout = table.get("timeout")
        if timeout is not None and not 1 <= timeout <= GLUE_TIMEOUT_MAX_MINUTES:
            raise ConfigError(
                f"{where}.timeout must be between 1 and {GLUE_TIMEOUT_MAX_MINUTES} minutes (7 days), got {timeout}"
            )
        retries = table.get("max_retries")
        if retries is not None and not 0 <= retries <= API_INT_MAX:
            raise ConfigError(f"{where}.max_retries must be between 0 and {API_INT_MAX}, got {retries}")
        check_tags(table.get("tags", {}), where)
        runs = table.get("max_concurrent_runs")
        if runs is not None and not 1 <= runs <= API_INT_MAX:
            raise ConfigError(f"{where}.max_concurrent_runs must be between 1 and {API_INT_MAX}, got {runs}")
        one_of(where, "execution_class", table.get("execution_class"), ["STANDARD", "FLEX"])
        delay = table.get("notify_delay_after")
        if delay is not None and not 1 <= delay <= API_INT_MAX:
            raise ConfigError(f"{where}.notify_delay_after must be at least 1 minute, got {delay}")
        connections = table.get("connections", [])
        if any(not isinstance(c, str) or not c for c in connections):
            raise ConfigError(f"{where}.connections must be an array of Glue connection names")
        for name, overrides in table.get("jobs", {}).items():
            check(service, overrides, f"{where}.jobs.{name}")

    for service in JOB_SETTINGS:
        check(service, raw.get(service, {}), f"tool.pkg.{service}")
        for stage, table in raw.get("stages", {}).items():
            staged = table.get(service, {})
            check(service, staged, f"tool.pkg.stages.{stage}.{service}")
            for where, overrides in [("", staged), *((f".jobs.{n}", t) for n, t in staged.get("jobs", {}).items())]:
                shaping = sorted(set(overrides) & set(BUILD_SHAPING_JOB_SETTINGS))
                if shaping:
                    raise ConfigError(
                        f"tool.pkg.stages.{stage}.{service}{where}: '{shaping[0]}' can't differ per stage",
                        hint="it decides what `pkg build` builds, which knows no stage; set it in"
                        f" [tool.pkg.{service}] or its jobs table",
                    )
