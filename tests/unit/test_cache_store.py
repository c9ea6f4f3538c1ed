"""The local store, diskcache-style: a file is in place before its row, a failed write leaves
nothing, `verify` finds every kind of disagreement between rows and files, and any write to the
index starts a new generation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cache.generation import read_generation
from cache.index import ArtifactRecord
from cache.store import Store, sha256_file, verify

HASH_A = "a" * 32
HASH_B = "b" * 32


def writer(data: bytes):
    """A `Store.put` writer that writes `data` and reports it as its unzipped size."""

    def write(tmp: str) -> int:
        Path(tmp).write_bytes(data)
        return len(data) * 2

    return write


def put(store: Store, input_hash: str, data: bytes) -> ArtifactRecord:
    record = store.put(input_hash, "code", ".zip", writer(data))
    store.index.record_artifact(record, f"lambda/function/{input_hash[:4]}", {"files": []})
    return record


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "cache"))
    yield store
    store.close()


def files_under(folder: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, names in os.walk(folder) for f in names)


def test_put_places_the_file_then_the_row_describes_it(store):
    record = put(store, HASH_A, b"zip bytes")
    assert record.path == f"store/aa/{HASH_A}.zip"
    assert Path(store.abspath(record.path)).read_bytes() == b"zip bytes"
    assert (record.size, record.unzipped_size, record.sha256) == (9, 18, sha256_file(store.abspath(record.path)))
    assert store.index.artifacts([HASH_A]) == {HASH_A: record}
    assert store.has_file(record)


def test_a_writer_that_raises_leaves_no_file_and_no_row(store):
    def broken(tmp: str) -> int:
        Path(tmp).write_bytes(b"half a zip")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.put(HASH_A, "code", ".zip", broken)
    assert files_under(store.store_dir) == []  # not the file, not its temporary
    assert store.index.all_artifacts() == []


def test_put_replaces_a_file_whole(store):
    put(store, HASH_A, b"first")
    record = put(store, HASH_A, b"second, longer")
    assert Path(store.abspath(record.path)).read_bytes() == b"second, longer"
    assert files_under(store.store_dir) == [f"aa/{HASH_A}.zip"]


def test_verify_passes_a_consistent_store(store):
    put(store, HASH_A, b"one")
    put(store, HASH_B, b"two")
    report = verify(store)
    assert (report.checked, report.problems, report.ok) == (2, [], True)


def test_verify_finds_missing_wrong_size_wrong_sha256_and_orphans(store):
    missing = put(store, HASH_A, b"one")
    os.unlink(store.abspath(missing.path))
    resized = put(store, HASH_B, b"two")
    Path(store.abspath(resized.path)).write_bytes(b"two and more")
    tampered = put(store, "c" * 32, b"three")
    Path(store.abspath(tampered.path)).write_bytes(b"THREE")  # same size, other bytes
    orphan = Path(store.store_dir) / "dd" / ("d" * 32 + ".zip")
    orphan.parent.mkdir()
    orphan.write_bytes(b"a crash leftover")

    report = verify(store)
    assert report.checked == 3 and not report.ok
    assert report.problems == [
        f"{missing.path}: missing (row {HASH_A[:12]})",
        f"{resized.path}: size 12 != recorded 3",
        f"{tampered.path}: sha256 does not match the index",
        f"store/dd/{'d' * 32}.zip: orphan file (no index row)",
    ]
    assert report.repaired == [] and orphan.exists()  # without --repair nothing changes


def test_verify_repair_drops_bad_rows_and_deletes_bad_files(store):
    good = put(store, HASH_A, b"one")
    bad = put(store, HASH_B, b"two")
    Path(store.abspath(bad.path)).write_bytes(b"TWO")
    orphan = Path(store.store_dir) / "dd" / ("d" * 32 + ".zip")
    orphan.parent.mkdir()
    orphan.write_bytes(b"leftover")

    report = verify(store, repair=True)
    assert report.ok and len(report.repaired) == len(report.problems) == 2
    assert [r.input_hash for r in store.index.all_artifacts()] == [good.input_hash]
    assert files_under(store.store_dir) == [f"aa/{HASH_A}.zip"]
    assert verify(store).problems == []


def test_verify_leaves_a_fresh_temporary_file_to_the_build_writing_it(store):
    put(store, HASH_A, b"one")
    tmp = Path(store.store_dir) / "bb" / f".{HASH_B}.zip.tmp-123-abcd"
    tmp.parent.mkdir()
    tmp.write_bytes(b"being written")
    assert verify(store, repair=True).problems == []
    assert tmp.exists()
    old = tmp.stat().st_mtime - 2 * 3600
    os.utime(tmp, (old, old))  # a build that died long ago
    report = verify(store, repair=True)
    assert report.problems == [f"store/bb/{tmp.name}: orphan file (no index row)"] and not tmp.exists()


def test_a_write_starts_a_new_generation_and_a_read_does_not(tmp_path):
    index_path = str(tmp_path / "cache" / "index.sqlite")
    store = Store(str(tmp_path / "cache"))
    put(store, HASH_A, b"one")
    store.close()
    first = read_generation(index_path)
    assert first

    reader = Store(str(tmp_path / "cache"))
    assert verify(reader).ok  # reads only
    reader.close()
    assert read_generation(index_path) == first

    later = Store(str(tmp_path / "cache"))
    later.index.save_checked_sources(["f" * 32], "handler")
    assert read_generation(index_path) == first  # committed, but the connection is still open
    later.close()
    assert read_generation(index_path) not in (None, first)
