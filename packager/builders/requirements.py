"""Requirements files -> one normalised, sorted list of requirement lines.

Two files that say the same thing (other comments, other order, the same `-r` includes inlined)
normalise to the same lines, so the functions that use them share one dependency install.
Installer options do not belong in these files: index settings come from `[tool.pkg.dependencies]`,
so every function of a repo installs from the same place and the options are part of the hash.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

from packager.errors import DependencyError


@dataclass(frozen=True)
class Requirements:
    """The normalised content of a requirements file and everything it includes."""

    lines: tuple[str, ...]  # sorted, deduplicated requirement lines
    constraints: tuple[str, ...]  # from `-c` files, sorted, deduplicated
    sources: tuple[str, ...]  # repo-relative paths of every file read, the top one first

    @property
    def names(self) -> frozenset[str]:
        """Canonical names of the distributions these lines ask for directly."""
        return frozenset(requirement_name(line) for line in self.lines)


@dataclass(frozen=True)
class _ParsedFile:
    lines: tuple[str, ...]
    constraints_files: tuple[str, ...]  # as written, relative to the file's folder
    requirement_files: tuple[str, ...]


_COMMENT = re.compile(r"(^|\s+)#.*$")
_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)$")
# A VCS (`git+https://...`) or URL requirement, which reaches no index and would be cloned and built.
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|(?:git|hg|svn|bzr)\+)")
_HASH = re.compile(r"(?:^|\s)--hash(?:=|\s+)(\S+)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name: lowercase, runs of `-_.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    """The canonical distribution name a normalised requirement line starts with."""
    match = _NAME.match(line)
    return canonical_name(match.group(1)) if match else line


def normalise_line(line: str, where: str) -> str:
    """One requirement in a canonical spelling: canonical name, sorted extras, no spaces in specifiers."""
    if line.startswith("-"):
        option = line.split()[0].split("=")[0]
        raise DependencyError(
            f"{where}: '{option}' is not supported in requirements files",
            hint="put index settings in [tool.pkg.dependencies] (index_url, extra_index_urls, find_links,"
            " no_index); use -r/-c for includes",
        )
    if line.startswith((".", "/", "~")) or "file:" in line:
        raise DependencyError(
            f"{where}: local path requirement '{line}' is not supported",
            hint="build a wheel of it and point [tool.pkg.dependencies].find_links at the folder",
        )
    if _URL.match(line):
        raise DependencyError(
            f"{where}: VCS or URL requirement '{line}' is not supported (pkg installs binary wheels only)",
            hint="build a wheel of it and point [tool.pkg.dependencies].find_links at the folder, or publish"
            " it to your package index and require it by name and version",
        )
    hashes = sorted(f"--hash={digest}" for digest in _HASH.findall(line))
    line = _HASH.sub(" ", line).strip()
    match = _NAME.match(line)
    if not match:
        raise DependencyError(f"{where}: can't read requirement '{line}'", hint="use PEP 508: name[extras] specifiers")
    name, extras, rest = match.groups()
    if extras:
        extras = "[" + ",".join(sorted(e.strip().lower() for e in extras[1:-1].split(",") if e.strip())) + "]"
    else:
        extras = ""
    if rest.startswith("@"):
        raise DependencyError(
            f"{where}: '{name} @ {rest[1:].strip()}' is a direct URL requirement, which is not supported"
            " (pkg installs binary wheels only)",
            hint=f"require {name} by version from your package index, or put its wheel in a"
            " [tool.pkg.dependencies].find_links folder",
        )
    spec, _, marker = rest.partition(";")
    spec = "".join(spec.split())
    marker = " ".join(marker.split())
    # --hash options stay as pip reads them, after the marker: hash-checking mode for this line
    return f"{canonical_name(name)}{extras}{spec}" + (f"; {marker}" if marker else "") + "".join(
        f" {option}" for option in hashes
    )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-empty line, comments stripped and `\\` continuations joined."""
    result: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            result.append((start, line))
    if pending.strip():
        result.append((start, pending.strip()))
    return result


