"""The SQLite index: an index made by an older schema version opens and upgrades in place, and the
merge rules the shared cache relies on (artifacts: a union where the first row stays; publish
records: the newest per resource wins)."""

from __future__ import annotations

import json
import sqlite3

from cache.index import SCHEMA_VERSION, ArtifactRecord, Index

# The tables of schema version 2, as that version created them (version 3 added the shared cache's two).
SCHEMA_2 = """
CREATE TABLE [artifacts] ([input_hash] TEXT PRIMARY KEY, [kind] TEXT, [path] TEXT, [sha256] TEXT,
    [size] INTEGER, [unzipped_size] INTEGER, [created] TEXT, [meta] TEXT);
CREATE TABLE [file_state] ([path] TEXT PRIMARY KEY, [size] INTEGER, [mtime_ns] INTEGER, [ctime_ns] INTEGER,
    [inode] INTEGER, [digest] TEXT);
CREATE TABLE [last_inputs] ([artifact_id] TEXT PRIMARY KEY, [input_hash] TEXT, [manifest] TEXT, [built] TEXT);
CREATE TABLE [checked_sources] ([digest] TEXT PRIMARY KEY, [checker] TEXT);
CREATE TABLE [published] ([account] TEXT, [region] TEXT, [stage] TEXT, [resource_id] TEXT, [input_hash] TEXT,
    [details] TEXT, [published] TEXT, PRIMARY KEY ([account], [region], [stage], [resource_id]));
PRAGMA user_version = 2;
"""


def record(input_hash: str, sha256: str = "0" * 64) -> ArtifactRecord:
    path = f"store/{input_hash[:2]}/{input_hash}.zip"
    return ArtifactRecord(input_hash, "code", path, sha256, 10, 20, "2026-01-01T00:00:00.000000+00:00", {})


def published_row(resource_id: str, input_hash: str, when: str, stage: str = "dev") -> dict:
    return {
        "account": "123456789012",
        "region": "eu-west-1",
        "stage": stage,
        "resource_id": resource_id,
        "input_hash": input_hash,
        "details": json.dumps({"version": input_hash[:4]}),
        "published": when,
    }


def test_an_index_of_the_previous_schema_opens_and_upgrades_keeping_its_rows(tmp_path):
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_2)
    conn.execute(
        "INSERT INTO artifacts VALUES (?, 'code', 'store/aa/a.zip', ?, 10, 20, '2025-01-01T00:00:00+00:00', '{}')",
        ("a" * 32, "0" * 64),
    )
    conn.execute(
        "INSERT INTO published VALUES ('123456789012', 'eu-west-1', 'dev', 'lambda/function/x', ?, '{}', 'then')",
        ("a" * 32,),
    )
    conn.commit()
    conn.close()

    index = Index(str(path))
    assert index.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r.input_hash for r in index.all_artifacts()] == ["a" * 32]
    assert set(index.published("123456789012", "eu-west-1", "dev")) == {"lambda/function/x"}
    assert index.shared_etag("s3://bucket/team") is None  # the new tables are there, empty
    index.replace_remote_artifacts("s3://bucket/team", [record("b" * 32)], '"etag-1"')
    assert index.shared_etag("s3://bucket/team") == '"etag-1"'
    index.close()


def test_opening_a_current_index_changes_nothing(tmp_path):
    index = Index(str(tmp_path / "index.sqlite"))
    index.add_artifacts([record("a" * 32)])
    index.close()
    again = Index(str(tmp_path / "index.sqlite"))
    assert again.conn.total_changes == 0 and [r.input_hash for r in again.all_artifacts()] == ["a" * 32]
    again.close()


def test_artifacts_merge_as_a_union_where_the_first_row_stays(tmp_path):
    index = Index(str(tmp_path / "index.sqlite"))
    assert index.add_artifacts([record("a" * 32, sha256="1" * 64), record("b" * 32)]) == 2
    assert index.add_artifacts([record("a" * 32, sha256="2" * 64), record("c" * 32)]) == 1
    rows = {r.input_hash: r.sha256 for r in index.all_artifacts()}
    assert rows == {"a" * 32: "1" * 64, "b" * 32: "0" * 64, "c" * 32: "0" * 64}
    # A file just put in place (fetched from the shared cache) replaces the row that described another.
    assert index.add_artifacts([record("a" * 32, sha256="2" * 64)], replace=True) == 1
    assert index.artifacts(["a" * 32])["a" * 32].sha256 == "2" * 64
    index.close()


def test_publish_records_merge_three_way_by_write_order_never_by_timestamp(tmp_path):
    index = Index(str(tmp_path / "index.sqlite"))
    uri = "s3://bucket/cache"
    old, future = "2026-01-01T00:00:00.000001+00:00", "2999-01-01T00:00:00+00:00"
    # Nothing local: the shared record is taken.
    assert index.sync_published(uri, [published_row("lambda/function/x", "a" * 32, old)]) == 1
    # The shared index changed it since, this machine did not: the later write is taken.
    assert index.sync_published(uri, [published_row("lambda/function/x", "b" * 32, old)]) == 1
    # This machine publishes; a shared record stamped far in the future does not replace it.
    index.record_published("123456789012", "eu-west-1", "dev", "lambda/function/x", "c" * 32, {"version": "cccc"})
    assert [row["input_hash"] for row in index.changed_published(uri)] == ["c" * 32]
    assert index.sync_published(uri, [published_row("lambda/function/x", "d" * 32, future)]) == 0
    assert index.published("123456789012", "eu-west-1", "dev")["lambda/function/x"].input_hash == "c" * 32
    assert index.sync_published(uri, [published_row("lambda/function/x", "d" * 32, old, stage="prod")]) == 1
    assert index.published("123456789012", "eu-west-1", "prod")["lambda/function/x"].input_hash == "d" * 32
    index.close()


def test_upgrading_from_schema_3_forgets_the_unchecked_shared_rows(tmp_path):
    path = str(tmp_path / "index.sqlite")
    index = Index(path)
    index.add_artifacts([record("a" * 32)])
    index.replace_remote_artifacts("s3://bucket/team", [record("b" * 32)], '"etag-1"')
    index.conn.execute("DROP TABLE remote_published")
    index.conn.execute("PRAGMA user_version = 3")
    index.conn.commit()
    index.close()

    again = Index(path)
    assert again.shared_etag("s3://bucket/team") is None  # the next pull downloads and checks every row
    assert again.remote_artifacts("s3://bucket/team", ["b" * 32]) == {}
    assert [r.input_hash for r in again.all_artifacts()] == ["a" * 32]  # local rows stay
    again.close()
