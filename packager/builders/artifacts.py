"""What an artifact is before it is built: its id, its inputs, its input hash, how to write it.

An `ArtifactSpec` is plain data plus a `write` function; the builder decides whether to call it
from the index, and `explain` says why an artifact must be rebuilt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from cache.hashing import FileDigests, SymlinkEscapeError, input_hash, walk_tree
from packager.discover import InternalLibs, Service
from packager.errors import UnsafeFileError
from packager.model import ArtifactId


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
    kind: str
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


def internal_libs_files(root: str, libs: InternalLibs, arc_prefix: str, digests: FileDigests):
    """The files of an internal_libs tree as inputs under `arc_prefix`, and the secret files left out.

    requirements.txt is the dependency list (built into the dependency artifacts), not code.
    """
    try:
        tree = walk_tree(os.path.join(root, libs.path), skip={"requirements.txt"})
    except SymlinkEscapeError as error:
        raise UnsafeFileError(
            f"{libs.path}/{error.link}:1: symlink to {error.target} leaves {libs.path}; refusing to follow it",
            hint="copy what it points at into internal_libs, or remove the link",
        ) from None
    files = [
        SourceFile(
            f"{arc_prefix}{f.relpath}",
            f"{libs.path}/{f.relpath}",
            f.abspath,
            digests.digest(f"{libs.path}/{f.relpath}", f.abspath),
        )
        for f in tree.files
    ]
    return files, [f"{libs.path}/{path}" for path in tree.skipped_secrets]


def check_sources(
    index, service: Service, root: str, digests: FileDigests, check_name, check_source, checker: str
) -> list[str]:
    """`path:line: what` for every entry of `service` whose name or source fails the checks.

    A source that passed `checker` once is not parsed again while its digest is unchanged.
    """
    problems = list(service.problems)
    passed = index.checked_sources(checker)
    newly_passed = []
    for entry in service.entries:
        problem = check_name(entry)
        if problem is None:
            abspath = os.path.join(root, entry.source)
            digest = digests.digest(entry.source, abspath)
            if digest in passed:
                continue
            with open(abspath, "rb") as stream:
                problem = check_source(stream.read(), entry.source)
            if problem is None:
                newly_passed.append(digest)
        if problem:
            problems.append(problem)
    index.save_checked_sources(newly_passed, checker)
    return problems
