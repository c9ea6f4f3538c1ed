"""Glue Python shell, Glue Spark and EMR artifacts: the job script, internal_libs, and dependencies.

Per service folder `src/<service>/`:
- `<service>/job/<name>`: the job script itself, uploaded as is;
- `<service>/internal_libs`: a pure `py3-none-any` wheel (Python shell, `--extra-py-files`) or a
  zip with `internal_libs/...` at its root (Spark `--extra-py-files`, EMR `--py-files`);
- `<service>/deps`: the wheels of `internal_libs/requirements.txt` for the service's default runtime
  (Glue: the wheels, for `--additional-python-modules`; EMR: an archive of them installed into one
  folder, for `spark.archives`). A job with its own `<name>.requirements.txt`, or a runtime other than
  the service default, gets `<service>/job_deps/<name>` with its whole set instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

import xxhash

from cache.hashing import FileDigests
from packager import BUILD_FORMAT_VERSION
from packager.builders.installer import IndexOptions, Platform, index_options
from packager.builders.requirements import RequirementsReader, canonical_name, requirement_name
from packager.builders.sources import (
    ArtifactSpec,
    CollectRequest,
    ServiceArtifacts,
    SourceFile,
    entry_file,
    internal_libs_spec,
    secret_warnings,
)
from packager.builders.wheels import (
    download_wheels,
    write_installed_archive,
    write_wheelhouse,
)
from packager.config import Config, packaging_include, runtime_version
from packager.discover import Entry, ServiceFolder
from packager.errors import DependencyError, DiscoveryError
from packager.model import SCRIPT_KINDS, ArtifactId, Kind, Role, Service
from packager.runtimes import ProvidedSet, job_provided, job_runtime

if TYPE_CHECKING:
    from packager.builders.builder import Workspace



def job_id(service: Service | str, name: str) -> str:
    """The artifact id of a job's script."""
    return str(ArtifactId.job(service, name))


def deps_id(service: Service, job: str | None = None) -> str:
    """The id of a service's shared dependencies, or of one job's own."""
    if job is None:
        return str(ArtifactId(service, Role.DEPS))
    return str(ArtifactId(service, Role.JOB_DEPS, job))


def script_spec(root: str, folder: ServiceFolder, entry: Entry, digests: FileDigests, uses: list[str]) -> ArtifactSpec:
    """The job's entry script, uploaded byte for byte."""
    abspath = entry_file(root, entry, folder)
    filename = f"{entry.name}.py"
    files = [SourceFile(filename, entry.source, abspath, digests.digest(entry.source, abspath))]
    kind = SCRIPT_KINDS[folder.name]

    def write(path: str) -> int:
        shutil.copyfile(abspath, path)
        return os.path.getsize(path)

    return ArtifactSpec(
        id=job_id(folder.name, entry.name),
        kind=kind,
        settings={"kind": kind, "format": BUILD_FORMAT_VERSION},
        files=files,
        write=write,
        suffix=".py",
        meta={"service": folder.name, "job": entry.name, "filename": filename},
        uses=list(uses),
    )


def wheel_platform(service: Service, settings: dict[str, Any]) -> Platform:
    """The Python and platform tags a job's dependencies are built for, from the runtime table."""
    runtime = job_runtime(service, runtime_version(service, settings))
    assert runtime is not None  # config validation accepts only versions in the runtime table
    return Platform(runtime.python_runtime(settings.get("python_version")), settings.get("architecture", "x86_64"))


def runtime_provided(config: Config, service: Service, settings: dict[str, Any]) -> ProvidedSet | None:
    """What a job's runtime already ships (runtimes.JOB_PROVIDED), unless `skip_runtime_provided = false`."""
    from packager.builders.lambda_deps import skip_runtime_provided

    if not skip_runtime_provided(config):
        return None
    return job_provided(service, runtime_version(service, settings), settings.get("library_set"))


