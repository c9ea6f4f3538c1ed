"""Releases: what a stage runs after each change, kept in its artifact bucket for every machine of the team.

A publish (or rollback) that changed a stage writes one small JSON object, under the stage's lease
lock and after AWS confirmed every step, at `pkg-releases/<account>/<region>/<stage>/<id>.json`
(ids count up from 1, zero-padded so that keys sort; a conditional write never overwrites one).
It says who (the caller identity ARN), when, from which commit (and whether the tree was dirty),
and what every resource runs: each function's alias version with its CodeSha256, layers and
configuration; each Glue job's and EMR run specification's content-addressed S3 keys and settings.

Release objects are read back as untrusted input, like every row from S3: a document of another
shape, another stage, account or region, or naming a resource outside `<project>-<stage>-…` or an
S3 object outside the stage's `pkg/` layout is ignored with a warning.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from cache.index import PublishedRecord
from packager.deploy.actions import Target
from packager.deploy.aws import AwsSession, aws_errors
from packager.deploy.jobs_plan import ADDITIONAL_MODULES, EXTRA_PY_FILES
from packager.deploy.naming import NAME, resource_name
from packager.deploy.records import EmrRunRow, FunctionRow, GlueJobRow, unit_of, version_digest
from packager.deploy.trust import StageScope
from packager.errors import PkgError
from packager.model import JOB_SERVICES, ArtifactId, ArtifactIdError, Role, Service

RELEASE_FORMAT = 1
RELEASE_PREFIX = "pkg-releases"  # beside `pkg/`, not under it: `pkg gc` never sees a release
RELEASE_MAX_BYTES = 16 * 1024 * 1024  # a release of thousands of functions is a few MB; refuse more
COMMANDS = ("publish", "rollback", "promote")
_ID_DIGITS = 8
_KEY_NAME = re.compile(rf"(\d{{{_ID_DIGITS}}})\.json\Z")
_CODE_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=\Z")
_DIGEST = re.compile(r"[0-9a-f]{32}\Z")
_VERSION = re.compile(r"[1-9][0-9]{0,9}\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/:-]{1,1000}\Z")

Warn = Callable[[str], None]


def release_prefix(target: Target) -> str:
    """Where a stage's releases live in its artifact bucket (one folder per account, region and stage)."""
    return f"{RELEASE_PREFIX}/{target.account}/{target.region}/{target.stage}/"


def release_key(target: Target, release_id: int) -> str:
    return f"{release_prefix(target)}{release_id:0{_ID_DIGITS}d}.json"


@dataclass(frozen=True)
class FunctionRelease:
    """One function as a release ran it: the version its alias pointed at, and what that version holds."""

    name: str
    alias: str
    version: str
    code_sha256: str
    digest: str  # packager.deploy.records.version_digest of the version
    layers: tuple[str, ...]
    configuration: dict  # environment values only as digests, as the index records them

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "code_sha256": self.code_sha256,
            "digest": self.digest,
            "layers": list(self.layers),
            "configuration": self.configuration,
        }


@dataclass(frozen=True)
class JobRelease:
    """One Glue job or EMR run specification: the content-addressed S3 objects it ran, and its settings."""

    name: str
    script: str  # s3:// URI
    libs: tuple[str, ...]  # internal_libs (--extra-py-files, --py-files)
    deps: tuple[str, ...]  # dependency wheels (--additional-python-modules) or the EMR archive
    settings: dict  # the Glue definition or the EMR run specification, as recorded

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.script, *self.libs, *self.deps)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "script": self.script,
            "libs": list(self.libs),
            "deps": list(self.deps),
            "settings": self.settings,
        }


