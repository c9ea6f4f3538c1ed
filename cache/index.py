"""The SQLite index beside the store: input hash -> artifact, the stat cache, build history, and
what was published from each input, per account, region and stage.

The tables are defined once (`TABLES`); sqlite-utils turns them into the schema (its DDL, run in
`_migrate` when the file is new or older). Rows are read and written with plain SQL on the same
connection, generated from the same definitions: importing sqlite_utils costs ~75 ms, more than
the whole of a no-op or one-edit build, so only creating an index pays for it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from cache.generation import new_generation

__all__ = [
    "ARTIFACT_COLUMNS",
    "PUBLISHED_COLUMNS",
    "SCHEMA_VERSION",
    "TABLES",
    "ArtifactRecord",
    "Index",
    "PublishedRecord",
    "utc_now",
]

# 1: artifacts, file_state, last_inputs, checked_sources; 2: published; 3: remote_artifacts,
# shared_state (the shared cache); 4: remote_published. Migrations only add.
SCHEMA_VERSION = 4


@dataclass(frozen=True)
class ArtifactRecord:
    """A built artifact as the index knows it; `path` is relative to the cache folder."""

    input_hash: str
    kind: str
    path: str
    sha256: str
    size: int
    unzipped_size: int
    created: str
    meta: dict

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ArtifactRecord:
        """A record from the columns of `ARTIFACT_COLUMNS`, in that order (`meta` as stored JSON)."""
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7] or "{}"))


@dataclass(frozen=True)
class PublishedRecord:
    """What was published for one resource of one account/region/stage; `details` is the publisher's JSON."""

    resource_id: str
    input_hash: str
    details: dict
    published: str


_ARTIFACT_COLUMNS = {
    "input_hash": str,
    "kind": str,
    "path": str,
    "sha256": str,
    "size": int,
    "unzipped_size": int,
    "created": str,
    "meta": str,
}

_PUBLISHED_COLUMNS = {
    "account": str,
    "region": str,
    "stage": str,
    "resource_id": str,
    "input_hash": str,
    "details": str,
    "published": str,
}
_PUBLISHED_KEY = ("account", "region", "stage", "resource_id")

