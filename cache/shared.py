"""The shared cache: one SQLite index and the artifact files under an S3 prefix, for a whole team.

Layout under `s3://bucket/prefix/`: `index.sqlite` (the shared index: `artifacts` and `published`
rows) and `store/<hh>/<input hash>.<ext>` (artifact files; immutable keys).

- Objects go up before the rows that name them, each with `IfNoneMatch="*"` (a key is written once).
- The index goes up with `IfMatch=<the ETag we merged into>` (or `IfNoneMatch="*"` when there is none
  yet); a 412 means another writer got there first: pull, merge again, retry (bounded). Rows are
  facts keyed by hash, so merging is a union; for what is deployed, the newest record per resource wins.
- Nothing downloaded is trusted: an artifact is checked against the sha256 its row records before
  it enters the local store; an index that is not a readable SQLite file with the expected tables is
  ignored with a warning.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field

from cache import INDEX_NAME
from cache.index import ArtifactRecord, Index
from cache.store import Store, sha256_file, write_atomic

MAX_PUSH_ATTEMPTS = 12
UPLOAD_THREADS = 8
ARTIFACT_COLUMNS = ("input_hash", "kind", "path", "sha256", "size", "unzipped_size", "created", "meta")
PUBLISHED_COLUMNS = ("account", "region", "stage", "resource_id", "input_hash", "details", "published")


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


def s3_client(region: str | None = None, profile: str | None = None):
    """A boto3 S3 client that fails fast when S3 is unreachable (the build then goes on offline)."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=profile) if profile else boto3.Session()
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
    return session.client("s3", region_name=region or session.region_name or "us-east-1", config=config)


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


@dataclass
class PullReport:
    changed: bool = False  # False when the shared index was unchanged since the last pull (304)
    artifacts: int = 0
    published: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class PushReport:
    uploaded: list[str] = field(default_factory=list)  # artifact keys written by this push
    rows_added: int = 0
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)


def _open_shared_copy(path: str) -> sqlite3.Connection:
    """Open a downloaded index, or raise SharedCacheError if it is not one."""
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
    """The shared index and artifacts under one S3 prefix, synchronised with a local Store."""

    def __init__(self, uri: str, client, store: Store):
        self.uri = uri
        self.bucket, self.prefix = parse_uri(uri)
        self.client = client
        self.store = store

    def key(self, relpath: str) -> str:
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    # -- the index object ------------------------------------------------------------------

    def _download_index(self, path: str, if_none_match: str | None = None) -> str | None:
        """Download the shared index to `path`; its ETag, None if there is none, or "" if unchanged."""
        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(INDEX_NAME), **extra)
        except Exception as error:
            code = _error_code(error)
            if code in ("NoSuchKey", "404"):
                return None
            if code == "304":
                return ""
            raise self._unreachable(error) from None
        with open(path, "wb") as stream:
            for chunk in response["Body"].iter_chunks(1 << 20):
                stream.write(chunk)
        return response["ETag"]

    def _unreachable(self, error: Exception) -> SharedCacheError:
        return SharedCacheError(f"shared cache {self.uri} unavailable: {error}")

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
            ArtifactRecord(*row[:7], meta=json.loads(row[7] or "{}"))
            for row in conn.execute(f"SELECT {', '.join(ARTIFACT_COLUMNS)} FROM artifacts")
        ]
        published = [
            dict(zip(PUBLISHED_COLUMNS, row))
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
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(record.path))
                with open(tmp, "wb") as stream:
                    for chunk in response["Body"].iter_chunks(1 << 20):
                        stream.write(chunk)
            except Exception as error:
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
                with open(self.store.abspath(record.path), "rb") as body:
                    self.client.put_object(Bucket=self.bucket, Key=self.key(record.path), Body=body, IfNoneMatch="*")
                return True
            except Exception as error:
                if _error_code(error) not in ("PreconditionFailed", "412"):
                    raise self._unreachable(error) from None
                return False  # already there: someone uploaded the same input hash; their row describes it

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            uploaded = list(pool.map(upload, candidates))
        report.uploaded += [self.key(r.path) for r, done in zip(candidates, uploaded) if done]
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
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                try:
                    with open(path, "rb") as body:
                        response = self.client.put_object(
                            Bucket=self.bucket, Key=self.key(INDEX_NAME), Body=body, **condition
                        )
                except Exception as error:
                    if _error_code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                        time.sleep(random.uniform(0.05, 0.2) * attempt)  # another writer won: merge again
                        continue
                    raise self._unreachable(error) from None
                report.rows_added = added
                conn = sqlite3.connect(path)
                try:
                    self._import(conn, response["ETag"])
                finally:
                    conn.close()
                return report
        raise SharedCacheError(
            f"gave up pushing to {self.uri} after {MAX_PUSH_ATTEMPTS} conflicting writes; run `pkg cache push` again"
        )