@dataclass(frozen=True)
class PromotedFrom:
    """The release of another stage whose artifacts a promote deployed (`pkg promote`)."""

    stage: str
    account: str
    region: str
    release: int

    def to_json(self) -> dict:
        return {"stage": self.stage, "account": self.account, "region": self.region, "release": self.release}

    @classmethod
    def from_json(cls, value: object) -> PromotedFrom:
        """Checked as untrusted input; ValueError says what is wrong."""
        _problem(isinstance(value, dict), "promoted_from is not a table")
        assert isinstance(value, dict)
        stage, account, region, release = (value.get(key) for key in ("stage", "account", "region", "release"))
        _problem(isinstance(stage, str) and len(stage) <= 64 and NAME.match(stage) is not None, "bad promoted stage")
        _problem(isinstance(account, str) and re.fullmatch(r"\d{12}", account) is not None, "bad promoted account")
        _problem(isinstance(region, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) is not None, "bad region")
        ok = isinstance(release, int) and not isinstance(release, bool) and release > 0
        _problem(ok, "bad promoted release")
        return cls(str(stage), str(account), str(region), int(release))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Release:
    """What one stage ran after one publish or rollback."""

    id: int
    target: Target
    project: str
    time: str  # ISO 8601, UTC
    who: str | None  # the caller identity ARN
    commit: str | None
    dirty: bool | None
    command: str  # publish | rollback | promote
    functions: dict[str, FunctionRelease] = field(default_factory=dict)  # artifact id ->
    jobs: dict[str, JobRelease] = field(default_factory=dict)  # artifact id ->
    rolled_back_to: int | None = None
    promoted_from: PromotedFrom | None = None

    def to_json(self) -> dict:
        return {
            "format": RELEASE_FORMAT,
            "id": self.id,
            "project": self.project,
            "stage": self.target.stage,
            "account": self.target.account,
            "region": self.target.region,
            "time": self.time,
            "who": self.who,
            "commit": self.commit,
            "dirty": self.dirty,
            "command": self.command,
            "rolled_back_to": self.rolled_back_to,
            "promoted_from": self.promoted_from.to_json() if self.promoted_from else None,
            "functions": {key: value.to_json() for key, value in sorted(self.functions.items())},
            "jobs": {key: value.to_json() for key, value in sorted(self.jobs.items())},
        }

    def summary(self) -> dict:
        """The release without its resources: a line of `pkg history`."""
        document = self.to_json()
        document["functions"] = len(self.functions)
        document["jobs"] = len(self.jobs)
        del document["format"]
        return document


# -- what a stage runs now, from its index rows --------------------------------------------------------


def _pkg_uris(value: str | None, scope: StageScope, service: Service) -> tuple[str, ...]:
    """The stage's own S3 URIs in a comma list argument (a user's own entries are left out)."""
    parts = (value or "").split(",")
    return tuple(part for part in parts if part and scope.s3_problem(part, service) is None)


def _glue_release(row: GlueJobRow, artifact: ArtifactId, scope: StageScope) -> JobRelease | None:
    definition = row.definition
    if not definition:
        return None
    arguments = definition.get("DefaultArguments") or {}
    return JobRelease(
        row.name,
        definition["Command"]["ScriptLocation"],
        _pkg_uris(arguments.get(EXTRA_PY_FILES), scope, artifact.service),
        _pkg_uris(arguments.get(ADDITIONAL_MODULES), scope, artifact.service),
        definition,
    )


def emr_archive(spec: dict) -> str | None:
    """The dependency archive of an EMR run specification (`spark.archives` is `<uri>#deps`)."""
    value = (spec.get("conf") or {}).get("spark.archives")
    return value.rsplit("#", 1)[0] if isinstance(value, str) else None


def _emr_release(row: EmrRunRow) -> JobRelease:
    spec = row.spec
    archive = emr_archive(spec)
    return JobRelease(row.name, spec["entry_point"], tuple(spec["py_files"]), (archive,) if archive else (), spec)


def job_release(artifact: ArtifactId, details: dict, scope: StageScope) -> JobRelease | None:
    """What a Glue job or EMR run specification runs, from its index row (None: a job not defined)."""
    if artifact.service is Service.EMR:
        return _emr_release(EmrRunRow.from_details(details))
    return _glue_release(GlueJobRow.from_details(details), artifact, scope)


