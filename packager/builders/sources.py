"""Source files -> artifact specs: what an artifact is before it is built (id, inputs, input hash, writer).

An `ArtifactSpec` is plain data plus a `write` function; the builder decides whether to call it
from the index, and `explain` says why an artifact must be rebuilt. The source side every service
shares lives here too: the symlink guards (an entry file, the internal_libs tree) and the one
internal_libs spec builder, told by a `LibsPackaging` row how its service ships it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from cache.hashing import FileDigests, SymlinkEscapeError, UnreadableEntryError, input_hash, walk_tree
from packager import BUILD_FORMAT_VERSION
from packager.builders.wheels import INTERNAL_LIBS_WHEEL
from packager.discover import INTERNAL_LIBS, Entry, InternalLibs, ServiceFolder
from packager.errors import UnsafeFileError
from packager.model import ArtifactId, Kind, Service


@dataclass(frozen=True)
class SourceFile:
    """One input file: its name inside the artifact, its repo-relative source, and its digest."""

    arcname: str
    source: str
    abspath: str
    digest: str


@dataclass
class ArtifactSpec:
    """An artifact to be built from `files` and `settings`; `write(tmp_path)` returns its unzipped size."""

    id: str
    kind: Kind
    settings: dict
    files: list[SourceFile]
    write: Callable[[str], int]
    suffix: str = ".zip"
    meta: dict = field(default_factory=dict)
    uses: list[str] = field(default_factory=list)  # ids of the artifacts this one needs (its layers)
    input_hash: str = ""
    # What `explain` compares when the inputs aren't source files (a dependency chunk: its distributions).
    inputs: dict[str, str] | None = None
    unzipped_size: int | None = None  # known before building (dependency chunks), else None

    @cached_property
    def artifact(self) -> ArtifactId:
        """The id, parsed once (read its service, role and name here, never by splitting `id`)."""
        return ArtifactId.parse(self.id)

    def __post_init__(self) -> None:
        if not self.input_hash:
            self.input_hash = input_hash(self.settings, ((f.arcname, f.digest) for f in self.files))

    @property
    def manifest(self) -> dict:
        """What `explain` compares with the next build: the settings and each source file's digest."""
        files = self.inputs if self.inputs is not None else {f.source: f.digest for f in self.files}
        return {"settings": self.settings, "files": files}


