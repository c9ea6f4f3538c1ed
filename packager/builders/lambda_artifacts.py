"""Lambda's code artifacts: one zip per function, one layer for internal_libs.

The function zip holds `<name>.py` at its root (Handler `<name>.handler`); the internal_libs
layer holds `python/internal_libs/...`, which Lambda extracts to /opt/python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cache.hashing import FileDigests
from packager import BUILD_FORMAT_VERSION
from packager.builders.artifacts import ArtifactSpec, SourceFile, internal_libs_files
from packager.builders.zips import ZipEntry, write_deterministic_zip
from packager.config import Config
from packager.discover import INTERNAL_LIBS, Entry, Service
from packager.errors import UnsafeFileError

FUNCTION_KIND = "lambda-function"
LAYER_KIND = "lambda-layer"
INTERNAL_LIBS_ID = "lambda/internal_libs"


def function_id(name: str) -> str:
    return f"lambda/function/{name}"


@dataclass
class LambdaCode:
    """The code artifacts of src/lambda, and the secret files left out of them."""

    functions: list[ArtifactSpec]
    internal_libs: ArtifactSpec | None
    skipped_secrets: list[str]

    @property
    def all(self) -> list[ArtifactSpec]:
        return ([self.internal_libs] if self.internal_libs else []) + self.functions


def _zip_writer(files: list[SourceFile]):
    entries = [ZipEntry(f.arcname, f.abspath) for f in files]
    return lambda path: write_deterministic_zip(path, entries)


def _inside(path: str, folder: str) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real.startswith(top + os.sep)


def function_spec(
    root: str, config: Config, entry: Entry, digests: FileDigests, layer_ids: list[str]
) -> ArtifactSpec:
    """The code zip of one function (its handler file alone, at the zip root); it runs with `layer_ids`."""
    abspath = os.path.join(root, entry.source)
    if os.path.islink(abspath) and not _inside(abspath, os.path.dirname(abspath)):
        raise UnsafeFileError(
            f"{entry.source}:1: symlink to {os.readlink(abspath)} leaves src/lambda; refusing to follow it",
            hint="copy the file into src/lambda instead of linking it",
        )
    settings = config.lambda_settings(entry.name)
    files = [SourceFile(f"{entry.name}.py", entry.source, abspath, digests.digest(entry.source, abspath))]
    return ArtifactSpec(
        id=function_id(entry.name),
        kind=FUNCTION_KIND,
        settings={
            "kind": FUNCTION_KIND,
            "format": BUILD_FORMAT_VERSION,
            "runtime": settings["runtime"],
            "architecture": settings["architecture"],
        },
        files=files,
        write=_zip_writer(files),
        meta={"handler": f"{entry.name}.handler"},
        uses=list(layer_ids),
    )


def internal_libs_spec(root: str, service: Service, digests: FileDigests) -> tuple[ArtifactSpec, list[str]]:
    """The internal_libs layer (`python/internal_libs/...`) and the secret files it left out."""
    files, secrets = internal_libs_files(root, service.internal_libs, f"python/{INTERNAL_LIBS}/", digests)
    spec = ArtifactSpec(
        id=INTERNAL_LIBS_ID,
        kind=LAYER_KIND,
        settings={"kind": LAYER_KIND, "format": BUILD_FORMAT_VERSION},
        files=files,
        write=_zip_writer(files),
    )
    return spec, secrets


def lambda_code(root: str, config: Config, service: Service, digests: FileDigests) -> LambdaCode:
    """Every code artifact of src/lambda, in a stable order."""
    layer, secrets = internal_libs_spec(root, service, digests) if service.internal_libs else (None, [])
    layer_ids = [layer.id] if layer else []
    functions = [function_spec(root, config, entry, digests, layer_ids) for entry in service.entries]
    return LambdaCode(functions, layer, secrets)