def stage_snapshot(
    recorded: dict[str, PublishedRecord],
    scope: StageScope,
    known: Sequence[Release] = (),
    warn: Warn | None = None,
) -> tuple[dict[str, FunctionRelease], dict[str, JobRelease]]:
    """What the stage runs, from its (trust-checked) index rows: functions behind an alias, jobs, run specs.

    A row describes the function's $LATEST; an alias moved back by a rollback points at an older
    version, which the release in `known` that ran that version describes.
    """
    functions: dict[str, FunctionRelease] = {}
    jobs: dict[str, JobRelease] = {}
    for resource_id, stored in sorted(recorded.items()):
        artifact = unit_of(resource_id)
        if artifact is None:
            continue
        if artifact.role is Role.FUNCTION:
            row = FunctionRow.from_details(stored.details)
            state, alias = row.state, row.alias
            if state is None or alias is None or row.pending or not state.code_sha256:
                continue
            name = resource_name(scope.project, scope.target.stage, artifact.short_name)
            if alias.digest != version_digest(state):
                ran = [r.functions[resource_id] for r in known if resource_id in r.functions]
                older = next((f for f in ran if f.version == alias.version and f.alias == alias.name), None)
                if older is not None:
                    functions[resource_id] = older
                elif warn is not None:
                    warn(f"{resource_id}: alias {alias.name} points at version {alias.version}, which no recent"
                         " release describes; left out of this release")  # fmt: skip
                continue
            configuration = dict(state.configuration or {})
            functions[resource_id] = FunctionRelease(
                name, alias.name, alias.version, state.code_sha256, alias.digest, tuple(state.layers), configuration
            )
        else:
            job = job_release(artifact, stored.details, scope)
            if job is not None:
                jobs[resource_id] = job
    return functions, jobs


