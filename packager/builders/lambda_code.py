"""Lambda's code artifacts: one zip per function, one layer for internal_libs.

The function zip holds `<name>.py` at its root (Handler `<name>.<handler>`, `handler` unless set);
the internal_libs layer holds `python/internal_libs/...`, which Lambda extracts to /opt/python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cache.hashing import FileDigests
from packager import BUILD_FORMAT_VERSION
from packager.builders.sources import (
    ArtifactSpec,
    CollectRequest,
    ServiceArtifacts,
    SourceFile,
    entry_file,
    internal_libs_spec,
    secret_warnings,
    write_zip,
)
from packager.config import Config, packaging_include
from packager.discover import Entry, ServiceFolder
from packager.model import ArtifactId, ArtifactIdError, Kind, Role, Service

if TYPE_CHECKING:
    from packager.builders.builder import Workspace


def function_id(name: str) -> str:
    """The artifact id of a function's code zip."""
    return str(ArtifactId.function(name))


@dataclass
class LambdaCode:
    """The code artifacts of src/lambda, and the secret files left out of them."""

    functions: list[ArtifactSpec]
    internal_libs: ArtifactSpec | None
    skipped_secrets: list[str]

    @property
    def all(self) -> list[ArtifactSpec]:
        return ([self.internal_libs] if self.internal_libs else []) + self.functions


def function_spec(
    root: str, config: Config, folder: ServiceFolder, entry: Entry, digests: FileDigests, layer_ids: list[str]
) -> ArtifactSpec:
    """The code zip of one function (its handler file alone, at the zip root); it runs with `layer_ids`."""
    abspath = entry_file(root, entry, folder)
    settings = config.lambda_settings(entry.name)
    files = [SourceFile(f"{entry.name}.py", entry.source, abspath, digests.digest(entry.source, abspath))]
    return ArtifactSpec(
        id=function_id(entry.name),
        kind=Kind.LAMBDA_FUNCTION,
        settings={
            "kind": Kind.LAMBDA_FUNCTION,
            "format": BUILD_FORMAT_VERSION,
            "runtime": settings["runtime"],
            "architecture": settings["architecture"],
        },
        files=files,
        write=lambda path: write_zip(path, files),
        meta={"handler": f"{entry.name}.{settings['handler']}"},  # not an input: the zip is the same
        uses=list(layer_ids),
    )


def lambda_code(root: str, config: Config, folder: ServiceFolder, digests: FileDigests) -> LambdaCode:
    """Every code artifact of src/lambda, in a stable order."""
    include = packaging_include(config, folder.name)
    layer, secrets = internal_libs_spec(root, folder, digests, include) if folder.internal_libs else (None, [])
    layer_ids = [layer.id] if layer else []
    functions = [function_spec(root, config, folder, entry, digests, layer_ids) for entry in folder.entries]
    return LambdaCode(functions, layer, secrets)


def lambda_artifacts(
    ws: Workspace, folder: ServiceFolder, digests: FileDigests, request: CollectRequest
) -> ServiceArtifacts:
    """src/lambda's artifacts: internal_libs, the dependency layer chunks, the functions (which use them).

    Dependency sets the index doesn't know are installed here (their chunks' hashes come from the
    installed files); limits are checked before anything is built.
    """
    from packager.builders.lambda_deps import check_function_limits, lambda_dependency_layers

    code = lambda_code(ws.root, ws.config, folder, digests)
    only = functions_named(request.names, folder) if request.names else None
    deps = lambda_dependency_layers(
        ws, folder, digests, request.refresh_deps, request.progress, code.functions, only, request.force
    )
    if deps.specs:
        for function in code.functions:
            function.uses += deps.by_function[str(function.artifact.name)]
        layers = {spec.id: spec for spec in [*deps.specs, *([code.internal_libs] if code.internal_libs else [])]}
        check_function_limits(code.functions, layers, deps)
    specs = [*([code.internal_libs] if code.internal_libs else []), *deps.specs, *code.functions]
    return ServiceArtifacts(specs, secret_warnings(code.skipped_secrets) + deps.warnings)


def functions_named(names: tuple[str, ...], folder: ServiceFolder) -> set[str] | None:
    """The Lambda functions whose dependency layers `names` need, or None for all of them."""
    functions = {entry.name for entry in folder.entries}
    wanted: set[str] = set()
    for name in names:
        if name in functions:
            wanted.add(name)
            continue
        try:
            artifact = ArtifactId.parse(name)
        except ArtifactIdError:
            continue
        if artifact.service is not Service.LAMBDA:
            continue
        if artifact.role in (Role.FUNCTION, Role.FUNCTION_DEPS) and artifact.name:
            wanted.add(artifact.name)
        elif artifact.role in (Role.INTERNAL_LIBS, Role.INTERNAL_LIBS_DEPS):  # the shared layers: every platform's
            return None
    return wanted