# name -> (columns, primary key)
TABLES: dict[str, tuple[dict, str | tuple[str, ...]]] = {
    "artifacts": (_ARTIFACT_COLUMNS, "input_hash"),
    "file_state": (
        {"path": str, "size": int, "mtime_ns": int, "ctime_ns": int, "inode": int, "digest": str},
        "path",
    ),
    "last_inputs": ({"artifact_id": str, "input_hash": str, "manifest": str, "built": str}, "artifact_id"),
    "checked_sources": ({"digest": str, "checker": str}, "digest"),
    "published": (_PUBLISHED_COLUMNS, _PUBLISHED_KEY),
    # Artifacts the shared cache holds (not necessarily here), and the shared index's ETag.
    "remote_artifacts": ({"uri": str, **_ARTIFACT_COLUMNS}, ("uri", "input_hash")),
    "shared_state": ({"uri": str, "etag": str}, "uri"),
    # The publish records of the shared index as last synchronised: what changed since, on either
    # side, is a newer write (a three-way merge; no timestamp is ever compared).
    "remote_published": ({"uri": str, **_PUBLISHED_COLUMNS}, ("uri", *_PUBLISHED_KEY)),
}
# The columns of an artifact row (`ArtifactRecord`'s fields) and of a publish record, in table order.
ARTIFACT_COLUMNS = tuple(_ARTIFACT_COLUMNS)
PUBLISHED_COLUMNS = tuple(TABLES["published"][0])
_SELECT_ARTIFACT = ", ".join(ARTIFACT_COLUMNS)


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (the index's timestamp format)."""
    # Microseconds: the shared index keeps the newest publish record per resource.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Index:
    """The SQLite index file of one cache folder."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60)
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self._db = None
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            self._migrate()

    @property
    def db(self):
        """The sqlite_utils view of the same connection (imported only to create or migrate the schema)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _migrate(self) -> None:
        """Create what is missing, under the write lock, so racing openers wait instead of failing.

        Every table is `IF NOT EXISTS`: old rows stay (but the shared cache's copy, taken unchecked
        before schema 4, which the next pull brings back checked). sqlite-utils writes the DDL; it runs here, inside
        one BEGIN IMMEDIATE transaction, because sqlite-utils' own create commits table by table.
        """
        self.conn.isolation_level = None
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version < SCHEMA_VERSION:
                    for name, (columns, pk) in TABLES.items():
                        self.conn.execute(self.db.create_table_sql(name, columns, pk=pk, if_not_exists=True))
                    if version == 3:  # shared rows were taken unchecked before 4: forget them, pull again
                        self.conn.execute("DELETE FROM remote_artifacts")
                        self.conn.execute("DELETE FROM shared_state")
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        finally:
            self.conn.isolation_level = "DEFERRED"  # sqlite3's default: BEGIN before a write
        self._use_wal()

    def _use_wal(self) -> None:
        """WAL lets readers go on while another `pkg build` writes; the mode persists in the file.

        Switching needs a moment alone with the file, which SQLite doesn't wait for: retry briefly.
        """
        for attempt in range(200):
            try:
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == 199:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Close the connection; if it wrote, start a new generation (what was derived from the index is void)."""
        wrote = self.conn.total_changes > 0
        self.conn.close()
        if wrote:
            new_generation(self.path)

    # -- reads (plain sqlite3: the no-op path) ---------------------------------------------

    def artifacts(self, input_hashes: Iterable[str]) -> dict[str, ArtifactRecord]:
        """The recorded artifacts among `input_hashes`, keyed by input hash."""
        wanted = list(dict.fromkeys(input_hashes))
        found: dict[str, ArtifactRecord] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self.conn.execute(
                f"SELECT {_SELECT_ARTIFACT} FROM artifacts WHERE input_hash IN ({marks})",
                batch,
            ):
                found[row[0]] = ArtifactRecord.from_row(row)
        return found

    def all_artifacts(self) -> list[ArtifactRecord]:
        rows = self.conn.execute(f"SELECT {_SELECT_ARTIFACT} FROM artifacts ORDER BY input_hash")
        return [ArtifactRecord.from_row(row) for row in rows]

    def file_states(self) -> dict[str, tuple[int, int, int, int, str]]:
        """The stat cache: path -> (size, mtime_ns, ctime_ns, inode, digest)."""
        rows = self.conn.execute("SELECT path, size, mtime_ns, ctime_ns, inode, digest FROM file_state")
        return {row[0]: row[1:] for row in rows}

    def last_inputs(self, artifact_ids: Iterable[str] | None = None) -> dict[str, tuple[str, dict]]:
        """artifact id -> (input hash, manifest) of its latest build (all, or `artifact_ids`), to explain rebuilds."""
        if artifact_ids is None:
            rows = self.conn.execute("SELECT artifact_id, input_hash, manifest FROM last_inputs")
            return {row[0]: (row[1], json.loads(row[2])) for row in rows}
        wanted = list(dict.fromkeys(artifact_ids))
        found: dict[str, tuple[str, dict]] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            query = f"SELECT artifact_id, input_hash, manifest FROM last_inputs WHERE artifact_id IN ({marks})"
            for row in self.conn.execute(query, batch):
                found[row[0]] = (row[1], json.loads(row[2]))
        return found

    def last_input_hashes(self) -> dict[str, str]:
        """artifact id -> input hash of its latest build; no manifest is parsed (the no-op path)."""
        return dict(self.conn.execute("SELECT artifact_id, input_hash FROM last_inputs"))

    def checked_sources(self, checker: str) -> set[str]:
        """Digests of sources that already passed `checker`."""
        rows = self.conn.execute("SELECT digest FROM checked_sources WHERE checker = ?", (checker,))
        return {row[0] for row in rows}

    def published(self, account: str, region: str, stage: str) -> dict[str, PublishedRecord]:
        """resource id -> what was last published for it in this account/region/stage."""
        rows = self.conn.execute(
            "SELECT resource_id, input_hash, details, published FROM published"
            " WHERE account = ? AND region = ? AND stage = ?",
            (account, region, stage),
        )
        found = {}
        for resource_id, input_hash, details, published in rows:
            try:
                parsed = json.loads(details)
            except (TypeError, ValueError):
                continue  # a row that is not pkg's (e.g. pulled before rows were checked): as if unrecorded
            if isinstance(parsed, dict):
                found[resource_id] = PublishedRecord(resource_id, input_hash, parsed, published)
        return found

    # -- writes ------------------------------------------------------------------------------

    def _put(self, table: str, rows: list[dict]) -> None:
        """Insert or replace whole rows (an upsert: every column is given), inside the caller's transaction."""
        if not rows:
            return
        columns = list(TABLES[table][0])
        self.conn.executemany(
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[row[column] for column in columns] for row in rows],
        )

    def record_artifact(self, record: ArtifactRecord, artifact_id: str, manifest: dict) -> None:
        """Record a built artifact whose file is already in place (the diskcache order)."""
        row = record.__dict__ | {"meta": json.dumps(record.meta, sort_keys=True)}
        with self.conn:
            self._put("artifacts", [row])
            self._put(
                "last_inputs",
                [
                    {
                        "artifact_id": artifact_id,
                        "input_hash": record.input_hash,
                        "manifest": json.dumps(manifest, sort_keys=True),
                        "built": record.created,
                    }
                ],
            )

    def remember_inputs(self, artifact_id: str, input_hash: str, manifest: dict) -> None:
        """Note that `artifact_id` now stands at `input_hash` (e.g. reused from an earlier build)."""
        with self.conn:
            self._put(
                "last_inputs",
                [
                    {
                        "artifact_id": artifact_id,
                        "input_hash": input_hash,
                        "manifest": json.dumps(manifest, sort_keys=True),
                        "built": utc_now(),
                    }
                ],
            )

    def save_file_states(self, states: dict[str, tuple[int, int, int, int, str]]) -> None:
        if not states:
            return
        rows = [
            {"path": path, "size": s[0], "mtime_ns": s[1], "ctime_ns": s[2], "inode": s[3], "digest": s[4]}
            for path, s in states.items()
        ]
        with self.conn:
            self._put("file_state", rows)

    def save_checked_sources(self, digests: Iterable[str], checker: str) -> None:
        rows = [{"digest": digest, "checker": checker} for digest in digests]
        if rows:
            with self.conn:
                self._put("checked_sources", rows)

    def forget_artifacts(self, input_hashes: Iterable[str]) -> None:
        with self.conn:
            for input_hash in input_hashes:
                self.conn.execute("DELETE FROM artifacts WHERE input_hash = ?", (input_hash,))

    def record_published(
        self, account: str, region: str, stage: str, resource_id: str, input_hash: str, details: dict
    ) -> None:
        """Record what the publisher confirmed for one resource (call only after the service answered)."""
        self.record_published_many(account, region, stage, [(resource_id, input_hash, details)])

    def record_published_many(self, account: str, region: str, stage: str, rows: list[tuple[str, str, dict]]) -> None:
        """Several (resource id, input hash, details) rows in one transaction."""
        now = utc_now()
        with self.conn:
            self._put(
                "published",
                [
                    {
                        "account": account,
                        "region": region,
                        "stage": stage,
                        "resource_id": resource_id,
                        "input_hash": input_hash,
                        "details": json.dumps(details, sort_keys=True),
                        "published": now,
                    }
                    for resource_id, input_hash, details in rows
                ],
            )

    # -- the shared cache's side (cache/remote.py) ------------------------------------------

    def shared_etag(self, uri: str) -> str | None:
        """The ETag of the shared index as last merged here, or None."""
        row = self.conn.execute("SELECT etag FROM shared_state WHERE uri = ?", (uri,)).fetchone()
        return row[0] if row else None

    def remote_artifacts(self, uri: str, input_hashes: Iterable[str]) -> dict[str, ArtifactRecord]:
        """The artifacts among `input_hashes` that the shared cache at `uri` holds."""
        return {record.input_hash: record for record in self._remote_where(uri, "input_hash", input_hashes)}

    def remote_artifacts_of_bytes(self, uri: str, digests: Iterable[str]) -> list[ArtifactRecord]:
        """Every artifact the shared cache at `uri` holds whose file's sha256 is among `digests` (the same
        bytes may be several artifacts: two jobs' identical scripts)."""
        return list(self._remote_where(uri, "sha256", digests))

    def _remote_where(self, uri: str, column: str, values: Iterable[str]) -> Iterator[ArtifactRecord]:
        wanted = list(dict.fromkeys(values))
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self.conn.execute(
                f"SELECT {_SELECT_ARTIFACT} FROM remote_artifacts WHERE uri = ? AND {column} IN ({marks})",
                [uri, *batch],
            ):
                yield ArtifactRecord.from_row(row)

    def count_remote_artifacts(self, uri: str) -> int:
        return self.conn.execute("SELECT count(*) FROM remote_artifacts WHERE uri = ?", (uri,)).fetchone()[0]

    def all_published(self) -> list[dict]:
        """Every publish record, as rows (for merging into the shared index)."""
        rows = self.conn.execute(f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM published")
        return [dict(zip(PUBLISHED_COLUMNS, row, strict=True)) for row in rows]

    def replace_remote_artifacts(self, uri: str, records: Iterable[ArtifactRecord], etag: str | None) -> int:
        """Make `records` the shared cache's known artifacts, as of the shared index's `etag`; returns
        how many. `records` may be a stream: it is inserted as it comes, never held whole."""
        columns = list(TABLES["remote_artifacts"][0])
        marks = ", ".join("?" * len(columns))
        insert = f"INSERT OR REPLACE INTO remote_artifacts ({', '.join(columns)}) VALUES ({marks})"
        count = 0

        def rows():
            nonlocal count
            for r in records:
                count += 1
                yield [uri, r.input_hash, r.kind, r.path, r.sha256, r.size, r.unzipped_size, r.created,
                       json.dumps(r.meta, sort_keys=True)]  # fmt: skip

        with self.conn:
            self.conn.execute("DELETE FROM remote_artifacts WHERE uri = ?", (uri,))
            self.conn.executemany(insert, rows())
            if etag is None:
                self.conn.execute("DELETE FROM shared_state WHERE uri = ?", (uri,))
            else:
                self._put("shared_state", [{"uri": uri, "etag": etag}])
        return count

    def add_artifacts(self, records: Iterable[ArtifactRecord], replace: bool = False) -> int:
        """Insert rows for input hashes not yet present (the first row for a hash stays), or with
        `replace` the rows describing files just put in place; returns how many rows changed."""
        before = self.conn.total_changes
        with self.conn:
            self.conn.executemany(
                f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO artifacts"
                " (input_hash, kind, path, sha256, size, unzipped_size, created, meta)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.input_hash, r.kind, r.path, r.sha256, r.size, r.unzipped_size, r.created, json.dumps(r.meta))
                    for r in records
                ],
            )
        return self.conn.total_changes - before

    def _published_rows(self, table: str, where: str = "", params: tuple = ()) -> dict[tuple, dict]:
        """Publish records of `table`, keyed by (account, region, stage, resource_id)."""
        rows = self.conn.execute(f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM {table} {where}", params)
        return {row[:4]: dict(zip(PUBLISHED_COLUMNS, row, strict=True)) for row in rows}

    def sync_published(self, uri: str, shared: Iterable[dict]) -> int:
        """Merge the shared index's publish records (three-way, against what it held at the last sync).

        A shared record is taken where this index has none, or where the shared index changed it
        since the last sync and this index did not: the later write wins, by the order writes reached
        the shared index, never by a timestamp a writer chose. A record this machine changed since
        the last sync stays (its push is the later write). Returns how many local rows changed.
        """
        shared_rows = {tuple(row[c] for c in _PUBLISHED_KEY): row for row in shared}
        base = self._published_rows("remote_published", "WHERE uri = ?", (uri,))
        local = self._published_rows("published")
        taken = [
            row
            for key, row in shared_rows.items()
            if key not in local or (local[key] != row and row != base.get(key) and local[key] == base.get(key))
        ]
        with self.conn:
            self._put("published", taken)
            self.conn.execute("DELETE FROM remote_published WHERE uri = ?", (uri,))
            self._put("remote_published", [{"uri": uri, **row} for row in shared_rows.values()])
        return len(taken)

    def changed_published(self, uri: str) -> list[dict]:
        """Local publish records that differ from the shared index as last synchronised (what a push adds)."""
        base = self._published_rows("remote_published", "WHERE uri = ?", (uri,))
        return [row for key, row in self._published_rows("published").items() if base.get(key) != row]

    def put_published(self, rows: list[dict]) -> None:
        """Write publish records as they are (building a fresh shared index)."""
        with self.conn:
            self._put("published", rows)