def git_state(root: str) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether the work tree has changes), or (None, None) outside a git repository."""
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, timeout=30
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    commit = head.stdout.strip()
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return (commit if _COMMIT.match(commit) else None), dirty


# -- reading back: every object is untrusted ---------------------------------------------------------


def _problem(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _function_from_json(artifact_id: str, value: object, scope: StageScope) -> FunctionRelease:
    artifact = ArtifactId.parse(artifact_id)
    _problem(artifact.service is Service.LAMBDA and artifact.role is Role.FUNCTION, f"{artifact_id} is no function")
    _problem(isinstance(value, dict), f"{artifact_id} is not a table")
    assert isinstance(value, dict)
    name = resource_name(scope.project, scope.target.stage, artifact.short_name)
    _problem(value.get("name") == name, f"{artifact_id}: name {str(value.get('name'))[:100]!r} is not {name}")
    alias, version = value.get("alias"), value.get("version")
    _problem(isinstance(alias, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,128}", alias) is not None, "bad alias")
    _problem(isinstance(version, str) and _VERSION.match(version) is not None, f"{artifact_id}: bad version")
    code_sha256, digest = value.get("code_sha256"), value.get("digest")
    _problem(isinstance(code_sha256, str) and _CODE_SHA256.match(code_sha256) is not None, "bad code_sha256")
    try:
        base64.b64decode(str(code_sha256), validate=True)
    except binascii.Error:
        raise ValueError(f"{artifact_id}: code_sha256 is not base64") from None
    _problem(isinstance(digest, str) and _DIGEST.match(digest) is not None, f"{artifact_id}: bad digest")
    layers = value.get("layers")
    layer_prefix = re.escape(scope.arn_prefix("lambda", "layer"))
    _problem(isinstance(layers, list), f"{artifact_id}: layers is not a list")
    assert isinstance(layers, list)
    for layer in layers:
        ok = isinstance(layer, str) and re.fullmatch(rf"{layer_prefix}[A-Za-z0-9_-]+:\d+", layer) is not None
        _problem(ok, f"{artifact_id}: layer {str(layer)[:200]!r} is not {scope.arn_prefix('lambda', 'layer')}…")
    configuration = value.get("configuration")
    _problem(isinstance(configuration, dict), f"{artifact_id}: configuration is not a table")
    return FunctionRelease(
        name, str(alias), str(version), str(code_sha256), str(digest), tuple(layers), dict(configuration)  # type: ignore[arg-type]
    )


def _job_from_json(artifact_id: str, value: object, scope: StageScope) -> JobRelease:
    artifact = ArtifactId.parse(artifact_id)
    _problem(artifact.service in JOB_SERVICES and artifact.role is Role.JOB, f"{artifact_id} is no job")
    _problem(isinstance(value, dict), f"{artifact_id} is not a table")
    assert isinstance(value, dict)
    name = resource_name(scope.project, scope.target.stage, artifact.short_name)
    _problem(value.get("name") == name, f"{artifact_id}: name {str(value.get('name'))[:100]!r} is not {name}")
    script, libs, deps = value.get("script"), value.get("libs"), value.get("deps")
    _problem(isinstance(libs, list) and isinstance(deps, list), f"{artifact_id}: libs and deps must be lists")
    assert isinstance(libs, list) and isinstance(deps, list)
    for uri in [script, *libs, *deps]:
        problem = scope.s3_problem(uri, artifact.service)
        _problem(problem is None, f"{artifact_id}: {problem}")
    settings = value.get("settings")
    _problem(isinstance(settings, dict), f"{artifact_id}: settings is not a table")
    return JobRelease(name, str(script), tuple(libs), tuple(deps), dict(settings))  # type: ignore[arg-type]


def release_from_json(document: object, release_id: int, scope: StageScope) -> Release:
    """A release read from S3, checked against the stage it must belong to; ValueError says what is wrong."""
    _problem(isinstance(document, dict), "not a JSON object")
    assert isinstance(document, dict)
    target = scope.target
    _problem(document.get("format") == RELEASE_FORMAT, f"format {str(document.get('format'))[:20]!r} is not 1")
    _problem(document.get("id") == release_id, f"id {str(document.get('id'))[:20]!r} is not the key's {release_id}")
    for key, wanted in (
        ("project", scope.project),
        ("stage", target.stage),
        ("account", target.account),
        ("region", target.region),
    ):
        _problem(document.get(key) == wanted, f"{key} {str(document.get(key))[:100]!r} is not {wanted}")
    when, who, commit, dirty = (document.get(key) for key in ("time", "who", "commit", "dirty"))
    _problem(isinstance(when, str) and len(when) <= 40, "time is not a string")
    own = isinstance(who, str) and _ARN.match(who) is not None and who.split(":")[4] == target.account
    _problem(who is None or own, "who is not an ARN of the stage's account")
    _problem(commit is None or (isinstance(commit, str) and _COMMIT.match(commit) is not None), "bad commit")
    _problem(dirty is None or isinstance(dirty, bool), "dirty is not a boolean")
    command = document.get("command")
    _problem(command in COMMANDS, f"command {str(command)[:40]!r} is not one of {', '.join(COMMANDS)}")
    back = document.get("rolled_back_to")
    _problem(back is None or (isinstance(back, int) and not isinstance(back, bool) and back > 0), "bad rolled_back_to")
    promoted = document.get("promoted_from")
    promoted_from = None if promoted is None else PromotedFrom.from_json(promoted)
    functions, jobs = document.get("functions"), document.get("jobs")
    _problem(isinstance(functions, dict) and isinstance(jobs, dict), "functions and jobs must be tables")
    assert isinstance(functions, dict) and isinstance(jobs, dict)
    try:
        return Release(
            release_id,
            target,
            scope.project,
            str(when),
            who,  # type: ignore[arg-type]
            commit,  # type: ignore[arg-type]
            dirty,  # type: ignore[arg-type]
            str(command),
            {key: _function_from_json(key, value, scope) for key, value in functions.items()},
            {key: _job_from_json(key, value, scope) for key, value in jobs.items()},
            back,  # type: ignore[arg-type]
            promoted_from,
        )
    except ArtifactIdError as error:
        raise ValueError(f"not an artifact id pkg makes ({error})") from None


# -- the bucket -------------------------------------------------------------------------------------


class ReleaseStore:
    """A stage's releases in its artifact bucket: list, read (validated), write (never over another)."""

    def __init__(self, aws: AwsSession, bucket: str, scope: StageScope, warn: Warn | None = None):
        self.aws = aws
        self.bucket = bucket
        self.scope = scope
        self.warn = warn or (lambda message: None)

    def ids(self) -> list[int]:
        """The ids of every release object, oldest first (keys of another shape are ignored)."""
        prefix = release_prefix(self.scope.target)
        found = []
        with aws_errors(f"s3://{self.bucket}/{prefix}", "run the command again"):
            paginator = self.aws.client("s3").get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    match = _KEY_NAME.match(obj["Key"][len(prefix) :])
                    if match:
                        found.append(int(match.group(1)))
                    else:
                        self.warn(f"s3://{self.bucket}/{obj['Key']}: not a release object name; ignored")
        return sorted(found)

    def read(self, release_id: int) -> Release | None:
        """One release, or None (with a warning) when its object is missing or not a valid release of this stage."""
        from botocore.exceptions import ClientError

        key = release_key(self.scope.target, release_id)
        where = f"s3://{self.bucket}/{key}"
        try:
            with aws_errors(where, "run the command again"):
                try:
                    answer = self.aws.client("s3").get_object(Bucket=self.bucket, Key=key)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                        return None
                    raise
                body = answer["Body"].read(RELEASE_MAX_BYTES + 1)
            if len(body) > RELEASE_MAX_BYTES:
                raise ValueError(f"more than the {RELEASE_MAX_BYTES:,} bytes a release may hold")
            return release_from_json(json.loads(body), release_id, self.scope)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            self.warn(f"{where}: release ignored ({str(error)[:300]})")
            return None

    def get(self, wanted: str | int) -> Release:
        """The release `wanted` names (`3` or `00000003`), read alone; a PkgError when there is no valid one."""
        try:
            number = int(str(wanted))
        except ValueError:
            number = -1
        ids = self.ids()
        release = self.read(number) if number in ids else None
        if release is None:
            known = ", ".join(str(i) for i in ids[-10:]) or "none"
            what = "no valid release" if number in ids else "no release"
            raise PkgError(
                f"{what} {wanted} of this stage (latest: {known})",
                hint=f"`pkg history --stage {self.scope.target.stage}` lists them",
            )
        return release

    def all(self) -> list[Release]:
        """Every valid release, oldest first."""
        return [release for release in map(self.read, self.ids()) if release is not None]

    def latest(self, count: int = 1) -> list[Release]:
        """The newest `count` valid releases, oldest first."""
        found: list[Release] = []
        for release_id in reversed(self.ids()):
            if len(found) == count:
                break
            release = self.read(release_id)
            if release is not None:
                found.append(release)
        return found[::-1]

    def write(self, release: Release) -> Release:
        """Put `release` under the next free id (a conditional write: an id is never taken twice)."""
        from dataclasses import replace

        from botocore.exceptions import ClientError

        s3 = self.aws.client("s3")
        next_id = max(self.ids(), default=0) + 1
        for attempt in range(5):
            release = replace(release, id=next_id + attempt)
            key = release_key(self.scope.target, release.id)
            body = json.dumps(release.to_json(), sort_keys=True, indent=1).encode()
            with aws_errors(f"s3://{self.bucket}/{key}", "the stage changed; `pkg history` shows what it runs"):
                try:
                    s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                        continue  # taken meanwhile (a publisher that held no lease): the next id
                    raise
            return release
        raise PkgError(
            f"could not record the release of stage {self.scope.target.stage}: ids {next_id}-{next_id + 4} are taken",
            hint="the stage changed; run `pkg history` to see its releases",
        )


