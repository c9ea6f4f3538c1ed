"""The shared cache: one SQLite index and the artifact files under a bucket prefix, for a whole team.

Layout under `s3://bucket/prefix/`: `index.sqlite` (the shared index: `artifacts` and `published`
rows) and `store/<hh>/<input hash>.<ext>` (artifact files; immutable keys).

- Objects go up before the rows that name them, each with `IfNoneMatch="*"` (a key is written once).
- The index goes up with `IfMatch=<the ETag we merged into>` (or `IfNoneMatch="*"` when there is none
  yet); a 412 means another writer got there first: pull, merge again, retry (bounded). Rows are
  facts keyed by hash, so merging is a union; publish records merge three-way against the shared
  index as last synchronised (the later write wins; no writer-chosen timestamp is compared).
- Signed rows (cache/signing.py), optional: a writer with a `Signer` signs a manifest of the rows it
  adds (one signing call per push) and stores the signature in the index; a reader given a trusted
  public key takes only rows a verified manifest lists. Without a signer nor a key, signatures are
  carried from index to index untouched.
- A read-only member (`read_only`, or a PutObject the store denies, or a signer denied its key)
  pulls, never writes.
- Nothing downloaded is trusted. The index is opened read-only with its schema untrusted (no
  trigger or view of it runs), capped in size, and read as data: each row is checked (cache/rows.py)
  and a bad one skipped with one warning. A push never writes into the downloaded file: it writes a
  fresh one from pkg's own schema. An artifact is checked against the sha256 its row records before
  it enters the local store, and a local file against its row before it is uploaded.

Everything here talks to an `ObjectStore` (get, conditional put); `cache/s3.py` is the S3 one, and
the unit tests use an in-memory one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

from cache import INDEX_NAME
from cache.index import ARTIFACT_COLUMNS, PUBLISHED_COLUMNS, TABLES, ArtifactRecord, Index
from cache.rows import RowRules, check_artifact_row, check_published_row, safe_relpath
from cache.signing import (
    SIGNATURE_COLUMNS,
    SIGNATURES_SQL,
    SIGNATURES_TABLE,
    PublicKey,
    SignatureRow,
    SignedRows,
    Signer,
    SigningDenied,
    SigningError,
    artifact_digest,
    check_signature_row,
    manifest_rows,
    published_digest,
    sign_rows,
    verify_signatures,
)
from cache.store import Store, sha256_file, write_atomic

__all__ = [
    "COMPACT_SIGNATURES_AFTER",
    "DEFAULT_MAX_INDEX_BYTES",
    "MAX_PUSH_ATTEMPTS",
    "ObjectAccessDenied",
    "ObjectNotFound",
    "ObjectNotModified",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectLister",
    "ObjectTooLarge",
    "PreconditionFailed",
    "PullReport",
    "PushReport",
    "SharedArtifactMismatch",
    "SharedCache",
    "SharedCacheError",
    "SharedGcReport",
    "SharedCacheReadOnly",
    "SharedIndexCorrupt",
    "SharedIndexTooLarge",
    "StoredObject",
    "WriteConflict",
    "parse_uri",
]

MAX_PUSH_ATTEMPTS = 12
UPLOAD_THREADS = 8
DEFAULT_MAX_INDEX_BYTES = 256 * 1024 * 1024
# A signing writer that finds this many signature rows signs one manifest of every row it verified
# instead of only its own: a reader verifies a bounded number of signatures, not one per push ever made.
COMPACT_SIGNATURES_AFTER = 32


# -- the object store ----------------------------------------------------------------------


class ObjectStoreError(Exception):
    """The object store could not answer (unreachable, denied, …); the message is the store's own."""


class ObjectNotFound(ObjectStoreError):
    """No object under that key."""


class ObjectAccessDenied(ObjectStoreError):
    """The store refused this principal the operation (S3's 403 AccessDenied)."""


class ObjectNotModified(ObjectStoreError):
    """The object still has the ETag the reader named in `if_none_match` (HTTP 304)."""


class ObjectTooLarge(ObjectStoreError):
    """The object is larger than the reader's `max_bytes`; nothing of it was kept."""


class PreconditionFailed(ObjectStoreError):
    """A conditional write was refused: the key exists (`if_none_match="*"`) or has another ETag (HTTP 412)."""


class WriteConflict(ObjectStoreError):
    """A conditional write raced another write to the same key (S3's 409 ConditionalRequestConflict)."""


