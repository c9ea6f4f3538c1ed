"""Content-addressed artifact files: atomic writes, then the index row, and `verify` for both sides.

The order is diskcache's: write the file under a temporary name, rename it into place, and only
then commit its row. A crash leaves at worst an orphan file, never a row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, TypeVar

from cache import INDEX_NAME
from cache.index import ArtifactRecord, Index, utc_now
from cache.rows import safe_relpath

__all__ = ["USE_RESOLUTION_SECONDS", "Store", "VerifyReport", "mark_used", "sha256_file", "verify", "write_atomic"]

_TMP_MARK = ".tmp-"
# A temporary file this old belongs to no running build: verify may remove it.
_STALE_TMP_SECONDS = 3600
# A used file's mtime is moved to now when older than this (cache/prune.py orders by it): last use
# to within an hour, and a build that uses the same files again within the hour writes nothing.
USE_RESOLUTION_SECONDS = 3600


def sha256_file(path: str) -> str:
    """SHA-256 of a file, as hex."""
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


_Written = TypeVar("_Written")


def write_atomic(path: str, write: Callable[[str], _Written]) -> _Written:
    """Call `write(tmp_path)`, fsync, and rename the result to `path`; returns what `write` returned.

    Readers see either no file or the whole file; a failure leaves nothing behind.
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        result = write(tmp)
        with open(tmp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return result


def mark_used(path: str, mtime: float, now: float | None = None) -> None:
    """Note that the file at `path` (whose mtime the caller just read) was used now."""
    now = time.time() if now is None else now
    if now - mtime > USE_RESOLUTION_SECONDS:
        try:
            os.utime(path, (now, now))
        except OSError:
            pass  # read-only or vanished: its use just isn't noted


class Store:
    """A cache folder: `store/` holds artifact files named by input hash; `index.sqlite` the rows."""

    def __init__(self, cache_dir: str):
        self.cache_dir = os.path.abspath(cache_dir)
        self.store_dir = os.path.join(self.cache_dir, "store")
        self._index: Index | None = None

    @property
    def index(self) -> Index:
        """The index of this cache folder, opened (and created or migrated) on first use."""
        if self._index is None:
            self._index = Index(os.path.join(self.cache_dir, INDEX_NAME))
        return self._index

    def relpath_for(self, input_hash: str, suffix: str) -> str:
        """Where the artifact of `input_hash` lives, relative to the cache folder."""
        return f"store/{input_hash[:2]}/{input_hash}{suffix}"

    def abspath(self, relpath: str) -> str:
        """The absolute path of a path relative to the cache folder."""
        return os.path.join(self.cache_dir, relpath)

    def unindexed_files(self, known: set[str]) -> Iterator[tuple[str, str]]:
        """(path, relpath) of every file under store/ whose cache-relative path is not in `known`."""
        if not os.path.isdir(self.store_dir):
            return
        for folder, _dirs, files in os.walk(self.store_dir):
            for name in sorted(files):
                path = os.path.join(folder, name)
                relpath = os.path.relpath(path, self.cache_dir).replace(os.sep, "/")
                if relpath not in known:
                    yield path, relpath

    def has_file(self, record: ArtifactRecord) -> bool:
        """Whether the artifact file of a row is present with its recorded size (a cheap check).

        A row naming a path pkg would not compute has no file: the artifact is built again.
        """
        if not safe_relpath(self.cache_dir, record.path, record.input_hash):
            return False
        try:
            return os.stat(self.abspath(record.path)).st_size == record.size
        except FileNotFoundError:
            return False

    def use(self, record: ArtifactRecord) -> bool:
        """`has_file`, noting the use in the file's mtime (`mark_used`: what `pkg cache prune` orders by)."""
        if not safe_relpath(self.cache_dir, record.path, record.input_hash):
            return False
        path = self.abspath(record.path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_size != record.size:
            return False
        mark_used(path, st.st_mtime)
        return True

    def intact(self, record: ArtifactRecord) -> bool:
        """Whether the artifact file of a row holds the very bytes built: its size, then its sha256.

        The check before a file is used (run locally, sent, shared): `has_file` trusts a file of the
        right size, which a file overwritten with other bytes of the same length still has.
        """
        return self.has_file(record) and sha256_file(self.abspath(record.path)) == record.sha256

    def discard(self, record: ArtifactRecord) -> None:
        """Delete the artifact file of a row (not the row: a missing file is built again)."""
        if safe_relpath(self.cache_dir, record.path, record.input_hash):
            try:
                os.unlink(self.abspath(record.path))
            except FileNotFoundError:
                pass

    def put(
        self,
        input_hash: str,
        kind: str,
        suffix: str,
        write: Callable[[str], int],
        meta: dict | None = None,
    ) -> ArtifactRecord:
        """Write an artifact file atomically and return its record (not yet committed to the index).

        `write(tmp_path)` produces the file and returns its unzipped size.
        """
        relpath = self.relpath_for(input_hash, suffix)
        path = self.abspath(relpath)
        unzipped = write_atomic(path, write)
        return ArtifactRecord(
            input_hash=input_hash,
            kind=kind,
            path=relpath,
            sha256=sha256_file(path),
            size=os.path.getsize(path),
            unzipped_size=unzipped,
            created=utc_now(),
            meta=meta or {},
        )

    def close(self) -> None:
        """Close the index (which starts a new generation if this store wrote to it)."""
        if self._index is not None:
            self._index.close()
            self._index = None


@dataclass
class VerifyReport:
    """What `verify` found: one line per problem, and what it repaired."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems or len(self.repaired) == len(self.problems)


def verify(store: Store, repair: bool = False) -> VerifyReport:
    """Check every index row against its file (present, size, sha256) and find orphan files.

    With `repair`, rows whose file is missing or wrong are dropped (the next build rebuilds them),
    wrong files and orphans are deleted. A row whose path is not a plain path inside the cache folder
    naming its input hash is a problem: its path is neither read nor deleted, only the row is dropped.
    """
    report = VerifyReport()
    index = store.index
    bad_rows: list[str] = []
    known_paths: set[str] = set()
    for record in index.all_artifacts():
        report.checked += 1
        if not safe_relpath(store.cache_dir, record.path, record.input_hash):
            problem = f"row {record.input_hash[:40]!r}: path {record.path[:120]!r} is outside the store (not followed)"
            report.problems.append(problem)
            if repair:
                bad_rows.append(record.input_hash)
                report.repaired.append(problem)
            continue
        known_paths.add(record.path)
        path = store.abspath(record.path)
        if not os.path.exists(path):
            problem = f"{record.path}: missing (row {record.input_hash[:12]})"
        elif os.path.getsize(path) != record.size:
            problem = f"{record.path}: size {os.path.getsize(path)} != recorded {record.size}"
        elif sha256_file(path) != record.sha256:
            problem = f"{record.path}: sha256 does not match the index"
        else:
            continue
        report.problems.append(problem)
        if repair:
            bad_rows.append(record.input_hash)
            if os.path.exists(path):
                os.unlink(path)
            report.repaired.append(problem)
    if bad_rows:
        index.forget_artifacts(bad_rows)
    now = time.time()
    for path, relpath in store.unindexed_files(known_paths):
        if _TMP_MARK in os.path.basename(path) and now - os.path.getmtime(path) < _STALE_TMP_SECONDS:
            continue  # a build may still be writing it
        problem = f"{relpath}: orphan file (no index row)"
        report.problems.append(problem)
        if repair:
            os.unlink(path)
            report.repaired.append(problem)
    return report