def new_release(
    aws: AwsSession,
    scope: StageScope,
    recorded: dict[str, PublishedRecord],
    root: str,
    command: str,
    rolled_back_to: int | None = None,
    known: Sequence[Release] = (),
    warn: Warn | None = None,
    promoted_from: PromotedFrom | None = None,
) -> Release:
    """The release of what the stage runs now (id assigned when written); `known`: see `stage_snapshot`."""
    functions, jobs = stage_snapshot(recorded, scope, known, warn)
    commit, dirty = git_state(root)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    who = getattr(aws, "caller", None) or None
    back, promoted = rolled_back_to, promoted_from
    return Release(0, scope.target, scope.project, when, who, commit, dirty, command, functions, jobs, back, promoted)


def stage_releases(ws, stage: str, aws: AwsSession, warn: Warn | None = None) -> ReleaseStore | None:
    """The release store of `stage` (in its artifact bucket), or None when the stage has no bucket."""
    from packager.deploy.settings import artifact_bucket

    bucket = artifact_bucket(ws.config, stage)
    if not bucket:
        return None
    return ReleaseStore(aws, bucket, StageScope.of(ws.config, Target(aws.account, aws.region, stage)), warn)


def record_release(
    ws,
    stage: str,
    aws: AwsSession,
    command: str,
    warn: Warn,
    rolled_back_to: int | None = None,
    known: Sequence[Release] = (),
    promoted_from: PromotedFrom | None = None,
) -> Release | None:
    """Write the release of what `stage` runs now, from the index rows AWS confirmed; None without a bucket.

    `known`: releases that describe versions an alias may point at besides $LATEST (default: the latest).
    """
    from packager.deploy.trust import check_recorded

    store = stage_releases(ws, stage, aws, warn)
    if store is None:
        warn(f"stage {stage} has no artifact bucket: its releases are not recorded (no `pkg history`, `pkg rollback`)")
        return None
    target = store.scope.target
    recorded = check_recorded(ws.store.index.published(target.account, target.region, stage), store.scope)
    known = list(known) or store.latest(1)
    release = new_release(aws, store.scope, recorded, ws.root, command, rolled_back_to, known, warn, promoted_from)
    return store.write(release)