def _wheel_requires(path: str) -> set[str]:
    """Canonical names a wheel's METADATA requires (Requires-Dist), leaving out those only an extra asks for."""
    import zipfile

    with zipfile.ZipFile(path) as wheel:
        metadata = next((n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        text = wheel.read(metadata).decode("utf-8", "replace") if metadata else ""
    names = set()
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line.replace('"', "").replace("'", ""):
            names.add(requirement_name(line.split(":", 1)[1].strip().split(";", 1)[0].replace(" ", "")))
    return names


def without_provided(
    folder: str, wheels: list[str], provided: ProvidedSet | None, direct: frozenset[str]
) -> tuple[list[str], list[str]]:
    """`wheels` (file names in `folder`) less those of distributions the runtime provides that only come in
    as a dependency; and the ones left out. One pinned directly is kept, with what it needs (boto3 pinned
    keeps its botocore: the runtime's own would not match it)."""
    if provided is None:
        return wheels, []
    names = {wheel: canonical_name(wheel.split("-", 1)[0]) for wheel in wheels}
    requires = {names[wheel]: _wheel_requires(os.path.join(folder, wheel)) for wheel in wheels}
    needed, todo = set(), [name for name in direct if name in requires and name in provided.names]
    while todo:  # what the directly pinned provided distributions need, all the way down
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [dependency for dependency in requires.get(name, ()) if dependency in requires]
    kept: list[str] = []
    dropped: list[str] = []
    for wheel in wheels:
        (dropped if names[wheel] in provided.names and names[wheel] not in needed else kept).append(wheel)
    return kept, dropped


def deps_spec(
    artifact_id: str,
    service: Service,
    sources: list[str],
    reader: RequirementsReader,
    root: str,
    platform: Platform,
    index: IndexOptions,
    provided: ProvidedSet | None = None,
) -> ArtifactSpec | None:
    """The dependency artifact of requirement files `sources` for `platform`, or None if they list nothing.

    A requirements file is an input by its normalised set (comments, order and `-r` includes
    resolved, the same rules as Lambda's), not by its bytes. What the runtime `provided` is left
    out when only a dependency brings it in; the build says so (meta["notes"]).
    """
    read = [reader.read(source) for source in sources]
    if any(r.constraints for r in read):
        raise DependencyError(
            f"{sources[0]}: constraints files (-c) are not supported for Glue and EMR job dependencies",
            hint="pin the versions in the requirements file itself",
        )
    requirements = sorted({line for r in read for line in r.lines})
    if not requirements:
        return None
    files = [
        SourceFile(source, source, os.path.join(root, source), xxhash.xxh3_128("\n".join(r.lines).encode()).hexdigest())
        for source, r in zip(sources, read, strict=True)
    ]
    kind = Kind.PYTHON_ARCHIVE if service is Service.EMR else Kind.WHEELHOUSE
    direct = frozenset(name for r in read for name in r.names)
    meta: dict[str, Any] = {"service": service, "filename": "deps.zip", "python": platform.runtime.python}

    def write(path: str) -> int:
        with tempfile.TemporaryDirectory(prefix="pkg-wheels-") as folder:
            wheels, dropped = without_provided(
                folder, download_wheels(requirements, platform, index, folder, root, tuple(sources)), provided, direct
            )
            if dropped:
                assert provided is not None
                names = ", ".join(wheel.split("-", 2)[0] + " " + wheel.split("-", 2)[1] for wheel in dropped)
                meta["notes"] = [
                    f"{artifact_id}: left out {names}: only dependencies of {', '.join(sources)} bring them in,"
                    f" and the runtime provides them ({provided.source}); pin one in the requirements to ship it"
                ]
            if kind is Kind.PYTHON_ARCHIVE:
                return write_installed_archive(path, folder, wheels)
            return write_wheelhouse(path, folder, wheels)

    return ArtifactSpec(
        id=artifact_id,
        kind=kind,
        settings={
            "kind": kind,
            "format": BUILD_FORMAT_VERSION,
            "python": platform.runtime.python,
            "platforms": platform.tags,
            **{f"index.{key}": value for key, value in index.hashed().items()},
            **({"runtime_provided": sorted(provided.names)} if provided else {}),
        },
        files=files,
        write=write,
        meta=meta,
    )


def service_artifacts(
    root: str, config: Config, folder: ServiceFolder, digests: FileDigests
) -> tuple[list[ArtifactSpec], list[str]]:
    """Every artifact of one job service folder, in a stable order; and the secret files left out."""
    specs: list[ArtifactSpec] = []
    secrets: list[str] = []
    if not folder.entries:
        return specs, secrets
    service = folder.name
    reader = RequirementsReader(root, digests.digest)
    libs_ids: list[str] = []
    if folder.internal_libs:
        libs, secrets = internal_libs_spec(root, folder, digests, packaging_include(config, service))
        specs.append(libs)
        libs_ids = [libs.id]
    libs_requirements = folder.internal_libs.requirements if folder.internal_libs else None
    shared_sources = [libs_requirements] if libs_requirements else []
    default_settings = config.resolve(service, "")
    default_key = (
        wheel_platform(service, default_settings),
        index_options(config, default_settings),
        runtime_provided(config, service, default_settings),
    )
    by_id: dict[str, ArtifactSpec | None] = {}
    jobs = []
    for entry in folder.entries:
        settings = config.resolve(service, entry.name)
        key = (
            wheel_platform(service, settings),
            index_options(config, settings),
            runtime_provided(config, service, settings),
        )
        if entry.requirements is None and key == default_key:
            artifact_id, sources = deps_id(service), shared_sources
        else:
            own = [entry.requirements] if entry.requirements else []
            artifact_id, sources = deps_id(service, entry.name), shared_sources + own
        if artifact_id not in by_id:
            by_id[artifact_id] = deps_spec(artifact_id, service, sources, reader, root, *key)
        deps = by_id[artifact_id]
        jobs.append(script_spec(root, folder, entry, digests, libs_ids + ([deps.id] if deps else [])))
    specs += [spec for spec in by_id.values() if spec is not None]
    specs += jobs
    return specs, secrets


def job_artifacts(
    ws: Workspace, folder: ServiceFolder, digests: FileDigests, request: CollectRequest
) -> ServiceArtifacts:
    """The artifacts of one job service folder (Glue Python shell, Glue Spark or EMR), already checked by discovery.

    Job dependencies are resolved when written, so `request` changes nothing here: re-resolving them
    (`--refresh-deps`) means writing them again, which the build plan decides.
    """
    specs, secrets = service_artifacts(ws.root, ws.config, folder, digests)
    return ServiceArtifacts(specs, secret_warnings(secrets) + unconfirmed_runtimes(ws.config, folder))


def check_unique_glue_job_names(folders: list[ServiceFolder]) -> None:
    """Glue job names are `<project>-<stage>-<file name>` in both Glue services: one name, one job.

    Raises DiscoveryError naming both paths of every clash, before anything is built.
    """
    seen: dict[str, Entry] = {}
    problems = []
    for folder in folders:
        if not folder.name.is_glue:
            continue
        for entry in folder.entries:
            other = seen.setdefault(entry.name, entry)
            if other is not entry:
                problems.append(
                    f"{entry.source}: Glue job '{entry.name}' is also {other.source}; a Glue job name is"
                    " <project>-<stage>-<file name> in both Glue services"
                )
    if problems:
        raise DiscoveryError(problems, hint="rename one of the files; nothing was built")


def unconfirmed_runtimes(config: Config, folder: ServiceFolder) -> list[str]:
    """A warning per job whose runtime row is marked unconfirmed in the runtime table."""
    found = []
    for entry in folder.entries:
        settings = config.resolve(folder.name, entry.name)
        version = runtime_version(folder.name, settings)
        runtime = job_runtime(folder.name, version)
        if runtime is not None and not runtime.confirmed:
            found.append(
                f"{entry.source}: {version}'s Python and platform are unconfirmed facts (packager/runtimes.py);"
                " check its dependencies on the real service"
            )
    return found
