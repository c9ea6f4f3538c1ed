"""The shared cache: one SQLite index and the artifact files under a bucket prefix, for a whole team.

Layout under `s3://bucket/prefix/`: `index.sqlite` (the shared index: `artifacts` and `published`
rows) and `store/<hh>/<input hash>.<ext>` (artifact files; immutable keys).

- Objects go up before the rows that name them, each with `IfNoneMatch="*"` (a key is written once).
- The index goes up with `IfMatch=<the ETag we merged into>` (or `IfNoneMatch="*"` when there is none
  yet); a 412 means another writer got there first: pull, merge again, retry (bounded). Rows are
  facts keyed by hash, so merging is a union; for what is deployed, the newest record per resource wins.
- Nothing downloaded is trusted: an artifact is checked against the sha256 its row records before
  it enters the local store; an index that is not a readable SQLite file with the expected tables is
  ignored with a warning.

Everything here talks to an `ObjectStore` (get, conditional put); `cache/s3.py` is the S3 one, and
the unit tests use an in-memory one.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol

from cache import INDEX_NAME
from cache.index import ARTIFACT_COLUMNS, PUBLISHED_COLUMNS, ArtifactRecord, Index
from cache.store import Store, sha256_file, write_atomic

__all__ = [
    "MAX_PUSH_ATTEMPTS",
    "ObjectNotFound",
    "ObjectNotModified",
    "ObjectStore",
    "ObjectStoreError",
    "PreconditionFailed",
    "PullReport",
    "PushReport",
    "SharedArtifactMismatch",
    "SharedCache",
    "SharedCacheError",
    "SharedIndexCorrupt",
    "WriteConflict",
    "parse_uri",
]

MAX_PUSH_ATTEMPTS = 12
UPLOAD_THREADS = 8


# -- the object store ----------------------------------------------------------------------


class ObjectStoreError(Exception):
    """The object store could not answer (unreachable, denied, …); the message is the store's own."""


class ObjectNotFound(ObjectStoreError):
    """No object under that key."""


class ObjectNotModified(ObjectStoreError):
    """The object still has the ETag the reader named in `if_none_match` (HTTP 304)."""


class PreconditionFailed(ObjectStoreError):
    """A conditional write was refused: the key exists (`if_none_match="*"`) or has another ETag (HTTP 412)."""


class WriteConflict(ObjectStoreError):
    """A conditional write raced another write to the same key (S3's 409 ConditionalRequestConflict)."""


class ObjectStore(Protocol):
    """What the shared cache needs of an object store: whole-object reads and conditional writes.

    Failures are ObjectStoreError or one of its subclasses above, never the client's own exceptions.
    """

    def get(self, bucket: str, key: str, path: str, if_none_match: str | None = None) -> str:
        """Download an object into the file `path` and return its ETag.

        Raises ObjectNotFound, or ObjectNotModified when its ETag is still `if_none_match`.
        """
        ...

    def put(
        self, bucket: str, key: str, path: str, if_match: str | None = None, if_none_match: str | None = None
    ) -> str:
        """Upload the file `path` as an object and return its new ETag.

        `if_none_match="*"` writes only a new key, `if_match` only over that ETag; otherwise
        PreconditionFailed (or WriteConflict, when another conditional write is under way).
        """
        ...


# -- the shared cache ----------------------------------------------------------------------


class SharedCacheError(Exception):
    """The shared cache can't be used right now (unreachable, denied, corrupt); callers warn and go on."""


class SharedIndexCorrupt(SharedCacheError):
    """The shared index is not a readable pkg index; the next push replaces it."""


class SharedArtifactMismatch(Exception):
    """A downloaded artifact does not match the sha256 of its row."""


def parse_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValueError(f"cache_uri must look like s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


@dataclass
class PullReport:
    """What a pull did: whether the shared index had changed, and how many rows it brought."""

    changed: bool = False  # False when the shared index was unchanged since the last pull (304)
    artifacts: int = 0
    published: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class PushReport:
    """What a push did: the artifact keys it wrote, the index rows it added, in how many attempts."""

    uploaded: list[str] = field(default_factory=list)  # artifact keys written by this push
    rows_added: int = 0
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)


def _open_shared_copy(path: str) -> sqlite3.Connection:
    """Open a downloaded index, or raise SharedIndexCorrupt if it is not one."""
    try:
        conn = sqlite3.connect(path)
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"artifacts", "published"} <= tables:
            raise sqlite3.DatabaseError(f"tables missing: {sorted({'artifacts', 'published'} - tables)}")
        return conn
    except sqlite3.DatabaseError as error:
        raise SharedIndexCorrupt(f"the shared index is corrupt or not a pkg index ({error})") from None