def _parse_file(text: str, relpath: str) -> _ParsedFile:
    lines: list[str] = []
    constraints: list[str] = []
    includes: list[str] = []
    for number, line in _logical_lines(text):
        include = _INCLUDE.match(line)
        if include:
            (constraints if include.group(1) in ("-c", "--constraint") else includes).append(include.group(2))
            continue
        lines.append(normalise_line(line, f"{relpath}:{number}"))
    return _ParsedFile(tuple(lines), tuple(constraints), tuple(includes))


class RequirementsReader:
    """Reads and normalises requirements files, parsing each distinct (folder, content) once.

    `digest(relpath)` returns the file's content digest (the builder's stat-cached FileDigests), so
    a thousand identical files beside each other are read once, and an unchanged tree is not reread.
    """

    def __init__(self, root: str, digest: Callable[[str, str], str]):
        self.root = root
        self._digest = digest
        self._parsed: dict[tuple[str, str], _ParsedFile] = {}

    def _file(self, relpath: str, where: str) -> _ParsedFile:
        abspath = os.path.join(self.root, relpath)
        try:
            key = (os.path.dirname(relpath), self._digest(relpath, abspath))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise DependencyError(f"{where}: requirements file {relpath} not found") from None
        parsed = self._parsed.get(key)
        if parsed is None:
            real, top = os.path.realpath(abspath), os.path.realpath(self.root)
            if not real.startswith(top + os.sep):
                raise DependencyError(
                    f"{relpath}:1: a symlink to {real}, outside the repository; refusing to read it",
                    hint="copy the requirements into the repository instead of linking them",
                )
            with open(abspath, "rb") as stream:
                data = stream.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                line = data.count(b"\n", 0, error.start) + 1
                raise DependencyError(
                    f"{relpath}:{line}: not UTF-8 text (byte {data[error.start]:#04x})",
                    hint="save the requirements file as UTF-8",
                ) from None
            parsed = self._parsed[key] = _parse_file(text, relpath)
        return parsed

    def read(self, relpath: str) -> Requirements:
        """The normalised requirements of `relpath` (repo-relative), with `-r` and `-c` files resolved."""
        lines: set[str] = set()
        constraints: set[str] = set()
        sources: list[str] = []

        def visit(path: str, into: set[str], where: str, chain: tuple[str, ...]) -> None:
            if path in chain:
                raise DependencyError(f"{where}: requirements include cycle: {' -> '.join((*chain, path))}")
            parsed = self._file(path, where)
            if path not in sources:
                sources.append(path)
            into.update(parsed.lines)
            folder = os.path.dirname(path)
            for kind, names in ((into, parsed.requirement_files), (constraints, parsed.constraints_files)):
                for name in names:
                    target = os.path.normpath(os.path.join(folder, name)).replace(os.sep, "/")
                    if target.startswith("../") or os.path.isabs(target):
                        raise DependencyError(
                            f"{path}:1: include {name} leaves the repository",
                            hint="keep included files inside the repo",
                        )
                    visit(target, kind, path + ":1", (*chain, path))

        visit(relpath, lines, relpath, ())
        return Requirements(tuple(sorted(lines)), tuple(sorted(constraints)), tuple(sources))


def where_required(root: str, sources: tuple[str, ...], name: str) -> str | None:
    """`path:line` of the first line in `sources` (repo-relative requirements files) asking for `name`
    directly, or None when it comes in only as a dependency of another requirement."""
    wanted = canonical_name(name)
    for relpath in sources:
        try:
            with open(os.path.join(root, relpath), encoding="utf-8") as stream:
                text = stream.read()
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in _logical_lines(text):
            match = _NAME.match(line)
            if match and not line.startswith("-") and canonical_name(match.group(1)) == wanted:
                return f"{relpath}:{number}"
    return None
