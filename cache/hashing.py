"""XXH3-128 over files and trees, with a stat fast path, and the safe walk that feeds it.

An input hash covers relative paths and file bytes plus a settings header, never absolute
paths or timestamps, so the same inputs give the same hash on any machine and clone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Iterable

import xxhash

from cache import RACY_WINDOW_NS
from cache.exclusions import EXCLUDED_DIRS, is_excluded, is_secret, is_secret_dir, is_secret_path

__all__ = [
    "FileDigests",
    "SymlinkEscapeError",
    "Tree",
    "TreeFile",
    "UnreadableEntryError",
    "file_digest",
    "input_hash",
    "printable",
    "walk_tree",
]


class SymlinkEscapeError(Exception):
    """A symlink inside a tree points outside it."""

    def __init__(self, link: str, target: str):
        super().__init__(f"{link} is a symlink to {target}, outside the tree")
        self.link = link
        self.target = target


@dataclass(frozen=True)
class TreeFile:
    """One file of a source tree: its path relative to the tree, and where to read it."""

    relpath: str  # always "/"-separated
    abspath: str


@dataclass
class Tree:
    """The packageable files of a folder, sorted, and the secret files (or folders, ending "/") left out."""

    files: list[TreeFile]
    skipped_secrets: list[str]


# Deeper than this is a mistake (or a link trick), not a source tree; it also keeps paths under PATH_MAX.
MAX_TREE_DEPTH = 128


class UnreadableEntryError(Exception):
    """An entry of a tree that can't be packaged as it is: a symlink loop, a name that isn't UTF-8, too deep."""

    def __init__(self, relpath: str, problem: str):
        super().__init__(f"{relpath}: {problem}")
        self.relpath = relpath
        self.problem = problem


def printable(name: str) -> str:
    """A file name as text that can be printed: bytes that aren't UTF-8 shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def walk_tree(top: str, skip: Iterable[str] = ()) -> Tree:
    """List the files under `top` that may be packaged, sorted by relative path.

    Caches and secrets are left out, secrets judged by a link's target as well as its name (a link
    `settings.txt` to `.env` is a secret); symlinks are followed only while they stay inside `top`
    (a link leaving it raises SymlinkEscapeError); `skip` names top-level relative paths to omit.
    A symlink loop, a file name that isn't UTF-8 or a tree deeper than MAX_TREE_DEPTH raises
    UnreadableEntryError naming the entry (printable).
    """
    top_real = os.path.realpath(top)
    skip = set(skip)
    files: list[TreeFile] = []
    secrets: list[str] = []
    seen_dirs = {top_real}

    def inside(real: str) -> bool:
        return real == top_real or real.startswith(top_real + os.sep)

    todo = [(top, "", 0)]  # a stack, not recursion: a deep tree must not exhaust Python's stack
    while todo:
        folder, prefix, depth = todo.pop()
        if depth > MAX_TREE_DEPTH:
            raise UnreadableEntryError(printable(prefix.rstrip("/")), f"nested more than {MAX_TREE_DEPTH} folders deep")
        try:
            with os.scandir(folder) as scanned:
                entries = sorted(scanned, key=lambda e: e.name)  # by name: a folder reached twice keeps one path
        except OSError as error:
            where = printable(prefix.rstrip("/") or ".")
            raise UnreadableEntryError(where, f"can't be read ({error.strerror})") from None
        folders = []
        for entry in entries:
            rel = prefix + entry.name
            if rel in skip:
                continue
            try:
                rel.encode()
            except UnicodeEncodeError:
                raise UnreadableEntryError(printable(rel), "file name is not UTF-8 (rename it)") from None
            target_is_secret = False
            try:
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not inside(real):
                        raise SymlinkEscapeError(rel, os.readlink(entry.path))
                    # a link into a credentials folder, or to a credentials file, is as secret as its target
                    target = os.path.relpath(real, top_real).replace(os.sep, "/")
                    target_is_secret = real != top_real and (is_secret_path(target) or is_secret_path(target + "/-"))
                is_dir = entry.is_dir()  # follows links, which are inside by now
                is_file = not is_dir and entry.is_file()
            except OSError as error:  # ELOOP: a link that points at itself, through any number of links
                raise UnreadableEntryError(printable(rel), f"symlink can't be followed ({error.strerror})") from None
            if is_dir:
                if entry.name in EXCLUDED_DIRS:
                    continue
                if is_secret_dir(entry.name) or target_is_secret:
                    secrets.append(rel + "/")
                    continue
                real = os.path.realpath(entry.path)
                if real in seen_dirs:  # a link back up the tree would loop forever
                    continue
                seen_dirs.add(real)
                folders.append((entry.path, rel + "/", depth + 1))
            elif is_file:
                if is_excluded(entry.name):
                    continue
                if is_secret(entry.name) or target_is_secret:
                    secrets.append(rel)
                    continue
                files.append(TreeFile(rel, entry.path))
        todo += reversed(folders)  # depth first, in name order
    files.sort(key=lambda f: f.relpath)
    secrets.sort()
    return Tree(files, secrets)


def file_digest(path: str) -> str:
    """XXH3-128 of a file's bytes, as 32 hex digits."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


_HEADERS: dict[tuple, bytes] = {}


def _header(settings: dict) -> bytes:
    """The length-prefixed canonical JSON of `settings`, memoised: a thousand functions share a few."""
    try:
        key = tuple(sorted(settings.items()))
        header = _HEADERS.get(key)
    except TypeError:  # a list or dict among the values: not hashable, encode every time
        key, header = None, None
    if header is None:
        encoded = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
        header = len(encoded).to_bytes(8, "little") + encoded
        if key is not None:
            _HEADERS[key] = header
    return header


def input_hash(settings: dict, files: Iterable[tuple[str, str]]) -> str:
    """The input hash of an artifact: its settings and its (archive name, file digest) pairs.

    Settings are serialised canonically (sorted keys), names and digests are length-delimited,
    so no two different inputs share a byte stream.
    """
    hasher = xxhash.xxh3_128()
    hasher.update(_header(settings))
    for name, digest in files:
        encoded = name.encode()
        hasher.update(len(encoded).to_bytes(4, "little") + encoded + bytes.fromhex(digest))
    return hasher.hexdigest()


class FileDigests:
    """File digests with a stat fast path: a file whose size, mtime, ctime and inode are unchanged
    since it was last hashed is not read again.

    `known` maps a path to `(size, mtime_ns, ctime_ns, inode, digest)` as the index stored it;
    `fresh` collects the entries to write back.
    """

    def __init__(self, known: dict[str, tuple[int, int, int, int, str]]):
        self.known = known
        self.fresh: dict[str, tuple[int, int, int, int, str]] = {}
        self.hashed = 0
        self._now_ns = time.time_ns()

    def digest(self, key: str, path: str) -> str:
        """The digest of the file at `path`, recorded under `key` (a repo-relative path)."""
        st = os.stat(path)
        state = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self.known.get(key)
        if known is not None and known[:4] == state:
            return known[4]
        digest = file_digest(path)
        self.hashed += 1
        if self._now_ns - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_WINDOW_NS:  # else its stat proves nothing yet
            self.fresh[key] = (*state, digest)
        return digest
