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

__all__ = ["FileDigests", "SymlinkEscapeError", "Tree", "TreeFile", "file_digest", "input_hash", "walk_tree"]


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


def walk_tree(top: str, skip: Iterable[str] = ()) -> Tree:
    """List the files under `top` that may be packaged, sorted by relative path.

    Caches and secrets are left out, secrets judged by a link's target as well as its name (a link
    `settings.txt` to `.env` is a secret); symlinks are followed only while they stay inside `top`
    (a link leaving it raises SymlinkEscapeError); `skip` names top-level relative paths to omit.
    """
    top_real = os.path.realpath(top)
    skip = set(skip)
    files: list[TreeFile] = []
    secrets: list[str] = []
    seen_dirs = {top_real}

    def inside(real: str) -> bool:
        return real == top_real or real.startswith(top_real + os.sep)

    def visit(folder: str, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel in skip:
                    continue
                target_is_secret = False
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not inside(real):
                        raise SymlinkEscapeError(rel, os.readlink(entry.path))
                    # a link into a credentials folder, or to a credentials file, is as secret as its target
                    target = os.path.relpath(real, top_real).replace(os.sep, "/")
                    target_is_secret = real != top_real and (is_secret_path(target) or is_secret_path(target + "/-"))
                is_dir = entry.is_dir()  # follows links, which are inside by now
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
                    visit(entry.path, rel + "/")
                elif entry.is_file():
                    if is_excluded(entry.name):
                        continue
                    if is_secret(entry.name) or target_is_secret:
                        secrets.append(rel)
                        continue
                    files.append(TreeFile(rel, entry.path))

    visit(top, "")
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
