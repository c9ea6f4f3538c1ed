"""`pkg promote --from dev --to prod`: the very bytes dev's current release runs, deployed to prod with prod's settings.

Nothing is built. Dev's newest release (read from dev's artifact bucket with dev's credentials and
checked like every release object) names what each function runs (its code's CodeSha256 and its
layer versions) and each job's content-addressed S3 objects (script, internal_libs, dependencies).
Dev's index rows (pulled from the shared cache) say which artifact each layer version and object
is, and which input hash a code zip was built from; the file comes from the local store (by input
hash, or by its sha256), the shared cache (downloaded and verified), or dev's artifact bucket
(where a Lambda zip too big to send inline was put; downloaded, and verified by its sha256). pkg
copies the bytes itself: prod's account never reads dev's bucket.

The artifacts become a build plan whose items are all cached, handed to the publish planner as a
publish hands its build: the plan, the executor, prod's lease, its rows and aliases are the
publish's own, so a later `pkg publish --stage prod` of the same commit has nothing to do.

Refused before any mutating call: an artifact found nowhere; a build setting that shaped it
(runtime, architecture, handler name; a job's Glue version, Python, EMR release) that prod's
configuration sets otherwise than what dev runs.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Callable, Sequence

from cache.index import ArtifactRecord, PublishedRecord
from cache.store import sha256_file
from packager.deploy.aws import AwsSession, aws_errors
from packager.deploy.naming import job_artifact_key, lambda_code_key
from packager.deploy.records import FunctionRow, LayerVersionRow
from packager.deploy.releases import Release
from packager.deploy.rollback import picked_ids
from packager.errors import PkgError
from packager.model import SCRIPT_KINDS, ArtifactId, BuildStatus, Kind, Role, Service

Warn = Callable[[str], None]


class PromoteError(PkgError):
    """A promote that can't deploy exactly what the source stage runs (an artifact is nowhere, a setting differs)."""


@dataclass(frozen=True)
class WantedArtifact:
    """One artifact the source release runs: a function's code, a layer version's zip, a job's file."""

    id: str
    kind: Kind | None  # None: a job's internal_libs or dependencies, of the kind its stored file has
    sha256: str | None  # hex; None for a layer version pkg adopted (its CodeSha256 was not recorded)
    input_hash: str | None  # from the source stage's index row; None when this machine has no row of it
    uses: tuple[str, ...] = ()  # a function's layers, by artifact id, in order
    handler: str | None = None  # a function's Handler, as the source stage runs it
    files: tuple[str, ...] = ()  # a job artifact's file names in S3 (a wheelhouse's wheels; pip needs their names)

    @property
    def filename(self) -> str | None:
        return self.files[0] if self.files else None


def sha256_hex(code_sha256: str) -> str:
    """Lambda's CodeSha256 (base64) as the hex digest the store keeps."""
    return base64.b64decode(code_sha256, validate=True).hex()


def _layer_versions(rows: dict[str, PublishedRecord]) -> dict[str, WantedArtifact]:
    """Layer version ARN -> the layer artifact it was published from, by a stage's (trust-checked) rows."""
    found = {}
    for key, row in rows.items():
        artifact_id, at, _input = key.partition("@")
        if not at or "arn" not in row.details:
            continue
        try:
            if ArtifactId.parse(artifact_id).service is not Service.LAMBDA:
                continue
            version = LayerVersionRow.from_details(row.details)
            sha = sha256_hex(version.code_sha256) if version.code_sha256 else None  # None: an adopted version
        except (KeyError, ValueError):  # binascii.Error is a ValueError
            continue
        found[version.arn] = WantedArtifact(artifact_id, Kind.LAMBDA_LAYER, sha, row.input_hash)
    return found