class ObjectStore(Protocol):
    """What the shared cache needs of an object store: whole-object reads and conditional writes.

    Failures are ObjectStoreError or one of its subclasses above, never the client's own exceptions.
    """

    def get(
        self, bucket: str, key: str, path: str, if_none_match: str | None = None, max_bytes: int | None = None
    ) -> str:
        """Download an object into the file `path` and return its ETag.

        Raises ObjectNotFound, ObjectNotModified when its ETag is still `if_none_match`, or
        ObjectTooLarge when it has more than `max_bytes` bytes.
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


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing reports it (untrusted: the key is checked before anything uses it)."""

    key: str
    size: int
    last_modified: float  # seconds since the epoch
    etag: str = ""


class ObjectLister(Protocol):
    """What collecting the shared cache's garbage needs besides an ObjectStore: listing and deleting."""

    def list(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix`."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete one object (deleting an absent key is no error)."""
        ...


# -- the shared cache ----------------------------------------------------------------------


class SharedCacheError(Exception):
    """The shared cache can't be used right now (unreachable, denied, corrupt); callers warn and go on."""


class SharedCacheReadOnly(SharedCacheError):
    """This machine may read the shared cache but not write it (PutObject or the signing key denied):
    nothing was pushed, nothing local is lost."""


class SharedIndexCorrupt(SharedCacheError):
    """The shared index is not a readable pkg index; the next push replaces it."""


class SharedIndexTooLarge(SharedCacheError):
    """The shared index is larger than the configured cap (`limit`, in bytes); the shared cache is not used."""

    def __init__(self, message: str, limit: int):
        super().__init__(message)
        self.limit = limit


class SharedArtifactMismatch(Exception):
    """A downloaded artifact does not match the sha256 of its row (or its row names no safe path).

    `etag` is the ETag of the object found, when one was downloaded: a verified rebuild may replace
    exactly that object, with a conditional write.
    """

    def __init__(self, message: str, etag: str | None = None):
        super().__init__(message)
        self.etag = etag


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
class SharedGcReport:
    """What collecting the shared cache's garbage found: the objects deleted (or to delete, on a dry
    run), and how many were kept because in use, kept because younger than the grace period, or
    left alone because their key is no artifact pkg lays out."""

    deleted: list[StoredObject] = field(default_factory=list)
    in_use: int = 0
    young: int = 0
    ignored: int = 0
    rows_removed: int = 0  # shared index rows of deleted objects, and rows whose object was gone
    dry_run: bool = False
    attempts: int = 0


@dataclass
class PushReport:
    """What a push did: the artifact keys it wrote, the index rows it added, in how many attempts."""

    uploaded: list[str] = field(default_factory=list)  # artifact keys written by this push
    replaced: list[str] = field(default_factory=list)  # known-bad shared objects replaced by a verified rebuild
    rows_added: int = 0
    attempts: int = 0
    signed: int = 0  # rows the signature this push stored vouches for (0: unsigned)
    warnings: list[str] = field(default_factory=list)


_KNOWN_OBJECTS = frozenset({*TABLES, SIGNATURES_TABLE})


def _open_shared_copy(path: str) -> sqlite3.Connection:
    """Open a downloaded index read-only, its schema untrusted, or raise SharedIndexCorrupt."""
    conn = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        # Functions and virtual tables named in a hostile schema must not run while we read.
        conn.execute("PRAGMA trusted_schema = OFF")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"artifacts", "published"} <= tables:
            raise sqlite3.DatabaseError(f"tables missing: {sorted({'artifacts', 'published'} - tables)}")
        return conn
    except sqlite3.DatabaseError as error:
        if conn is not None:
            conn.close()
        raise SharedIndexCorrupt(f"the shared index is corrupt or not a pkg index ({error})") from None


@dataclass
class _SharedRows:
    """The rows of a shared index copy that passed their checks, and what was refused.

    `artifacts` holds the artifact rows only when read whole (`_read_rows`, for a push); a pull
    streams them instead (`_artifact_rows`), so its memory does not grow with the index.
    """

    artifacts: list[ArtifactRecord] = field(default_factory=list)
    published: list[dict] = field(default_factory=list)
    signatures: list[SignatureRow] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # publish records and signatures: few
    refused_artifacts: int = 0
    first_refused_artifact: str = ""
    foreign_objects: list[str] = field(default_factory=list)  # triggers, views, unknown tables

    def refuse_artifact(self, reason: str) -> None:
        self.refused_artifacts += 1
        self.first_refused_artifact = self.first_refused_artifact or reason

    @property
    def clean(self) -> bool:
        return not self.refused and not self.refused_artifacts and not self.foreign_objects

    def warning(self, uri: str) -> str | None:
        """One line for everything refused, or None."""
        parts = []
        refused = self.refused_artifacts + len(self.refused)
        if refused:
            parts.append(f"{refused} row(s) refused (first: {self.first_refused_artifact or self.refused[0]})")
        if self.foreign_objects:
            parts.append(f"ignored schema objects pkg does not make: {', '.join(sorted(self.foreign_objects)[:5])}")
        if not parts:
            return None
        return f"shared index {uri}: " + "; ".join(parts) + " (the next push writes a clean index)"


def _corrupt(error: sqlite3.DatabaseError) -> SharedIndexCorrupt:
    return SharedIndexCorrupt(f"the shared index is corrupt or not a pkg index ({error})")


def _scan(conn: sqlite3.Connection, rules: RowRules) -> _SharedRows:
    """Everything of a shared index copy but its artifact rows: schema objects pkg does not make,
    signatures and publish records (checked); SharedIndexCorrupt if unreadable."""
    rows = _SharedRows()
    try:
        has_signatures = False
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master"):
            if kind in ("table", "index") and (name in _KNOWN_OBJECTS or name.startswith("sqlite_autoindex_")):
                has_signatures = has_signatures or name == SIGNATURES_TABLE
                continue
            rows.foreign_objects.append(f"{kind} {str(name)[:40]}")
        conn.execute(f"SELECT {', '.join(ARTIFACT_COLUMNS)} FROM artifacts LIMIT 0")  # every column is there
        if has_signatures:  # indexes written before signing have none
            for row in conn.execute(f"SELECT {', '.join(SIGNATURE_COLUMNS)} FROM {SIGNATURES_TABLE}"):
                signature = check_signature_row(row)
                if signature is None:
                    rows.refused.append(f"signature row {str(row[0])[:16]!r}: not one pkg writes")
                else:
                    rows.signatures.append(signature)
        for row in conn.execute(f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM published"):
            record = check_published_row(row, rules)
            if isinstance(record, str):
                rows.refused.append(record)
            else:
                rows.published.append(record)
    except sqlite3.DatabaseError as error:
        raise _corrupt(error) from None
    return rows


def _artifact_rows(conn: sqlite3.Connection, rules: RowRules, rows: _SharedRows) -> Iterator[ArtifactRecord]:
    """The checked artifact rows of a shared index copy, one at a time (refusals counted in `rows`)."""
    try:
        for row in conn.execute(f"SELECT {', '.join(ARTIFACT_COLUMNS)} FROM artifacts"):
            checked = check_artifact_row(row, rules)
            if isinstance(checked, str):
                rows.refuse_artifact(checked)
            else:
                yield checked
    except sqlite3.DatabaseError as error:
        raise _corrupt(error) from None


def _read_rows(conn: sqlite3.Connection, rules: RowRules) -> _SharedRows:
    """Read the known columns of a shared index copy whole, checking every row; SharedIndexCorrupt if unreadable."""
    rows = _scan(conn, rules)
    rows.artifacts = list(_artifact_rows(conn, rules, rows))
    return rows


_Row = TypeVar("_Row")


class _Prefetch:
    """`fetch()` started on a thread on entry; calling the context's value waits for it (its error raised
    there). The thread is joined on a normal exit; leaving on an error does not wait for it (a daemon
    thread: a KMS endpoint as unreachable as S3 was must not hold the error up)."""

    def __init__(self, fetch: Callable[[], PublicKey] | None):
        self.fetch = fetch
        self._result: PublicKey | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Callable[[], PublicKey] | None:
        if self.fetch is None:
            return None
        self._thread = threading.Thread(target=self._run, name="pkg-trusted-key", daemon=True)
        self._thread.start()
        return self._wait

    def _run(self) -> None:
        try:
            self._result = self.fetch()  # type: ignore[misc]
        except BaseException as error:  # raised again on the caller's thread
            self._error = error

    def _wait(self) -> PublicKey:
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        if self._thread is not None and exc_type is None:
            self._thread.join()


@dataclass
class _Unsigned:
    """The rows a trusted key did not sign, counted as they stream past (the first one named)."""

    count: int = 0
    first: str = ""

    def signed_only(
        self,
        rows: Iterable[_Row],
        signed: SignedRows,
        digest: Callable[[_Row], str],
        name: Callable[[_Row], str],
    ) -> Iterator[_Row]:
        for row in rows:
            if digest(row) in signed.digests:
                yield row
            else:
                self.count += 1
                self.first = self.first or name(row)

    def warning(self, uri: str, signed: SignedRows | None) -> str | None:
        """One line for the rows ignored as unsigned and the signatures that did not verify, or None."""
        if signed is None or not (self.count or signed.invalid):
            return None
        parts = [f"{self.count} row(s) not signed by the trusted key ignored"]
        if self.count:
            parts[0] += f" (first: {self.first[:80]})"
        if signed.invalid:
            parts.append(f"{signed.invalid} signature(s) that do not verify ignored")
        return f"shared index {uri}: " + "; ".join(parts) + ' (cache_trust = "signed": built locally instead)'


def _merge_for_push(
    shared: list[dict], changed_here: list[dict], trusted: Callable[[dict], bool] | None = None
) -> tuple[list[dict], list[dict]]:
    """The publish records of the next shared index, and those it takes from this machine.

    What this machine changed since its last sync is the latest write: it replaces the shared record.
    No timestamp is compared, so a record stamped far in the future wins nothing. A record equal to
    the shared one is taken anyway when the shared one is not `trusted` (so that it gets signed).
    """
    merged = {(r["account"], r["region"], r["stage"], r["resource_id"]): r for r in shared}
    taken = []
    for record in changed_here:
        key = (record["account"], record["region"], record["stage"], record["resource_id"])
        current = merged.get(key)
        if current != record or (trusted is not None and not trusted(current)):
            merged[key] = record
            taken.append(record)
    return list(merged.values()), taken


def _listed(digests: set[str], record: dict) -> bool:
    """Whether a publish record is among signed `digests`."""
    return published_digest(record) in digests


@dataclass(frozen=True)
class _Upload:
    """One artifact a push shares: its row, and how its object goes up (if at all)."""

    record: ArtifactRecord
    upload: bool = True
    if_none_match: str | None = "*"  # a new key is written once
    if_match: str | None = None  # only over the known-bad object with this ETag

    @property
    def repair(self) -> bool:
        return self.if_match is not None


class SharedCache:
    """The shared index and artifacts under the prefix `uri` names, synchronised with a local Store.

    `rules` says which rows the caller accepts; an index larger than `max_index_bytes` is not read.
    With `signer`, pushes are signed; with `trusted_key`, a pull takes only the rows signed under
    that key (the rest stay in the shared index for others); with `read_only`, nothing is pushed.
    """

    def __init__(
        self,
        uri: str,
        objects: ObjectStore,
        store: Store,
        rules: RowRules,
        max_index_bytes: int = DEFAULT_MAX_INDEX_BYTES,
        on_pull_warning: Callable[[str], None] | None = None,
        signer: Signer | None = None,
        trusted_key: Callable[[], PublicKey] | None = None,
        read_only: bool = False,
        trust_label: str = "",
    ):
        self.uri = uri
        self.bucket, self.prefix = parse_uri(uri)
        self.objects = objects
        self.store = store
        self.rules = rules
        self.max_index_bytes = max_index_bytes
        self.on_pull_warning = on_pull_warning  # also told what `pull` reports (callers that drop the report)
        self.signer = signer  # signs what this machine pushes
        self.trusted_key = trusted_key  # when set, only rows signed under this key are taken (fetched on first use)
        # Names the trusted key: the rows kept locally were taken under it (another one pulls the index whole).
        named = trust_label if trusted_key is not None else ""
        self.trust_label = "signed:" + hashlib.sha256(named.encode()).hexdigest()[:16] if named else ""
        self.read_only = read_only
        # input hash -> ETag of a shared object found not to match its row (a verified rebuild may replace it)
        self.known_bad: dict[str, str] = {}
        self.missing: set[str] = set()  # input hashes whose row names an object that is gone
        self._told: set[str] = set()  # warnings a pull already gave: a push in the same command doesn't repeat them
        self._lock = threading.Lock()

    def key(self, relpath: str) -> str:
        """The object key of a path relative to the shared cache (as in the local cache folder)."""
        return f"{self.prefix}/{relpath}" if self.prefix else relpath

    def _known_etag(self) -> str | None:
        """The ETag of the shared index as last taken here, if taken under this trust: rows taken
        unsigned (or under another key) are not what a signed-only pull would take, so it starts over."""
        stored = self.store.index.shared_etag(self.uri)
        etag, _, label = (stored or "").partition("\t")
        return etag if stored and label == self.trust_label else None

    def _tagged(self, etag: str) -> str:
        return f"{etag}\t{self.trust_label}" if self.trust_label else etag

    def _unreachable(self, error: Exception) -> SharedCacheError:
        return SharedCacheError(f"shared cache {self.uri} unavailable: {error}")

    # -- the index object ------------------------------------------------------------------

    def _download_index(self, path: str, if_none_match: str | None = None) -> str | None:
        """Download the shared index to `path`; its ETag, None if there is none, or "" if unchanged."""
        try:
            etag = self.objects.get(
                self.bucket, self.key(INDEX_NAME), path, if_none_match=if_none_match, max_bytes=self.max_index_bytes
            )
        except ObjectNotFound:
            return None
        except ObjectNotModified:
            return ""
        except ObjectTooLarge:
            raise self._too_large() from None
        except ObjectStoreError as error:
            raise self._unreachable(error) from None
        if os.path.getsize(path) > self.max_index_bytes:  # an object store that ignores max_bytes
            raise self._too_large()
        return etag

    def _too_large(self) -> SharedIndexTooLarge:
        return SharedIndexTooLarge(
            f"shared index {self.key(INDEX_NAME)} is larger than cache_max_index_bytes: not read",
            self.max_index_bytes,
        )

    def _read(self, path: str) -> _SharedRows:
        conn = _open_shared_copy(path)
        try:
            return _read_rows(conn, self.rules)
        finally:
            conn.close()

    # -- pull --------------------------------------------------------------------------------

    def pull(self) -> PullReport:
        """Bring the shared index's checked rows into the local index (artifacts as known-remote,
        publish records by a three-way merge: `Index.sync_published`); with a trusted key, only the
        rows it signed. Artifact rows are streamed from the download into the local index: memory
        does not grow with the shared index."""
        report = PullReport()
        known = self._known_etag()
        # On a first pull (a fresh clone: rows to verify for sure), the trusted key (a KMS client,
        # GetPublicKey, loading the key) is fetched while the index downloads; else when rows need it.
        with tempfile.TemporaryDirectory() as tmp, _Prefetch(None if known else self.trusted_key) as trusted_key:
            path = os.path.join(tmp, INDEX_NAME)
            etag = self._download_index(path, known)
            if etag == "":
                return report  # unchanged since the last pull or push
            report.changed = True
            if etag is None:
                self.store.index.replace_remote_artifacts(self.uri, [], None)
                return report
            conn = _open_shared_copy(path)
            try:
                rows = _scan(conn, self.rules)
                signed = self._verify(rows, trusted_key)
                streamed = _artifact_rows(conn, self.rules, rows)
                report.artifacts, report.published, ignored = self._import(rows, streamed, etag, signed)
            finally:
                conn.close()
        for warning in (rows.warning(self.uri), ignored.warning(self.uri, signed)):
            if warning:
                report.warnings.append(warning)
                self._told.add(warning)
                if self.on_pull_warning is not None:
                    self.on_pull_warning(warning)
        return report

    def _verify(
        self, rows: _SharedRows, trusted_key: Callable[[], PublicKey] | None = None
    ) -> SignedRows | None:
        """What the trusted key (`trusted_key`, a prefetch of it, else the remote's own) signed among `rows`
        (None: no key, every checked row is taken)."""
        trusted_key = trusted_key or self.trusted_key
        if trusted_key is None:
            return None
        try:
            key = trusted_key()
        except SigningError as error:
            raise SharedCacheError(f"shared cache {self.uri}: can't verify signed rows ({error})") from None
        return verify_signatures(rows.signatures, key)

    def _import(
        self, rows: _SharedRows, artifacts: Iterable[ArtifactRecord], etag: str, signed: SignedRows | None
    ) -> tuple[int, int, _Unsigned]:
        """Take checked (and, with a trusted key, signed) rows of the shared index into the local index;
        returns (artifacts, records added, the rows ignored as unsigned)."""
        ignored = _Unsigned()
        published = rows.published
        if signed is not None:
            artifacts = ignored.signed_only(artifacts, signed, artifact_digest, lambda r: r.input_hash)
            published = list(ignored.signed_only(published, signed, published_digest, lambda r: r["resource_id"]))
        count = self.store.index.replace_remote_artifacts(self.uri, artifacts, self._tagged(etag))
        return count, self.store.index.sync_published(self.uri, published), ignored

    # -- fetch -------------------------------------------------------------------------------

    def download(self, record: ArtifactRecord) -> None:
        """Download one artifact the shared index knows into the local store, verified by its sha256.

        Safe to call from several threads; the caller records the row (`fetch` does both).
        Raises SharedArtifactMismatch (the object is ignored) or SharedCacheError.
        """
        if not safe_relpath(self.store.cache_dir, record.path, record.input_hash):
            raise SharedArtifactMismatch(
                f"shared index row {record.input_hash[:12]}… names the path {record.path[:120]!r}, not one pkg"
                " computes; ignored, building it locally"
            )

        def write(tmp: str) -> None:
            try:
                etag = self.objects.get(self.bucket, self.key(record.path), tmp)
            except ObjectNotFound:
                with self._lock:
                    self.missing.add(record.input_hash)  # a verified rebuild is uploaded again by the push
                raise SharedArtifactMismatch(
                    f"shared artifact {self.key(record.path)} is gone (collected by `pkg gc --shared`?);"
                    " building it locally"
                ) from None
            except ObjectStoreError as error:
                raise self._unreachable(error) from None
            actual = sha256_file(tmp)
            if actual != record.sha256:
                with self._lock:
                    self.known_bad[record.input_hash] = etag
                raise SharedArtifactMismatch(
                    f"shared artifact {self.key(record.path)} does not match its index row (sha256"
                    f" {actual[:12]}…, expected {record.sha256[:12]}…); ignored, rebuilding it locally",
                    etag,
                )

        write_atomic(self.store.abspath(record.path), write)

    def fetch(self, record: ArtifactRecord) -> ArtifactRecord:
        """Download one artifact (see `download`) and record it in the local index."""
        self.download(record)
        self.store.index.add_artifacts([record], replace=True)  # the file in place is the shared one
        return record

    # -- push --------------------------------------------------------------------------------

    def _shareable(self, report: PushReport) -> list[ArtifactRecord]:
        """Local artifacts whose row passes the rules and whose file hashes to the row's sha256."""
        found = []
        for record in self.store.index.all_artifacts():
            row = (*[getattr(record, column) for column in ARTIFACT_COLUMNS[:-1]], json.dumps(record.meta))
            if isinstance(check_artifact_row(row, self.rules), str):
                report.warnings.append(
                    f"local index row {record.input_hash[:12]}… ({record.path[:120]!r}) is not one pkg makes;"
                    " not shared (run `pkg cache verify`)"
                )
                continue
            found.append(record)
        return found

    def _verified(self, record: ArtifactRecord, report: PushReport) -> bool:
        """Whether the local file of `record` is exactly what its row says (hashed: same-size corruption too)."""
        path = self.store.abspath(record.path)
        try:
            if os.path.getsize(path) == record.size and sha256_file(path) == record.sha256:
                return True
        except OSError:
            return False  # missing: `pkg cache verify` reports it
        report.warnings.append(
            f"local artifact {record.path} does not match its index row; not shared (run `pkg cache verify --repair`)"
        )
        return False

    def _to_share(
        self, shared: dict[str, ArtifactRecord], trusted: dict[str, ArtifactRecord], report: PushReport
    ) -> list[_Upload]:
        """Verified local artifacts the shared index lacks, verified rebuilds of shared objects known to
        be bad, and (for a signing writer that trusts signed rows only) this machine's rows of artifacts
        the shared index holds unsigned: those replace them, signed."""
        found = []
        for record in self._shareable(report):
            current = shared.get(record.input_hash)
            bad_etag = self.known_bad.get(record.input_hash)
            if record.input_hash in self.missing and (current or record).path == record.path:
                if self._verified(record, report):
                    found.append(_Upload(record))  # its row stays; the object a fetch found gone comes back
                continue
            if current is None:
                upload = _Upload(record)
            elif record.input_hash in trusted:
                if bad_etag is None or current.path != record.path:
                    continue
                upload = _Upload(record, if_none_match=None, if_match=bad_etag)  # only the very object found bad
            elif bad_etag is not None and current.path == record.path:
                upload = _Upload(record, if_none_match=None, if_match=bad_etag)
            elif current.path == record.path and current.sha256 == record.sha256:
                upload = _Upload(record, upload=False)  # the object is ours already: only the row is signed
            else:
                upload = _Upload(record, if_none_match=None)  # unsigned bytes: this machine's verified ones win
            if self._verified(record, report):
                found.append(upload)
        return found

    def _upload(self, uploads: list[_Upload], report: PushReport) -> list[ArtifactRecord]:
        """Upload (in parallel) the objects of `uploads`; returns the rows that may now be shared."""
        from concurrent.futures import ThreadPoolExecutor

        def upload(item: _Upload) -> bool:
            if not item.upload:
                return False
            path = self.store.abspath(item.record.path)
            key = self.key(item.record.path)
            try:
                self.objects.put(self.bucket, key, path, if_match=item.if_match, if_none_match=item.if_none_match)
                return True
            except PreconditionFailed:
                return False  # already there: someone uploaded the same input hash; their row describes it
            except WriteConflict:
                return False
            except ObjectAccessDenied as error:
                raise SharedCacheReadOnly(
                    f"shared cache {self.uri}: PutObject denied ({error}); this machine reads the shared cache"
                    " but can't write it: nothing pushed (set cache_push = false to skip pushing)"
                ) from None
            except ObjectStoreError as error:
                raise self._unreachable(error) from None

        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            done = list(pool.map(upload, uploads))
        rows = []
        for item, uploaded in zip(uploads, done, strict=True):
            if item.repair:
                if uploaded:
                    rows.append(item.record)
                    report.replaced.append(self.key(item.record.path))
                    self.known_bad.pop(item.record.input_hash, None)
                continue
            rows.append(item.record)
            if uploaded:
                report.uploaded.append(self.key(item.record.path))
                self.missing.discard(item.record.input_hash)
        return rows

    def _write_fresh(
        self, path: str, artifacts: list[ArtifactRecord], published: list[dict], signatures: list[SignatureRow]
    ) -> None:
        """A new index file from pkg's own schema holding exactly these rows and signatures."""
        index = Index(path)
        try:
            index.add_artifacts(artifacts)
            index.put_published(published)
            with index.conn:
                index.conn.execute(SIGNATURES_SQL)
                index.conn.executemany(
                    f"INSERT OR REPLACE INTO {SIGNATURES_TABLE} ({', '.join(SIGNATURE_COLUMNS)}) VALUES (?, ?, ?, ?)",
                    [signature.values() for signature in signatures],
                )
            index.conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to upload
        finally:
            index.conn.close()

    def _compacted(self, rows: _SharedRows, signed: SignedRows) -> tuple[set[str], list[SignatureRow]]:
        """The signed rows still in the index (to sign again in one manifest), and the signature rows to
        keep beside it: those of another key that still list a row of the index."""
        present = {artifact_digest(r) for r in rows.artifacts} | {published_digest(r) for r in rows.published}
        valid = {signature.digest for signature in signed.valid}
        kept = [
            signature
            for signature in rows.signatures
            if signature.digest not in valid and not present.isdisjoint(manifest_rows(signature))
        ]
        return signed.digests & present, kept

    def push(self) -> PushReport:
        """Upload new artifacts, then write the merged rows (and this push's signature, with a signer)
        as a fresh shared index with a conditional write. Raises SharedCacheReadOnly when this machine
        may not write (nothing is pushed) and SharedCacheError when the store can't be reached."""
        report = PushReport()
        if self.read_only:
            report.warnings.append(f"shared cache {self.uri} is read-only here (cache_push = false): nothing pushed")
            return report
        local_published = self.store.index.changed_published(self.uri)
        signature: SignatureRow | None = None  # signed once per push, reused while it covers what is added
        covered: set[str] = set()
        with tempfile.TemporaryDirectory() as tmp:
            download = os.path.join(tmp, "shared-" + INDEX_NAME)
            for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
                report.attempts = attempt
                for leftover in os.listdir(tmp):
                    os.unlink(os.path.join(tmp, leftover))
                etag = self._download_index(download)
                rows, unreadable = _SharedRows(), False
                if etag is not None:
                    try:
                        rows = self._read(download)
                    except SharedIndexCorrupt as error:
                        unreadable = True
                        if attempt == 1:
                            report.warnings.append(f"{error}; replacing it with the rows of this machine")
                    warning = rows.warning(self.uri)
                    if attempt == 1 and warning and warning not in self._told:
                        report.warnings.append(warning)
                signed = self._verify(rows)
                resign = self.signer is not None and signed is not None
                shared = {record.input_hash: record for record in rows.artifacts}
                trusted = shared
                is_trusted: Callable[[dict], bool] | None = None
                if resign and signed is not None:
                    trusted = {h: r for h, r in shared.items() if artifact_digest(r) in signed.digests}
                    is_trusted = functools.partial(_listed, signed.digests)
                uploads = self._to_share(shared, trusted, report)
                published, taken = _merge_for_push(rows.published, local_published, is_trusted)
                added = len(uploads) + len(taken)
                if not added and etag is not None and rows.clean and not unreadable:
                    self._import(rows, rows.artifacts, etag, signed)
                    return report  # nothing to add: no write at all
                signatures = list(rows.signatures)
                if self.signer is not None and added:
                    wanted = {artifact_digest(u.record) for u in uploads} | {published_digest(r) for r in taken}
                    if resign and signed is not None and len(signatures) >= COMPACT_SIGNATURES_AFTER:
                        still_signed, signatures = self._compacted(rows, signed)
                        wanted |= still_signed
                    if signature is None or not wanted <= covered:
                        signature, covered = self._sign(wanted), wanted
                    signatures.append(signature)
                new_rows = self._upload(uploads, report)
                for record in new_rows:
                    shared[record.input_hash] = record  # a new row, or a replaced bad object's row
                artifacts = list(shared.values())
                fresh = os.path.join(tmp, INDEX_NAME)
                self._write_fresh(fresh, artifacts, published, signatures)
                try:
                    if etag:
                        new_etag = self.objects.put(self.bucket, self.key(INDEX_NAME), fresh, if_match=etag)
                    else:
                        new_etag = self.objects.put(self.bucket, self.key(INDEX_NAME), fresh, if_none_match="*")
                except (PreconditionFailed, WriteConflict):
                    time.sleep(random.uniform(0.05, 0.2) * attempt)  # another writer won: merge again
                    continue
                except ObjectAccessDenied as error:
                    raise SharedCacheReadOnly(
                        f"shared cache {self.uri}: PutObject denied ({error}); nothing pushed"
                        " (set cache_push = false to skip pushing)"
                    ) from None
                except ObjectStoreError as error:
                    raise self._unreachable(error) from None
                report.rows_added = added
                report.signed = len(covered) if signature is not None else 0
                if signed is not None:
                    signed = SignedRows(signed.digests | (covered if signature is not None else set()))
                self._import(_SharedRows(artifacts, published), artifacts, new_etag, signed)
                return report
        raise SharedCacheError(
            f"gave up pushing to {self.uri} after {MAX_PUSH_ATTEMPTS} conflicting writes; run `pkg cache push` again"
        )

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(
        self,
        lister: ObjectLister,
        in_use: Callable[[list[ArtifactRecord], list[dict]], set[str]],
        grace: float,
        dry_run: bool = False,
        now: float | None = None,
    ) -> SharedGcReport:
        """Delete the shared artifacts whose input hash `in_use` (given the shared index's checked
        artifact and publish rows) does not name, but none modified within `grace` seconds.

        Only keys below the prefix laid out as the rules allow are candidates: anything else found
        there is left alone. The index goes first, without the rows of what is deleted (a conditional
        write; another writer's 412 means start again), then the objects: a crash leaves at worst
        objects no row names, which the next collection deletes. Rows whose object is gone are dropped too.
        """
        listing_prefix = f"{self.prefix}/" if self.prefix else ""
        with tempfile.TemporaryDirectory() as tmp:
            download = os.path.join(tmp, "shared-" + INDEX_NAME)
            for attempt in range(1, MAX_PUSH_ATTEMPTS + 1):
                report = SharedGcReport(dry_run=dry_run, attempts=attempt)
                if os.path.exists(download):
                    os.unlink(download)
                etag = self._download_index(download)  # before the listing: every row's object is listed
                rows = self._read(download) if etag else _SharedRows()
                used = in_use(rows.artifacts, rows.published)
                try:
                    listed = list(lister.list(self.bucket, listing_prefix))
                except ObjectStoreError as error:
                    raise self._unreachable(error) from None
                moment = time.time() if now is None else now
                present = self._sort_listing(listed, listing_prefix, used, moment - grace, report)
                doomed = {self.rules.input_hash_of(obj.key[len(listing_prefix) :]) for obj in report.deleted}
                kept = [r for r in rows.artifacts if r.input_hash not in doomed and r.path in present]
                report.rows_removed = len(rows.artifacts) - len(kept)
                if dry_run:
                    return report
                if etag and (report.rows_removed or not rows.clean):
                    fresh = os.path.join(tmp, INDEX_NAME)
                    if os.path.exists(fresh):
                        os.unlink(fresh)
                    self._write_fresh(fresh, kept, rows.published, rows.signatures)
                    try:
                        new_etag = self.objects.put(self.bucket, self.key(INDEX_NAME), fresh, if_match=etag)
                    except (PreconditionFailed, WriteConflict):
                        time.sleep(random.uniform(0.05, 0.2) * attempt)  # another writer: look again
                        continue
                    except ObjectStoreError as error:
                        raise self._unreachable(error) from None
                    self._import(rows, kept, new_etag, self._verify(rows))
                for obj in report.deleted:
                    try:
                        lister.delete(self.bucket, obj.key)
                    except ObjectStoreError as error:
                        raise self._unreachable(error) from None
                return report
        raise SharedCacheError(
            f"gave up collecting {self.uri} after {MAX_PUSH_ATTEMPTS} conflicting writes; run `pkg gc --shared` again"
        )

    def _sort_listing(
        self, listed: list[StoredObject], prefix: str, used: set[str], cutoff: float, report: SharedGcReport
    ) -> set[str]:
        """Count each listed object as ignored, in use, young (modified after `cutoff`) or to delete
        (into `report`); returns the paths (relative to the prefix) of the artifacts found."""
        present = set()
        for obj in listed:
            relpath = obj.key[len(prefix) :] if obj.key.startswith(prefix) else ""
            input_hash = self.rules.input_hash_of(relpath) if relpath else None
            if input_hash is None:
                report.ignored += 1  # the index itself, or nothing pkg lays out: never touched
                continue
            present.add(relpath)
            if input_hash in used:
                report.in_use += 1
            elif obj.last_modified > cutoff:
                report.young += 1
            else:
                report.deleted.append(obj)
        return present


    def _sign(self, digests: set[str]) -> SignatureRow:
        """One signing call for a manifest of `digests`; SharedCacheReadOnly when this machine may not sign."""
        assert self.signer is not None
        try:
            return sign_rows(self.signer, digests)
        except SigningDenied as error:
            raise SharedCacheReadOnly(
                f"{error}: nothing pushed to {self.uri} (a member without kms:Sign reads the shared cache;"
                " set cache_push = false to skip pushing)"
            ) from None
        except SigningError as error:
            raise self._unreachable(error) from None
