"""The shared vocabulary of pkg: services, artifact kinds, artifact ids and build statuses.

An artifact id is a stored string (`lambda/function/report`, `glue_spark/job_deps/orders/…`): it
is parsed once, here, into an `ArtifactId`, and every other module reads its fields instead of
splitting the string again. The enums are `StrEnum`s whose values are the strings already stored
in the index and hashed into input hashes, so adopting them changes no byte anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Service(StrEnum):
    """A service folder under src/, and the AWS service its artifacts go to."""

    LAMBDA = "lambda"
    GLUE_PYTHON_SHELL = "glue_python_shell"
    GLUE_SPARK = "glue_spark"
    EMR = "emr"

    @property
    def is_job(self) -> bool:
        return self is not Service.LAMBDA

    @property
    def is_glue(self) -> bool:
        return self in (Service.GLUE_PYTHON_SHELL, Service.GLUE_SPARK)


JOB_SERVICES: tuple[Service, ...] = tuple(service for service in Service if service.is_job)


class Role(StrEnum):
    """What an artifact is within its service: the second segment of its id."""

    FUNCTION = "function"  # lambda/function/<name>
    JOB = "job"  # <service>/job/<name>
    INTERNAL_LIBS = "internal_libs"  # <service>/internal_libs
    INTERNAL_LIBS_DEPS = "internal_libs_deps"  # lambda/internal_libs_deps[/<platform>]/<chunk>
    FUNCTION_DEPS = "function_deps"  # lambda/function_deps/<name>/<chunk>
    DEPS = "deps"  # <service>/deps
    JOB_DEPS = "job_deps"  # <service>/job_deps/<name>


class Kind(StrEnum):
    """The kind of a built artifact (stored in the index and hashed into its input hash)."""

    LAMBDA_FUNCTION = "lambda-function"
    LAMBDA_LAYER = "lambda-layer"
    LAMBDA_DEPS_INSTALL = "lambda-deps-install"  # an installed dependency set (its manifest)
    GLUE_PYTHON_SHELL_JOB = "glue-python-shell-job"
    GLUE_SPARK_JOB = "glue-spark-job"
    EMR_JOB = "emr-job"
    PYTHON_WHEEL = "python-wheel"  # internal_libs of a Python shell job
    PY_FILES_ZIP = "py-files-zip"  # internal_libs of a Spark or EMR job
    WHEELHOUSE = "wheelhouse"  # Glue dependencies: a zip of platform wheels, uploaded one by one
    PYTHON_ARCHIVE = "python-archive"  # EMR dependencies: the installed folder, for spark.archives


SCRIPT_KINDS: dict[Service, Kind] = {
    Service.GLUE_PYTHON_SHELL: Kind.GLUE_PYTHON_SHELL_JOB,
    Service.GLUE_SPARK: Kind.GLUE_SPARK_JOB,
    Service.EMR: Kind.EMR_JOB,
}
JOB_DEPS_KINDS = frozenset({Kind.WHEELHOUSE, Kind.PYTHON_ARCHIVE})


class ArtifactIdError(ValueError):
    """A string that is not an artifact id pkg makes."""


@dataclass(frozen=True, order=True)
class ArtifactId:
    """An artifact id, parsed: service, role, the function or job (or platform) name, the chunk number."""

    service: Service
    role: Role
    name: str | None = None  # function or job name; for internal_libs_deps, the platform ("python3.12-arm64")
    chunk: int | None = None  # dependency layer chunk number

    @classmethod
    def parse(cls, text: str) -> ArtifactId:
        """`lambda/function_deps/report/0` -> ArtifactId(LAMBDA, FUNCTION_DEPS, "report", 0)."""
        parts = text.split("/")
        try:
            service, role = Service(parts[0]), Role(parts[1])
        except (ValueError, IndexError):
            raise ArtifactIdError(f"not an artifact id: {text!r}") from None
        rest = parts[2:]
        name: str | None = None
        chunk: int | None = None
        if role in (Role.INTERNAL_LIBS_DEPS, Role.FUNCTION_DEPS) and rest and rest[-1].isdigit():
            chunk = int(rest.pop())
        if rest:
            name = rest.pop(0)
        if rest or not _shape_ok(role, name, chunk):
            raise ArtifactIdError(f"not an artifact id: {text!r}")
        return cls(service, role, name, chunk)

    @classmethod
    def function(cls, name: str) -> ArtifactId:
        return cls(Service.LAMBDA, Role.FUNCTION, name)

    @classmethod
    def job(cls, service: Service | str, name: str) -> ArtifactId:
        return cls(Service(service), Role.JOB, name)

    @classmethod
    def internal_libs(cls, service: Service | str) -> ArtifactId:
        return cls(Service(service), Role.INTERNAL_LIBS)

    def __str__(self) -> str:
        parts = [self.service.value, self.role.value]
        if self.name is not None:
            parts.append(self.name)
        if self.chunk is not None:
            parts.append(str(self.chunk))
        return "/".join(parts)

    @property
    def is_layer_chunk(self) -> bool:
        return self.chunk is not None

    @property
    def is_dependencies(self) -> bool:
        return self.role in (Role.INTERNAL_LIBS_DEPS, Role.FUNCTION_DEPS, Role.DEPS, Role.JOB_DEPS)

    @property
    def short_name(self) -> str:
        """What a user types for it: the function or job name, else the id itself."""
        if self.role in (Role.FUNCTION, Role.JOB) and self.name:
            return self.name
        return str(self)


def _shape_ok(role: Role, name: str | None, chunk: int | None) -> bool:
    if role in (Role.FUNCTION, Role.JOB, Role.JOB_DEPS):
        return bool(name) and chunk is None
    if role in (Role.INTERNAL_LIBS, Role.DEPS):
        return name is None and chunk is None
    if role is Role.FUNCTION_DEPS:
        return bool(name) and chunk is not None
    return chunk is not None  # internal_libs_deps: an optional platform, then the chunk


class BuildStatus(StrEnum):
    """What `pkg build` does (plan) or did (report) with one artifact."""

    BUILD = "build"  # planned: its input hash is not in the cache
    BUILT = "built"  # reported: written by this run
    CACHED = "cached"  # in the local cache (or fetched from the shared one)