def plan_promotion(
    config, source: Release, source_rows: dict[str, PublishedRecord], stage: str, names: Sequence[str] = ()
) -> list[WantedArtifact]:
    """What promoting `source` (all, or NAMES) to `stage` deploys: layers, functions, jobs' files (no AWS call).

    Refused with every problem at once: a layer version or S3 object the source stage has no row
    of, a runtime, architecture or handler (a job's Glue version, Python, EMR release) that `stage`
    would run it with otherwise.
    """
    where = f"release {source.id} of stage {source.target.stage}"
    function_ids, job_ids = picked_ids(source, names)
    layers = _layer_versions(source_rows)
    wanted: dict[str, WantedArtifact] = {}
    functions: list[WantedArtifact] = []
    problems: list[str] = []
    for artifact_id in function_ids:
        function = source.functions[artifact_id]
        short = ArtifactId.parse(artifact_id).short_name
        uses = []
        for arn in function.layers:
            if arn not in layers:
                problems.append(f"{artifact_id}: layer version {arn} has no row of stage {source.target.stage} here")
                continue
            layer = layers[arn]
            if wanted.setdefault(layer.id, layer) != layer:  # one layer name, one version in a stage
                problems.append(f"{artifact_id}: runs another version of {layer.id} than the other functions")
            uses.append(layer.id)
        own = source_rows.get(artifact_id)
        row = FunctionRow.from_details(own.details) if own is not None else None
        same_code = row is not None and row.state is not None and row.state.code_sha256 == function.code_sha256
        settings = config.lambda_settings(short, stage)
        ran = function.configuration
        handler = f"{short}.{config.lambda_handler(short)}"
        shaping = [("Runtime", ran.get("Runtime"), settings["runtime"]), ("Handler", ran.get("Handler"), handler)]
        if same_code and row is not None and row.state is not None:  # the row describes the code the release ran
            shaping.append(("Architecture", row.state.architecture, settings["architecture"]))
        for key, was, would in shaping:
            if was != would:
                problems.append(f"{artifact_id}: {key} is {was} in {source.target.stage}, {would} in {stage}")
        functions.append(
            WantedArtifact(
                artifact_id,
                Kind.LAMBDA_FUNCTION,
                sha256_hex(function.code_sha256),
                own.input_hash if own is not None and same_code else None,
                tuple(uses),
                str(ran.get("Handler") or handler),
            )
        )
    jobs: dict[str, WantedArtifact] = {}
    for job_id in job_ids:
        problems += _plan_job(config, source, job_id, _uploads(source_rows), stage, jobs)
    if problems:
        raise PromoteError(
            f"{where} can't be promoted to {stage} as built: " + "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""),
            hint="a setting that shapes the build can't differ between stages: align the configuration with what"
            f" {source.target.stage} runs; for rows or builds {source.target.stage} mixes, `pkg publish --stage"
            f" {source.target.stage}` the whole tree (or promote NAMES); then promote",
        )  # fmt: skip
    return [*wanted.values(), *functions, *jobs.values()]


def _uploads(rows: dict[str, PublishedRecord]) -> dict[str, tuple[str, str | None]]:
    """S3 key -> (artifact id, its input hash if recorded) of every object a stage's (trust-checked) rows
    say pkg put there. The key holds the file's sha256, which finds the file when no input hash does."""
    found = {}
    for key, row in rows.items():
        artifact_id, at, object_key = key.partition("@")
        if at and "bucket" in row.details:
            found[object_key] = (artifact_id, row.input_hash or None)
    return found


def _job_shaping(config, job_id: str, settings: dict, stage: str) -> list[tuple[str, object, object]]:
    """(setting, as the source runs it, as `stage` would) for what shaped a job's build."""
    from packager.deploy.jobs_plan import emr_python

    artifact = ArtifactId.parse(job_id)
    wanted = config.resolve(artifact.service, artifact.short_name, stage)
    if artifact.service is Service.EMR:
        return [
            ("release_label", settings.get("release_label"), wanted["release_label"]),
            ("python", settings.get("python"), emr_python(wanted)),
        ]
    shaping: list[tuple[str, object, object]] = [("GlueVersion", settings.get("GlueVersion"), wanted["glue_version"])]
    if artifact.service is Service.GLUE_PYTHON_SHELL:
        ran = (settings.get("Command") or {}).get("PythonVersion")
        shaping.append(("PythonVersion", ran, wanted["python_version"]))
    return shaping