# -- what changed between two releases -----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One function or job that differs between two releases, and how."""

    id: str
    name: str
    change: str  # added | removed | changed
    details: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "change": self.change, "details": list(self.details)}


def _layer_names(layers: tuple[str, ...]) -> dict[str, str]:
    """Layer version ARNs by layer name: `…:layer:<name>:<version>` -> {name: version}."""
    return {arn.rsplit(":", 2)[-2]: arn.rsplit(":", 1)[-1] for arn in layers}


def _function_changes(old: FunctionRelease, new: FunctionRelease) -> list[str]:
    from packager.deploy.diff import describe_change
    from packager.deploy.records import changed_environment_keys

    details = []
    if old.version != new.version:
        details.append(f"version {old.version} -> {new.version}")
    if old.code_sha256 != new.code_sha256:
        details.append("code changed")
    before, after = _layer_names(old.layers), _layer_names(new.layers)
    for layer in sorted(set(before) | set(after)):
        if before.get(layer) != after.get(layer):
            details.append(f"layer {layer} {before.get(layer, '-')} -> {after.get(layer, '-')}")
    others = [key for key in sorted(set(old.configuration) | set(new.configuration)) if key != "Environment"]
    if any(old.configuration.get(key) != new.configuration.get(key) for key in others):
        details.append(describe_change(old.configuration, new.configuration, "configuration", others))
    if keys := changed_environment_keys(old.configuration, new.configuration):
        details.append(f"environment {', '.join(keys)} changed")
    return details


def _job_changes(old: JobRelease, new: JobRelease) -> list[str]:
    from packager.deploy.diff import describe_change

    details = []
    if old.script != new.script:
        details.append(f"script {old.script.rsplit('/', 2)[-2][:12]} -> {new.script.rsplit('/', 2)[-2][:12]}")
    if old.libs != new.libs:
        details.append("internal_libs changed")
    if old.deps != new.deps:
        details.append("dependencies changed")
    keyless = ("Command", "DefaultArguments", "entry_point", "py_files", "conf")
    settings = sorted(key for key in set(old.settings) | set(new.settings) if key not in keyless)
    if any(old.settings.get(key) != new.settings.get(key) for key in settings):
        details.append(describe_change(old.settings, new.settings, "settings", settings))
    if old.settings.get("DefaultArguments") != new.settings.get("DefaultArguments") and old.keys == new.keys:
        details.append("arguments changed")
    return details


def diff_releases(old: Release, new: Release) -> list[Change]:
    """What differs from `old` to `new`: functions (version, code, layers, settings), jobs (keys, settings)."""
    changes: list[Change] = []
    sections: list[tuple[dict, dict, Callable]] = [
        (old.functions, new.functions, _function_changes),
        (old.jobs, new.jobs, _job_changes),
    ]
    for before, after, compare in sections:
        for artifact_id in sorted(set(before) | set(after)):
            if artifact_id not in before:
                changes.append(Change(artifact_id, after[artifact_id].name, "added"))
            elif artifact_id not in after:
                changes.append(Change(artifact_id, before[artifact_id].name, "removed"))
            elif details := compare(before[artifact_id], after[artifact_id]):
                changes.append(Change(artifact_id, after[artifact_id].name, "changed", tuple(details)))
    return changes
