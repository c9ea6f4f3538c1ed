"""The SQLite index beside the store: input hash -> artifact, the stat cache, build history, and
what was published from each input, per account, region and stage.

sqlite-utils creates and migrates the schema and performs the writes. Reads on the no-op path
use the same file through the stdlib `sqlite3` module: importing sqlite_utils costs ~75 ms,
most of a no-op build's budget, so it is imported only when something is written.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

# 1: artifacts, file_state, last_inputs, checked_sources; 2: published. Migrations only add.
SCHEMA_VERSION = 2


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


@dataclass(frozen=True)
class PublishedRecord:
    """What was published for one resource of one account/region/stage; `details` is the publisher's JSON."""

    resource_id: str
    input_hash: str
    details: dict
    published: str


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (the index's timestamp format)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Index:
    """The SQLite index file of one cache folder."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=60)
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self._db = None
        if self.conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self._migrate()

    @property
    def db(self):
        """The sqlite_utils view of the same connection (imported on first write)."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _migrate(self) -> None:
        """Create what is missing; every step is `if_not_exists`, so old rows stay and racing openers agree."""
        # WAL lets readers go on while another `pkg build` writes; the mode persists in the file.
        self.conn.execute("PRAGMA journal_mode = WAL")
        db = self.db
        with self.conn:
            db["artifacts"].create(
                {
                    "input_hash": str,
                    "kind": str,
                    "path": str,
                    "sha256": str,
                    "size": int,
                    "unzipped_size": int,
                    "created": str,
                    "meta": str,
                },
                pk="input_hash",
                if_not_exists=True,
            )
            db["file_state"].create(
                {"path": str, "size": int, "mtime_ns": int, "ctime_ns": int, "inode": int, "digest": str},
                pk="path",
                if_not_exists=True,
            )
            db["last_inputs"].create(
                {"artifact_id": str, "input_hash": str, "manifest": str, "built": str},
                pk="artifact_id",
                if_not_exists=True,
            )
            db["checked_sources"].create({"digest": str, "checker": str}, pk="digest", if_not_exists=True)
            db["published"].create(
                {
                    "account": str,
                    "region": str,
                    "stage": str,
                    "resource_id": str,
                    "input_hash": str,
                    "details": str,
                    "published": str,
                },
                pk=("account", "region", "stage", "resource_id"),
                if_not_exists=True,
            )
            # Artifacts the shared cache holds (not necessarily here), and the shared index's ETag.
            db["remote_artifacts"].create(
                {
                    "uri": str,
                    "input_hash": str,
                    "kind": str,
                    "path": str,
                    "sha256": str,
                    "size": int,
                    "unzipped_size": int,
                    "created": str,
                    "meta": str,
                },
                pk=("uri", "input_hash"),
                if_not_exists=True,
            )
            db["shared_state"].create({"uri": str, "etag": str}, pk="uri", if_not_exists=True)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    # -- reads (plain sqlite3: the no-op path) ---------------------------------------------

    def artifacts(self, input_hashes: Iterable[str]) -> dict[str, ArtifactRecord]:
        """The recorded artifacts among `input_hashes`, keyed by input hash."""
        wanted = list(dict.fromkeys(input_hashes))
        found: dict[str, ArtifactRecord] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self.conn.execute(
                "SELECT input_hash, kind, path, sha256, size, unzipped_size, created, meta"
                f" FROM artifacts WHERE input_hash IN ({marks})",
                batch,
            ):
                found[row[0]] = ArtifactRecord(*row[:7], json.loads(row[7] or "{}"))
        return found

    def all_artifacts(self) -> list[ArtifactRecord]:
        rows = self.conn.execute(
            "SELECT input_hash, kind, path, sha256, size, unzipped_size, created, meta FROM artifacts"
            " ORDER BY input_hash"
        )
        return [ArtifactRecord(*row[:7], json.loads(row[7] or "{}")) for row in rows]

    def file_states(self) -> dict[str, tuple[int, int, int, int, str]]:
        """The stat cache: path -> (size, mtime_ns, ctime_ns, inode, digest)."""
        rows = self.conn.execute("SELECT path, size, mtime_ns, ctime_ns, inode, digest FROM file_state")
        return {row[0]: row[1:] for row in rows}

    def last_inputs(self) -> dict[str, tuple[str, dict]]:
        """artifact id -> (input hash, manifest) of its latest build, for explaining rebuilds."""
        rows = self.conn.execute("SELECT artifact_id, input_hash, manifest FROM last_inputs")
        return {row[0]: (row[1], json.loads(row[2])) for row in rows}

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
        return {row[0]: PublishedRecord(row[0], row[1], json.loads(row[2]), row[3]) for row in rows}

    # -- writes (sqlite_utils) ---------------------------------------------------------------

    def record_artifact(self, record: ArtifactRecord, artifact_id: str, manifest: dict) -> None:
        """Record a built artifact whose file is already in place (the diskcache order)."""
        row = record.__dict__ | {"meta": json.dumps(record.meta, sort_keys=True)}
        with self.conn:
            self.db["artifacts"].upsert(row, pk="input_hash")
            self.db["last_inputs"].upsert(
                {
                    "artifact_id": artifact_id,
                    "input_hash": record.input_hash,
                    "manifest": json.dumps(manifest, sort_keys=True),
                    "built": record.created,
                },
                pk="artifact_id",
            )

    def remember_inputs(self, artifact_id: str, input_hash: str, manifest: dict) -> None:
        """Note that `artifact_id` now stands at `input_hash` (e.g. reused from an earlier build)."""
        with self.conn:
            self.db["last_inputs"].upsert(
                {
                    "artifact_id": artifact_id,
                    "input_hash": input_hash,
                    "manifest": json.dumps(manifest, sort_keys=True),
                    "built": utc_now(),
                },
                pk="artifact_id",
            )

    def save_file_states(self, states: dict[str, tuple[int, int, int, int, str]]) -> None:
        if not states:
            return
        rows = [
            {"path": path, "size": s[0], "mtime_ns": s[1], "ctime_ns": s[2], "inode": s[3], "digest": s[4]}
            for path, s in states.items()
        ]
        with self.conn:
            self.db["file_state"].upsert_all(rows, pk="path")

    def save_checked_sources(self, digests: Iterable[str], checker: str) -> None:
        rows = [{"digest": digest, "checker": checker} for digest in digests]
        if rows:
            with self.conn:
                self.db["checked_sources"].upsert_all(rows, pk="digest")

    def forget_artifacts(self, input_hashes: Iterable[str]) -> None:
        with self.conn:
            for input_hash in input_hashes:
                self.conn.execute("DELETE FROM artifacts WHERE input_hash = ?", (input_hash,))

    def record_published(
        self, account: str, region: str, stage: str, resource_id: str, input_hash: str, details: dict
    ) -> None:
        """Record what the publisher confirmed for one resource (call only after the service answered)."""
        with self.conn:
            self.db["published"].upsert(
                {
                    "account": account,
                    "region": region,
                    "stage": stage,
                    "resource_id": resource_id,
                    "input_hash": input_hash,
                    "details": json.dumps(details, sort_keys=True),
                    "published": utc_now(),
                },
                pk=("account", "region", "stage", "resource_id"),
            )