def _plan_job(
    config, source: Release, job_id: str, uploads: dict, stage: str, wanted: dict[str, WantedArtifact]
) -> list[str]:
    """Add a job's script, internal_libs and dependencies to `wanted`; the problems found instead."""
    job = source.jobs[job_id]
    problems = [
        f"{job_id}: {key} is {was} in {source.target.stage}, {would} in {stage}"
        for key, was, would in _job_shaping(config, job_id, job.settings, stage)
        if was != would
    ]
    uses: list[str] = []
    for uri in job.keys:
        object_key = uri.split("/", 3)[3]  # s3://bucket/<key>: checked to be the stage's own layout when read
        sha, filename = object_key.rsplit("/", 2)[-2:]
        if object_key not in uploads:
            problems.append(f"{job_id}: {uri} has no row of stage {source.target.stage} here")
            continue
        artifact_id, input_hash = uploads[object_key]
        if not _keyed_as(artifact_id, sha, filename, object_key):  # a row naming another artifact's object
            problems.append(f"{job_id}: {uri} is not where pkg puts {artifact_id[:100]}'s files")
            continue
        if artifact_id == job_id:
            continue
        if artifact_id not in uses:
            uses.append(artifact_id)
        known = wanted.setdefault(artifact_id, WantedArtifact(artifact_id, None, sha, input_hash))
        if known.sha256 != sha:  # one artifact, two builds: `pkg publish NAME` left another job on the older one
            problems.append(f"{job_id}: runs another build of {artifact_id} than the other jobs")
        elif filename not in known.files:  # a wheelhouse: one object per wheel, under its own sha256
            wanted[artifact_id] = dataclasses.replace(known, files=(*known.files, filename))
    script_key = job.script.split("/", 3)[3]
    if script_key in uploads:
        sha, filename = script_key.rsplit("/", 2)[-2:]
        kind = SCRIPT_KINDS[ArtifactId.parse(job_id).service]
        wanted[job_id] = WantedArtifact(job_id, kind, sha, uploads[script_key][1], tuple(uses), None, (filename,))
    return problems


def _keyed_as(artifact_id: str, sha256: str, filename: str, object_key: str) -> bool:
    """Whether `object_key` is where pkg puts `artifact_id`'s file of that sha256 (read from S3: untrusted)."""
    try:
        return job_artifact_key(artifact_id, sha256, filename) == object_key
    except ValueError:  # not an artifact id pkg makes
        return False


# -- the bytes: local store, shared cache, the source stage's bucket -------------------------------------


def _stored_as(item: WantedArtifact) -> tuple[Kind, str]:
    """The kind and file suffix of the artifact's file in a store, by its id (a row may claim another)."""
    from packager.builders.sources import INTERNAL_LIBS_PACKAGING

    if item.kind in (Kind.LAMBDA_FUNCTION, Kind.LAMBDA_LAYER):
        return item.kind, ".zip"
    artifact = ArtifactId.parse(item.id)
    if artifact.role is Role.JOB:
        return SCRIPT_KINDS[artifact.service], ".py"
    if artifact.role is Role.INTERNAL_LIBS:
        packaging = INTERNAL_LIBS_PACKAGING[artifact.service]
        return packaging.kind, packaging.suffix
    return (Kind.PYTHON_ARCHIVE if artifact.service is Service.EMR else Kind.WHEELHOUSE), ".zip"


def _matches(record: ArtifactRecord, item: WantedArtifact) -> bool:
    """The very file the source runs, of the kind its id makes (what the publish then does depends on it)."""
    return (item.sha256 is None or record.sha256 == item.sha256) and record.kind == _stored_as(item)[0]


OfBytes = Callable[[], dict[tuple[str, str], ArtifactRecord]]


def _of_bytes(ws) -> OfBytes:
    """This machine's rows by (sha256, kind), read on the first call (a file known by its bytes alone)."""
    return functools.cache(lambda: {(r.sha256, r.kind): r for r in ws.store.index.all_artifacts()})