def explain(previous: dict | None, current: dict) -> str:
    """Why an artifact whose input hash is not in the index must be built, in a few words."""
    if previous is None:
        return "new"
    reasons = []
    old_settings, new_settings = previous.get("settings", {}), current["settings"]
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            reasons.append(f"{key} changed: {_short(old_settings.get(key))} -> {_short(new_settings.get(key))}")
    old_files, new_files = previous.get("files", {}), current["files"]
    changed = [path for path in new_files if path in old_files and old_files[path] != new_files[path]]
    added = [path for path in new_files if path not in old_files]
    removed = [path for path in old_files if path not in new_files]
    for label, paths in (("changed", changed), ("added", added), ("removed", removed)):
        if paths:
            shown = ", ".join(sorted(paths)[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            reasons.append(f"{shown} {label}" if len(paths) == 1 else f"{label}: {shown}")
    return "; ".join(reasons) or "inputs changed"


def _short(value) -> str:
    text = "(unset)" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def entry_file(root: str, entry: Entry, folder: ServiceFolder) -> str:
    """The absolute path of a function's or job's `.py`, refusing a symlink that leaves its service folder."""
    abspath = os.path.join(root, entry.source)
    if os.path.islink(abspath):
        real, top = os.path.realpath(abspath), os.path.realpath(os.path.dirname(abspath))
        if not real.startswith(top + os.sep):
            raise UnsafeFileError(
                f"{entry.source}:1: symlink to {os.readlink(abspath)} leaves {folder.folder}; refusing to follow it",
                hint=f"copy the file into {folder.folder} instead of linking it",
            )
    return abspath


def included(relpath: str, include: Sequence[str]) -> bool:
    """Whether a file of internal_libs is packaged under the allowlist `include` (empty: every file).

    A pattern matches the path relative to internal_libs (`*` crosses folders: `*.py` is every .py) or
    the file's name; secrets are left out before this, whatever the patterns say.
    """
    if not include:
        return True
    name = relpath.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(relpath, pattern) or fnmatch.fnmatchcase(name, pattern) for pattern in include)


def internal_libs_files(
    root: str, libs: InternalLibs, arc_prefix: str, digests: FileDigests, include: Sequence[str] = ()
) -> tuple[list[SourceFile], list[str]]:
    """The files of an internal_libs tree as inputs under `arc_prefix`, and the secret files left out.

    requirements.txt is the dependency list (built into the dependency artifacts), not code. With
    `include` (the service's allowlist), only the files it matches are packaged.
    """
    try:
        tree = walk_tree(os.path.join(root, libs.path), skip={"requirements.txt"})
    except SymlinkEscapeError as error:
        raise UnsafeFileError(
            f"{libs.path}/{error.link}:1: symlink to {error.target} leaves {libs.path}; refusing to follow it",
            hint="copy what it points at into internal_libs, or remove the link",
        ) from None
    except UnreadableEntryError as error:
        raise UnsafeFileError(
            f"{libs.path}/{error.relpath}:1: {error.problem}",
            hint="fix or remove it: nothing was built",
        ) from None
    files = [
        SourceFile(
            f"{arc_prefix}{f.relpath}",
            f"{libs.path}/{f.relpath}",
            f.abspath,
            digests.digest(f"{libs.path}/{f.relpath}", f.abspath),
        )
        for f in tree.files
        if included(f.relpath, include)
    ]
    return files, [f"{libs.path}/{path}" for path in tree.skipped_secrets]


Writer = Callable[[str, list[SourceFile]], int]  # (path, files) -> unzipped size


def write_zip(path: str, files: list[SourceFile]) -> int:
    """A deterministic zip of `files` under their arcnames."""
    from packager.builders.zips import ZipEntry, write_deterministic_zip

    return write_deterministic_zip(path, [ZipEntry(f.arcname, f.abspath) for f in files])


def write_wheel(path: str, files: list[SourceFile]) -> int:
    """The pure `internal_libs-0.0.0-py3-none-any.whl` of `files`."""
    from packager.builders.wheels import write_pure_wheel

    return write_pure_wheel(path, [(f.arcname, f.abspath) for f in files])


@dataclass(frozen=True)
class LibsPackaging:
    """How one service ships internal_libs: where in the archive, as what kind, written how."""

    arc_prefix: str  # "python/internal_libs/" (Lambda layer) or "internal_libs/"
    kind: Kind
    write: Writer
    suffix: str = ".zip"
    filename: str | None = None  # the name it is uploaded under (jobs), kept in the record's meta


# How each service ships internal_libs: a layer Lambda extracts to /opt (so `python/...`), a pure
# wheel for Glue Python shell's --extra-py-files, a zip for Spark's --extra-py-files / EMR's --py-files.
INTERNAL_LIBS_PACKAGING: dict[Service, LibsPackaging] = {
    Service.LAMBDA: LibsPackaging(f"python/{INTERNAL_LIBS}/", Kind.LAMBDA_LAYER, write_zip),
    Service.GLUE_PYTHON_SHELL: LibsPackaging(
        f"{INTERNAL_LIBS}/", Kind.PYTHON_WHEEL, write_wheel, ".whl", INTERNAL_LIBS_WHEEL
    ),
    Service.GLUE_SPARK: LibsPackaging(
        f"{INTERNAL_LIBS}/", Kind.PY_FILES_ZIP, write_zip, ".zip", f"{INTERNAL_LIBS}.zip"
    ),
    Service.EMR: LibsPackaging(f"{INTERNAL_LIBS}/", Kind.PY_FILES_ZIP, write_zip, ".zip", f"{INTERNAL_LIBS}.zip"),
}


def internal_libs_spec(
    root: str, folder: ServiceFolder, digests: FileDigests, include: Sequence[str] = ()
) -> tuple[ArtifactSpec, list[str]]:
    """The internal_libs artifact of a service folder, packaged as its service's row says; and the secrets left out.

    `include` is the service's packaging allowlist (`[tool.pkg.<service>] include`; empty: every file)."""
    assert folder.internal_libs is not None
    packaging = INTERNAL_LIBS_PACKAGING[folder.name]
    files, secrets = internal_libs_files(root, folder.internal_libs, packaging.arc_prefix, digests, include)
    spec = ArtifactSpec(
        id=str(ArtifactId.internal_libs(folder.name)),
        kind=packaging.kind,
        settings={"kind": packaging.kind, "format": BUILD_FORMAT_VERSION},
        files=files,
        write=lambda path: packaging.write(path, files),
        suffix=packaging.suffix,
        meta={"service": folder.name, "filename": packaging.filename} if packaging.filename else {},
    )
    return spec, secrets


def secret_warnings(paths: list[str]) -> list[str]:
    """The warning for each secret file (or folder, ending "/") left out of an artifact."""
    return [f"{path}: left out of the artifact (secrets are never packaged)" for path in paths]


@dataclass(frozen=True)
class CollectRequest:
    """What a `pkg` command asks of every service's builder besides its folder."""

    names: tuple[str, ...] = ()  # the artifacts named on the command line (all when empty)
    refresh_deps: bool = False  # re-resolve every dependency set
    force: bool = False  # every artifact is to be written anew
    progress: Callable[[str], None] | None = None  # long work (installs) reports here


@dataclass
class ServiceArtifacts:
    """What one service folder builds into: its artifact specs, in a stable order, and what to warn about."""

    specs: list[ArtifactSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
