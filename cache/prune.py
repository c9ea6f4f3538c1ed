"""Keeping a cache folder small: its entries, least recently used first, and their removal.

An entry is one artifact file (or folder) and the index rows that describe it, or a leftover with
no row. When it was last used is its mtime: a build that finds an artifact in the store moves the
mtime to now (`Store.use`, at most once per `USE_RESOLUTION_SECONDS`, so a build that uses the
same files again writes nothing). The caller says which input hashes must stay (what its current
tree needs); this module knows nothing about what the artifacts are.

Removal is the store's write order reversed (diskcache): the rows go first, then the files, so a
crash leaves at worst an orphan file (which the next prune or `verify --repair` removes), never a
row pointing at nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cache.store import USE_RESOLUTION_SECONDS, Store, mark_used

__all__ = [
    "LEFTOVER_GRACE_SECONDS",
    "USE_RESOLUTION_SECONDS",
    "PruneEntry",
    "choose",
    "folder_size",
    "mark_used",
    "remove",
    "store_leftovers",
]

# Something no row names yet may be a build's file just renamed into place, its row not yet committed.
LEFTOVER_GRACE_SECONDS = 3600


def folder_size(path: str) -> tuple[int, float]:
    """The bytes under a folder (or of a file) and the newest mtime in it, its folders' included: a
    folder being filled (an install under way) looks fresh even if its files keep old mtimes.
    Symlinks are not followed."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0.0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size, st.st_mtime
    size, newest = 0, st.st_mtime
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                entry = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            newest = max(newest, entry.st_mtime)
            if name in files:
                size += entry.st_size
    return size, newest


@dataclass(frozen=True)
class PruneEntry:
    """Something in the cache folder that may go: its files or folders and the index rows describing it."""

    relpath: str  # shown to people, relative to the cache folder
    paths: tuple[str, ...]  # absolute files or folders removed with it
    input_hashes: tuple[str, ...]  # index rows forgotten with it (none for a leftover)
    size: int
    last_used: float  # seconds since the epoch

    def to_json(self) -> dict:
        return {"path": self.relpath, "size": self.size, "last_used": int(self.last_used)}


def choose(
    entries: Iterable[PruneEntry],
    kept_size: int,
    older_than: float | None,
    max_size: int | None,
    now: float | None = None,
) -> list[PruneEntry]:
    """The entries to remove, least recently used first: every one unused for `older_than` seconds,
    then more until the cache (these entries plus `kept_size`, what must stay) is at most `max_size`."""
    now = time.time() if now is None else now
    ordered = sorted(entries, key=lambda entry: (entry.last_used, entry.relpath))
    total = kept_size + sum(entry.size for entry in ordered)
    chosen = []
    for entry in ordered:
        stale = older_than is not None and now - entry.last_used > older_than
        too_big = max_size is not None and total > max_size
        if not (stale or too_big):
            break  # the rest were used more recently still, and what is left fits
        chosen.append(entry)
        total -= entry.size
    return chosen


def store_leftovers(store: Store, known: set[str], now: float | None = None) -> list[PruneEntry]:
    """Files under store/ that no index row names (a crashed write, a row dropped), but none younger
    than `LEFTOVER_GRACE_SECONDS`: a build renames its file into place just before it commits the row."""
    now = time.time() if now is None else now
    found: list[PruneEntry] = []
    for path, relpath in store.unindexed_files(known):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if now - st.st_mtime > LEFTOVER_GRACE_SECONDS:
            found.append(PruneEntry(relpath, (path,), (), st.st_size, st.st_mtime))
    return found


def remove(store: Store, entries: list[PruneEntry]) -> int:
    """Forget the entries' rows (one transaction), then delete their files; returns the bytes freed."""
    store.index.forget_artifacts(sorted({h for entry in entries for h in entry.input_hashes}))
    freed = 0
    for entry in entries:
        for path in entry.paths:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        freed += entry.size
    return freed