class SharedCache:
    """The shared index and artifacts under the prefix `uri` names, synchronised with a local Store."""

    def __init__(self, uri: str, objects: ObjectStore, store: Store):
        self.uri = uri
        self.bucket, self.prefix = parse_uri(uri)
        self.objects = objects
        self.store = store

    def key(self, relpath: str) -> str:
        """The object key of a path relative to the shared cache (as in the local cache folder)."""
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def _unreachable(self, error: Exception) -> SharedCacheError:
        return SharedCacheError(f"shared cache {self.uri} unavailable: {error}")

    # -- the index object ------------------------------------------------------------------

    def _download_index(self, path: str, if_none_match: str | None = None) -> str | None:
        """Download the shared index to `path`; its ETag, None if there is none, or "" if unchanged."""
        try:
            return self.objects.get(self.bucket, self.key(INDEX_NAME), path, if_none_match=if_none_match)
        except ObjectNotFound:
            return None
        except ObjectNotModified:
            return ""
        except ObjectStoreError as error:
            raise self._unreachable(error) from None

    # -- pull --------------------------------------------------------------------------------

    def pull(self) -> PullReport:
        """Bring the shared index's rows into the local index (artifacts as known-remote, records merged)."""
        report = PullReport()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, INDEX_NAME)
            etag = self._download_index(path, self.store.index.shared_etag(self.uri))
            if etag == "":
                return report  # unchanged since the last pull or push
            report.changed = True
            if etag is None:
                self.store.index.replace_remote_artifacts(self.uri, [], None)
                return report
            conn = _open_shared_copy(path)
            try:
                report.artifacts, report.published = self._import(conn, etag)
            finally:
                conn.close()
        return report

    def _import(self, conn: sqlite3.Connection, etag: str) -> tuple[int, int]:
        """Take the rows of a shared index copy into the local index; returns (artifacts, records merged)."""
        artifacts = [
            ArtifactRecord.from_row(row) for row in conn.execute(f"SELECT {', '.join(ARTIFACT_COLUMNS)} FROM artifacts")
        ]
        published = [
            dict(zip(PUBLISHED_COLUMNS, row, strict=True))
            for row in conn.execute(f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM published")
        ]
        self.store.index.replace_remote_artifacts(self.uri, artifacts, etag)
        return len(artifacts), self.store.index.merge_published(published)

    # -- fetch -------------------------------------------------------------------------------

    def download(self, record: ArtifactRecord) -> None:
        """Download one artifact the shared index knows into the local store, verified by its sha256.

        Safe to call from several threads; the caller records the row (`fetch` does both).
        Raises SharedArtifactMismatch (the object is ignored) or SharedCacheError.
        """

        def write(tmp: str) -> None:
            try:
                self.objects.get(self.bucket, self.key(record.path), tmp)
            except ObjectStoreError as error:
                raise self._unreachable(error) from None
            actual = sha256_file(tmp)
            if actual != record.sha256:
                raise SharedArtifactMismatch(
                    f"shared artifact {self.key(record.path)} does not match its index row (sha256"
                    f" {actual[:12]}…, expected {record.sha256[:12]}…); ignored, rebuilding it locally"
                )

        write_atomic(self.store.abspath(record.path), write)

    def fetch(self, record: ArtifactRecord) -> ArtifactRecord:
        """Download one artifact (see `download`) and record it in the local index."""
        self.download(record)
        self.store.index.add_artifacts([record], replace=True)  # the file in place is the shared one
        return record

    # -- push --------------------------------------------------------------------------------

    def _upload_new_artifacts(self, shared_hashes: set[str], report: PushReport) -> list[ArtifactRecord]:
        """Upload (in parallel) local artifacts the shared index lacks; returns the rows that may now be shared."""
        from concurrent.futures import ThreadPoolExecutor

        candidates = []
        for record in self.store.index.all_artifacts():
            path = self.store.abspath(record.path)
            if record.input_hash in shared_hashes:
                continue
            if os.path.exists(path) and os.path.getsize(path) == record.size:
                candidates.append(record)  # else `pkg cache verify` reports it: never share what we can't back

        def upload(record: ArtifactRecord) -> bool:
            try:
                self.objects.put(self.bucket, self.key(record.path), self.store.abspath(record.path), if_none_match="*")
                return True
            except PreconditionFailed:
                return False  # already there: someone uploaded the same input hash; their row describes it
            except ObjectStoreError as error:
                raise self._unreachable(error) from None

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            uploaded = list(pool.map(upload, candidates))
        report.uploaded += [self.key(r.path) for r, done in zip(candidates, uploaded, strict=True) if done]
        return candidates

    def push(self) -> PushReport:
        """Upload new artifacts, then merge the local rows into the shared index with a conditional write."""
        report = PushReport()
        local_published = self.store.index.all_published()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, INDEX_NAME)
            for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
                report.attempts = attempt
                if os.path.exists(path):
                    os.unlink(path)
                etag = self._download_index(path)
                if etag is not None:
                    try:
                        _open_shared_copy(path).close()
                    except SharedIndexCorrupt as error:
                        report.warnings.append(f"{error}; replacing it with the rows of this machine")
                        os.unlink(path)
                shared = Index(path)  # creates the schema in a new file, leaves a valid one as it is
                try:
                    shared_hashes = {row[0] for row in shared.conn.execute("SELECT input_hash FROM artifacts")}
                    new_rows = self._upload_new_artifacts(shared_hashes, report)
                    added = shared.add_artifacts(new_rows) + shared.merge_published(local_published)
                    if not added and etag is not None:
                        self._import(shared.conn, etag)
                        return report  # nothing to add: no write at all
                    shared.conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to upload
                finally:
                    shared.close()
                try:
                    if etag:
                        new_etag = self.objects.put(self.bucket, self.key(INDEX_NAME), path, if_match=etag)
                    else:
                        new_etag = self.objects.put(self.bucket, self.key(INDEX_NAME), path, if_none_match="*")
                except (PreconditionFailed, WriteConflict):
                    time.sleep(random.uniform(0.05, 0.2) * attempt)  # another writer won: merge again
                    continue
                except ObjectStoreError as error:
                    raise self._unreachable(error) from None
                report.rows_added = added
                conn = sqlite3.connect(path)
                try:
                    self._import(conn, new_etag)
                finally:
                    conn.close()
                return report
        raise SharedCacheError(
            f"gave up pushing to {self.uri} after {MAX_PUSH_ATTEMPTS} conflicting writes; run `pkg cache push` again"
        )
