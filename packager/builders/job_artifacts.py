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

import ast
import os
import re
import shutil
import sys
import tempfile

import xxhash

from cache.hashing import FileDigests
from packager import BUILD_FORMAT_VERSION
from packager.builders.artifacts import ArtifactSpec, SourceFile, check_sources, internal_libs_files
from packager.builders.requirements import DependencyError, RequirementsReader
from packager.builders.wheels import (
    INTERNAL_LIBS_WHEEL,
    IndexOptions,
    WheelTarget,
    download_wheels,
    write_installed_archive,
    write_pure_wheel,
    write_wheelhouse,
)
from packager.builders.zips import ZipEntry, write_deterministic_zip
from packager.config import Config, job_settings
from packager.discover import INTERNAL_LIBS, Entry, Service, discover_service
from packager.errors import DiscoveryError, UnsafeFileError
from packager.runtimes import job_runtime

JOB_SERVICES = ("glue_python_shell", "glue_spark", "emr")

SCRIPT_KINDS = {"glue_python_shell": "glue-python-shell-job", "glue_spark": "glue-spark-job", "emr": "emr-job"}
WHEEL_KIND = "python-wheel"  # internal_libs of a Python shell job
PY_FILES_KIND = "py-files-zip"  # internal_libs of a Spark or EMR job
WHEELHOUSE_KIND = "wheelhouse"  # Glue dependencies: a zip of platform wheels, uploaded one by one
ARCHIVE_KIND = "python-archive"  # EMR dependencies: the installed folder, for spark.archives

# Bump when check_job_script changes what it accepts: cached verdicts are keyed by it.
JOB_SCRIPT_CHECKER = "job-script-1"
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


def job_id(service: str, name: str) -> str:
    return f"{service}/job/{name}"


def internal_libs_id(service: str) -> str:
    return f"{service}/internal_libs"


def deps_id(service: str, job: str | None = None) -> str:
    return f"{service}/deps" if job is None else f"{service}/job_deps/{job}"


def check_job_name(entry: Entry) -> str | None:
    """Why `entry.name` can't name a Glue/EMR job, or None."""
    where = f"{entry.source}:1:"
    if not _JOB_NAME.match(entry.name):
        return f"{where} '{entry.name}' can't be a job name: use letters, digits, '_' and '-'"
    if entry.name in sys.stdlib_module_names:
        return (
            f"{where} '{entry.name}' shadows the standard-library module '{entry.name}': the script's folder"
            " comes first on sys.path, so imports of it would load the job instead; rename the file"
        )
    return None


def check_job_script(source: bytes, path: str) -> str | None:
    """Why the file can't run as a job script (it must parse), as `path:line: what`, or None."""
    try:
        ast.parse(source, filename=path)
    except SyntaxError as error:
        return f"{path}:{error.lineno or 1}: syntax error: {error.msg}"
    except ValueError as error:
        return f"{path}:1: not a Python source file: {error}"
    return None


def _copy_writer(abspath: str):
    def write(path: str) -> int:
        shutil.copyfile(abspath, path)
        return os.path.getsize(path)

    return write


def script_spec(service: str, entry: Entry, root: str, digests: FileDigests, uses: list[str]) -> ArtifactSpec:
    """The job's entry script, uploaded byte for byte."""
    abspath = os.path.join(root, entry.source)
    folder = os.path.realpath(os.path.dirname(abspath))
    if os.path.islink(abspath) and not os.path.realpath(abspath).startswith(folder + os.sep):
        raise UnsafeFileError(
            f"{entry.source}:1: symlink to {os.readlink(abspath)} leaves src/{service}; refusing to follow it",
            hint=f"copy the file into src/{service} instead of linking it",
        )
    filename = f"{entry.name}.py"
    files = [SourceFile(filename, entry.source, abspath, digests.digest(entry.source, abspath))]
    kind = SCRIPT_KINDS[service]
    return ArtifactSpec(
        id=job_id(service, entry.name),
        kind=kind,
        settings={"kind": kind, "format": BUILD_FORMAT_VERSION},
        files=files,
        write=_copy_writer(abspath),
        suffix=".py",
        meta={"service": service, "job": entry.name, "filename": filename},
        uses=list(uses),
    )


def internal_libs_spec(service: Service, root: str, digests: FileDigests) -> tuple[ArtifactSpec, list[str]]:
    """internal_libs as a pure wheel (Python shell) or a py-files zip (Spark, EMR); and skipped secrets."""
    files, secrets = internal_libs_files(root, service.internal_libs, f"{INTERNAL_LIBS}/", digests)
    if service.name == "glue_python_shell":
        kind, suffix, filename = WHEEL_KIND, ".whl", INTERNAL_LIBS_WHEEL
        pairs = [(f.arcname, f.abspath) for f in files]

        def write(path: str) -> int:
            return write_pure_wheel(path, pairs)

    else:
        kind, suffix, filename = PY_FILES_KIND, ".zip", f"{INTERNAL_LIBS}.zip"
        entries = [ZipEntry(f.arcname, f.abspath) for f in files]

        def write(path: str) -> int:
            return write_deterministic_zip(path, entries)

    spec = ArtifactSpec(
        id=internal_libs_id(service.name),
        kind=kind,
        settings={"kind": kind, "format": BUILD_FORMAT_VERSION},
        files=files,
        write=write,
        suffix=suffix,
        meta={"service": service.name, "filename": filename},
    )
    return spec, secrets