def _local(ws, items: list[WantedArtifact], of_bytes: OfBytes | None = None) -> dict[str, ArtifactRecord]:
    """What the local store holds, by input hash or (a code zip of unknown input) by sha256."""
    of_bytes = of_bytes or _of_bytes(ws)
    by_hash = ws.store.index.artifacts(item.input_hash for item in items if item.input_hash)
    found = {}
    for item in items:
        record = by_hash.get(item.input_hash) if item.input_hash else None
        if record is None and item.sha256 and item.input_hash is None:
            record = of_bytes().get((item.sha256, _stored_as(item)[0]))
        if record is not None and _matches(record, item) and ws.store.use(record):
            found[item.id] = record
    return found


def _shared(ws, items: list[WantedArtifact]) -> dict[str, ArtifactRecord]:
    """What the shared cache holds, by input hash (or, where no row gave one, by sha256), downloaded and
    verified into the local store."""
    if not ws.shared:
        return {}
    by_hash = ws.shared.records(item.input_hash for item in items if item.input_hash)
    unkeyed = [item.sha256 for item in items if not item.input_hash and item.sha256]
    by_bytes = {(r.sha256, r.kind): r for r in ws.shared.records_of_bytes(unkeyed)} if unkeyed else {}
    pairs = []
    for item in items:
        by_kind = (item.sha256 or "", _stored_as(item)[0])
        record = by_hash.get(item.input_hash) if item.input_hash else by_bytes.get(by_kind)
        if record is not None and _matches(record, item):
            pairs.append((item, record))
    fetched = ws.shared.fetch_many(list({record.input_hash: record for _item, record in pairs}.values()))
    return {item.id: record for item, record in pairs if record.input_hash in fetched}


def _unzipped_size(path: str) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(member.file_size for member in archive.infolist())


@dataclass(frozen=True)
class _BucketShape:
    """Where an artifact's bytes are in the source stage's bucket, and what the store keeps them as."""

    kind: Kind
    suffix: str
    keys: tuple[str, ...]

    @property
    def wheelhouse(self) -> bool:
        """One object per wheel: the store's file is their deterministic zip."""
        return self.kind is Kind.WHEELHOUSE


def _bucket_shape(item: WantedArtifact, sha256: str) -> _BucketShape | None:
    """A function's or layer's zip a publish put in the bucket (too big to send inline), or a job's
    objects; None for a job artifact whose files are unknown."""
    kind, suffix = _stored_as(item)
    if kind in (Kind.LAMBDA_FUNCTION, Kind.LAMBDA_LAYER):
        return _BucketShape(kind, suffix, (lambda_code_key(sha256),))
    if not item.files:
        return None
    keys = tuple(job_artifact_key(item.id, sha256, name) for name in item.files)
    return _BucketShape(kind, suffix, keys)


def _download(s3, bucket: str, key: str, path: str, warn: Warn) -> bool:
    """One object to `path`; False when the bucket does not have it or does not let this caller read it (said)."""
    from botocore.exceptions import ClientError

    with aws_errors(f"s3://{bucket}/{key}", "run the command again"):
        try:
            s3.download_file(bucket, key, path)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("403", "AccessDenied"):
                warn(f"s3://{bucket}/{key}: access denied to the source stage's credentials; not copied")
                return False
            if code in ("404", "NoSuchKey"):
                return False
            raise
    return True


