"""pkg cache prune: keep the local cache folder small without losing what the current tree needs.

The cache folder holds artifact files (`store/`), installed dependency sets (`deps/<set hash>/`:
the tree a set's layer chunks are written from) and leftovers no row names. Prune removes them
least recently used first (cache/prune.py: a build marks what it uses in the file's mtime), those
unused for `--older-than`, then more until the folder fits `--max-size`, but never an artifact
the current tree needs: its input hashes are computed as a build computes them (discovery and
hashing; nothing is built). The rows of what goes are dropped first, so the next build that
wants one of them builds it again or fetches it from the shared cache.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from cache.prune import LEFTOVER_GRACE_SECONDS, PruneEntry, choose, folder_size, remove, store_leftovers
from cache.rows import safe_relpath
from packager.builders.lambda_deps import DEPS_FOLDER
from packager.model import Kind

DEFAULT_OLDER_THAN = 30 * 86400  # when neither --older-than nor --max-size is given


@dataclass
class PruneReport:
    """What `pkg cache prune` removed (or would, with `dry_run`) and what it kept."""

    removed: list[PruneEntry]  # least recently used first
    kept: int  # entries kept (those the tree needs among them)
    needed: int  # entries the current tree needs
    size_before: int  # bytes of every entry
    dry_run: bool

    @property
    def size_after(self) -> int:
        return self.size_before - sum(entry.size for entry in self.removed)

    def to_json(self) -> dict:
        return {
            "removed": [entry.to_json() for entry in self.removed],
            "summary": {
                "removed": len(self.removed),
                "freed": sum(entry.size for entry in self.removed),
                "kept": self.kept,
                "needed": self.needed,
                "size_before": self.size_before,
                "size_after": self.size_after,
                "dry_run": self.dry_run,
            },
        }


def needed_input_hashes(ws) -> set[str]:
    """The input hashes of every artifact of the current tree, and of the dependency installs their
    layer chunks come from (hashing as a build does; a set never installed is installed, as a build would)."""
    from packager.builders.builder import collect

    needed = {spec.input_hash for spec in collect(ws, []).specs}
    for record in ws.store.index.all_artifacts():
        if record.kind == Kind.LAMBDA_DEPS_INSTALL:
            chunks = record.meta.get("chunks") or []
            if any(isinstance(chunk, dict) and chunk.get("input_hash") in needed for chunk in chunks):
                needed.add(record.input_hash)
    return needed


def _entries(ws, now: float) -> list[PruneEntry]:
    """Every entry of the cache folder: artifact files, dependency installs (last used when one of
    their chunks was), and leftovers no row names."""
    store = ws.store
    files: dict[str, list[str]] = {}  # relpath -> the input hashes of its rows
    installs = []
    for record in store.index.all_artifacts():
        if not safe_relpath(store.cache_dir, record.path, record.input_hash):
            continue  # not a path pkg makes: `pkg cache verify` reports it, prune never follows it
        if record.kind == Kind.LAMBDA_DEPS_INSTALL:
            installs.append(record)
        else:
            files.setdefault(record.path, []).append(record.input_hash)
    used: dict[str, float] = {}  # input hash -> its file's mtime
    entries: list[PruneEntry] = []
    for relpath, hashes in sorted(files.items()):
        path = store.abspath(relpath)
        try:
            st = os.stat(path)
        except OSError:
            continue  # a row without its file: `pkg cache verify` reports it, the next build rebuilds it
        used.update((input_hash, st.st_mtime) for input_hash in hashes)
        entries.append(PruneEntry(relpath, (path,), tuple(hashes), st.st_size, st.st_mtime))
    for record in installs:
        folder = os.path.dirname(store.abspath(record.path))
        size, _newest = folder_size(folder)
        try:
            installed = os.stat(store.abspath(record.path)).st_mtime  # the manifest: written by the install
        except OSError:
            installed = 0.0
        chunks = [chunk for chunk in record.meta.get("chunks") or [] if isinstance(chunk, dict)]
        last = max([installed, *(used.get(str(chunk.get("input_hash")), 0.0) for chunk in chunks)])
        relpath = os.path.dirname(record.path) + "/"
        entries.append(PruneEntry(relpath, (folder,), (record.input_hash,), size, last))
    entries += store_leftovers(store, set(files), now)
    entries += _deps_leftovers(store.cache_dir, {os.path.basename(os.path.dirname(r.path)) for r in installs}, now)
    return entries


def _deps_leftovers(cache_dir: str, known: set[str], now: float) -> list[PruneEntry]:
    """Folders under deps/ no row names (an interrupted install, a set whose row was dropped), none fresh."""
    deps = os.path.join(cache_dir, DEPS_FOLDER)
    try:
        names = sorted(os.listdir(deps))
    except OSError:
        return []
    found = []
    for name in names:
        if name in known:
            continue
        path = os.path.join(deps, name)
        size, newest = folder_size(path)
        if now - newest > LEFTOVER_GRACE_SECONDS:
            relpath = f"{DEPS_FOLDER}/{name}" + ("/" if os.path.isdir(path) else "")
            found.append(PruneEntry(relpath, (path,), (), size, newest))
    return found


def prune_cache(ws, older_than: float | None, max_size: int | None, dry_run: bool = False) -> PruneReport:
    """Remove what the current tree doesn't need, least recently used first (see the module's docstring)."""
    if older_than is None and max_size is None:
        older_than = DEFAULT_OLDER_THAN
    needed = needed_input_hashes(ws)
    now = time.time()
    entries = _entries(ws, now)
    kept = [entry for entry in entries if any(h in needed for h in entry.input_hashes)]
    candidates = [entry for entry in entries if not any(h in needed for h in entry.input_hashes)]
    kept_size = sum(entry.size for entry in kept)
    chosen = choose(candidates, kept_size, older_than, max_size, now)
    if not dry_run:
        remove(ws.store, chosen)
    size_before = kept_size + sum(entry.size for entry in candidates)
    return PruneReport(chosen, len(entries) - len(chosen), len(kept), size_before, dry_run)