def wheel_target(service: str, settings: dict) -> WheelTarget:
    """The Python and platform tags a job's dependencies are built for, from the runtime table."""
    version = settings["release_label" if service == "emr" else "glue_version"]
    runtime = job_runtime(service, version).python_runtime(settings.get("python_version"))
    return WheelTarget(runtime.python, tuple(runtime.platform_tags(settings.get("architecture", "x86_64"))))


def index_options(config: Config, settings: dict) -> IndexOptions:
    """Where a job's wheels come from: its own settings, else the repo's [tool.pkg.dependencies]."""
    repo = config.raw.get("dependencies", {})

    def pick(key: str, default):
        return settings.get(key, repo.get(key, default))

    return IndexOptions(
        pick("index_url", None),
        tuple(pick("extra_index_urls", ())),
        tuple(pick("find_links", ())),
        bool(pick("no_index", False)),
    )


def deps_spec(
    artifact_id: str,
    service: str,
    sources: list[str],
    reader: RequirementsReader,
    root: str,
    target: WheelTarget,
    index: IndexOptions,
) -> ArtifactSpec | None:
    """The dependency artifact of requirement files `sources` for `target`, or None if they list nothing.

    A requirements file is an input by its normalised set (comments, order and `-r` includes
    resolved, the same rules as Lambda's), not by its bytes.
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
        for source, r in zip(sources, read)
    ]
    kind = ARCHIVE_KIND if service == "emr" else WHEELHOUSE_KIND

    def write(path: str) -> int:
        with tempfile.TemporaryDirectory(prefix="pkg-wheels-") as folder:
            wheels = download_wheels(requirements, target, index, folder, root)
            if kind == ARCHIVE_KIND:
                return write_installed_archive(path, folder, wheels)
            return write_wheelhouse(path, folder, wheels)

    return ArtifactSpec(
        id=artifact_id,
        kind=kind,
        settings={
            "kind": kind,
            "format": BUILD_FORMAT_VERSION,
            **target.settings,
            **{f"index.{key}": value for key, value in index.settings.items()},
        },
        files=files,
        write=write,
        meta={"service": service, "filename": "deps.zip", "python": target.python},
    )


def service_artifacts(
    root: str, config: Config, service: Service, digests: FileDigests
) -> tuple[list[ArtifactSpec], list[str]]:
    """Every artifact of one job service folder, in a stable order; and the secret files left out."""
    specs: list[ArtifactSpec] = []
    secrets: list[str] = []
    if not service.entries:
        return specs, secrets
    reader = RequirementsReader(root, digests.digest)
    libs_ids: list[str] = []
    if service.internal_libs:
        libs, secrets = internal_libs_spec(service, root, digests)
        specs.append(libs)
        libs_ids = [libs.id]
    libs_requirements = service.internal_libs.requirements if service.internal_libs else None
    shared_sources = [libs_requirements] if libs_requirements else []
    default_settings = job_settings(config, service.name, "")
    default_key = (wheel_target(service.name, default_settings), index_options(config, default_settings))
    by_id: dict[str, ArtifactSpec] = {}
    jobs = []
    for entry in service.entries:
        settings = job_settings(config, service.name, entry.name)
        key = (wheel_target(service.name, settings), index_options(config, settings))
        if entry.requirements is None and key == default_key:
            artifact_id, sources = deps_id(service.name), shared_sources
        else:
            own = [entry.requirements] if entry.requirements else []
            artifact_id, sources = deps_id(service.name, entry.name), shared_sources + own
        if artifact_id not in by_id:
            deps = deps_spec(artifact_id, service.name, sources, reader, root, *key)
            by_id[artifact_id] = deps
        deps = by_id[artifact_id]
        jobs.append(script_spec(service.name, entry, root, digests, libs_ids + ([deps.id] if deps else [])))
    specs += [spec for spec in by_id.values() if spec is not None]
    specs += jobs
    return specs, secrets


def job_artifacts(ws, digests: FileDigests, warnings: list[str]) -> list[ArtifactSpec]:
    """The artifacts of src/glue_python_shell, src/glue_spark and src/emr; secrets skipped go to `warnings`.

    Raises DiscoveryError listing every job script that can't run; nothing is built while any remains.
    """
    services = [discover_service(ws.root, name) for name in JOB_SERVICES]
    problems = [p for service in services for p in check_sources(
            ws.store.index, service, ws.root, digests, check_job_name, check_job_script, JOB_SCRIPT_CHECKER
        )]
    if problems:
        raise DiscoveryError(problems, hint="fix the files above; nothing was built")
    specs: list[ArtifactSpec] = []
    for service in services:
        found, secrets = service_artifacts(ws.root, ws.config, service, digests)
        specs += found
        warnings += [f"{path}: left out of the artifact (secrets are never packaged)" for path in secrets]
        warnings += unconfirmed_runtimes(ws.config, service)
    return specs


def unconfirmed_runtimes(config: Config, service: Service) -> list[str]:
    """A warning per job whose runtime row is marked unconfirmed in the runtime table."""
    found = []
    for entry in service.entries:
        settings = job_settings(config, service.name, entry.name)
        version = settings["release_label" if service.name == "emr" else "glue_version"]
        if not job_runtime(service.name, version).confirmed:
            found.append(
                f"{entry.source}: {version}'s Python and platform are unconfirmed facts (packager/runtimes.py);"
                " check its dependencies on the real service"
            )
    return found