def _from_bucket(
    ws, items: list[WantedArtifact], aws: AwsSession, bucket: str | None, warn: Warn, of_bytes: OfBytes
) -> dict:
    """What the source stage put in its bucket: Lambda zips too big to send inline, and jobs' objects (a
    wheelhouse put together again from its wheels). Downloaded, checked against the sha256 the source
    release runs (nothing else is used), stored."""
    from packager.builders.wheels import write_wheelhouse

    found: dict[str, ArtifactRecord] = {}
    if not bucket:
        return found
    s3 = aws.client("s3")
    for item in items:
        shape = _bucket_shape(item, item.sha256) if item.sha256 else None
        if shape is None or item.sha256 is None:
            continue
        input_hash = item.input_hash  # the store keys a file by it: else this machine's row of the bytes (a
        if input_hash is None:  # row recorded before uploads kept their input hash)
            mine = of_bytes().get((item.sha256, shape.kind))
            if mine is None:
                continue
            input_hash = mine.input_hash
        where = f"s3://{bucket}/{shape.keys[0]}"
        with tempfile.TemporaryDirectory(dir=ws.store.cache_dir) as folder:
            path = os.path.join(folder, "download" + shape.suffix)
            if shape.wheelhouse:
                wheels = os.path.join(folder, "wheels")
                os.mkdir(wheels)
                if not all(_download(s3, bucket, key, os.path.join(wheels, name), warn)
                           for key, name in zip(shape.keys, item.files, strict=True)):  # fmt: skip
                    continue
                write_wheelhouse(path, wheels, list(item.files))
                where = f"the wheels under s3://{bucket}/{shape.keys[0].rsplit('/', 1)[0]}/"
            elif not _download(s3, bucket, shape.keys[0], path, warn):
                continue
            if sha256_file(path) != item.sha256:  # untrusted bytes: only the very artifact is used
                warn(f"{where}: not the bytes its name says; not used")
                continue
            try:
                unzipped = os.path.getsize(path) if shape.kind in SCRIPT_KINDS.values() else _unzipped_size(path)
            except (zipfile.BadZipFile, OSError):
                warn(f"{where}: not a zip; not used")
                continue

            def write(target: str, source: str = path, size: int = unzipped) -> int:
                os.replace(source, target)
                return size

            meta = {"promoted": True, **({"filename": item.filename} if item.files and not shape.wheelhouse else {})}
            record = ws.store.put(input_hash, str(shape.kind), shape.suffix, write, meta)
        ws.store.index.add_artifacts([record], replace=True)  # the file just put in place: its row, whatever was there
        found[item.id] = record
    return found


def gather(
    ws, items: list[WantedArtifact], aws: AwsSession, bucket: str | None, source: Release, warn: Warn
) -> dict[str, ArtifactRecord]:
    """Each artifact's file: from the local store, the shared cache, then the source stage's bucket.

    Refused, naming every one, when some are nowhere (nothing is built instead).
    """
    of_bytes = _of_bytes(ws)  # shared by the local lookup and the bucket's input hashes: one read of the index
    found = _local(ws, items, of_bytes)
    found.update(_shared(ws, [item for item in items if item.id not in found]))
    left = [item for item in items if item.id not in found]
    found.update(_from_bucket(ws, left, aws, bucket, warn, of_bytes))
    missing = [item.id for item in items if item.id not in found]
    if missing:
        places = "the local cache" + (", the shared cache" if ws.shared else "")
        places += f", s3://{bucket}" if bucket else ""
        raise PromoteError(
            f"release {source.id} of stage {source.target.stage} runs artifacts that are nowhere to copy from"
            f" ({places}): {', '.join(missing[:10])}" + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""),
            hint="promote from a machine that published it, set cache_uri so the shared cache holds it, or"
            f" `pkg publish --stage {source.target.stage}` again (which records a new release)",
        )
    return found


def _never_built(path: str) -> int:
    raise PkgError("a promoted artifact is never built", hint="report this as a bug of pkg promote")


def promoted_plan(items: list[WantedArtifact], records: dict[str, ArtifactRecord], source: Release) -> list:
    """The artifacts as a build plan whose items are all cached: what the publish planner takes."""
    from packager.builders.builder import PlannedArtifact
    from packager.builders.sources import ArtifactSpec

    reason = f"promoted from {source.target.stage} release {source.id}"
    planned = []
    for item in items:
        record = records[item.id]
        meta = {"handler": item.handler} if item.handler else {}
        if item.filename:
            meta["filename"] = item.filename
        spec = ArtifactSpec(
            id=item.id,
            kind=item.kind or Kind(record.kind),
            settings={},
            files=[],
            write=_never_built,
            meta=meta,
            uses=list(item.uses),
            input_hash=record.input_hash,
        )
        planned.append(PlannedArtifact(spec, BuildStatus.CACHED, reason, record, up_to_date=True))
    return planned


__all__ = ["PromoteError", "WantedArtifact", "gather", "plan_promotion", "promoted_plan", "sha256_hex"]
