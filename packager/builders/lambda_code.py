"""Lambda's code artifacts: one zip per function, one layer for internal_libs.

The function zip holds `<name>.py` at its root (Handler `<name>.handler`); the internal_libs
layer holds `python/internal_libs/...`, which Lambda extracts to /opt/python.
"""

from __future__ import annotations

from dataclasses import dataclass

from cache.hashing import FileDigests
from packager import BUILD_FORMAT_VERSION
from packager.builders.sources import (
    ArtifactSpec,
    SourceFile,
    entry_file,
    internal_libs_spec,
    write_zip,
)
from packager.config import Config
from packager.discover import Entry, ServiceFolder
from packager.model import ArtifactId, Kind


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
        meta={"handler": f"{entry.name}.handler"},
        uses=list(layer_ids),
    )


def lambda_code(root: str, config: Config, folder: ServiceFolder, digests: FileDigests) -> LambdaCode:
    """Every code artifact of src/lambda, in a stable order."""
    layer, secrets = internal_libs_spec(root, folder, digests) if folder.internal_libs else (None, [])
    layer_ids = [layer.id] if layer else []
    functions = [function_spec(root, config, folder, entry, digests, layer_ids) for entry in folder.entries]
    return LambdaCode(functions, layer, secrets)
