"""cache/prune.py: which entries go (least recently used first), and that rows go before files."""

from __future__ import annotations

import os
import time

from cache.index import ArtifactRecord
from cache.prune import PruneEntry, choose, remove, store_leftovers
from cache.store import USE_RESOLUTION_SECONDS, Store

NOW = 1_800_000_000.0
DAY = 86400


def entry(name: str, size: int, days_ago: float) -> PruneEntry:
    return PruneEntry(name, (), (), size, NOW - days_ago * DAY)


def test_older_than_takes_every_stale_entry_and_nothing_fresher():
    entries = [entry("a", 10, 40), entry("b", 10, 31), entry("c", 10, 29)]
    assert [e.relpath for e in choose(entries, 0, 30 * DAY, None, NOW)] == ["a", "b"]


def test_max_size_takes_the_least_recently_used_until_the_rest_fits():
    entries = [entry("new", 10, 1), entry("old", 10, 9), entry("mid", 10, 5)]
    # 25 bytes must stay whatever happens (what the tree needs): 55 in all, at most 40 allowed.
    assert [e.relpath for e in choose(entries, 25, None, 40, NOW)] == ["old", "mid"]
    assert choose(entries, 0, None, 30, NOW) == []
    assert len(choose(entries, 100, None, 0, NOW)) == 3  # what is needed alone is too big: all the rest goes


def test_rows_go_with_their_files_and_leftovers_wait_out_their_grace(tmp_path):
    store = Store(str(tmp_path))
    record = store.put("ab" * 16, "lambda-layer", ".zip", lambda path: open(path, "wb").write(b"zip") or 3)
    store.index.add_artifacts([record])
    leftover = tmp_path / "store" / "cd" / ("cd" * 16 + ".zip")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"crash")
    assert store_leftovers(store, {record.path}, time.time()) == []  # just written: maybe a build's, not yet recorded
    os.utime(leftover, (NOW - 2 * DAY, NOW - 2 * DAY))
    found = store_leftovers(store, {record.path}, NOW)
    assert [e.relpath for e in found] == [f"store/cd/{'cd' * 16}.zip"]

    freed = remove(
        store, [PruneEntry(record.path, (store.abspath(record.path),), (record.input_hash,), 3, 0.0), *found]
    )

    assert freed == 3 + 5 and not leftover.exists() and not os.path.exists(store.abspath(record.path))
    assert store.index.all_artifacts() == []
    store.close()


def test_use_moves_an_old_mtime_to_now_but_leaves_a_recent_one(tmp_path):
    store = Store(str(tmp_path))
    record: ArtifactRecord = store.put(
        "ef" * 16, "lambda-layer", ".zip", lambda path: open(path, "wb").write(b"z") or 1
    )
    path = store.abspath(record.path)
    recent = os.path.getmtime(path) - USE_RESOLUTION_SECONDS / 2
    os.utime(path, (recent, recent))
    assert store.use(record) and os.path.getmtime(path) == recent  # within the resolution: nothing written
    os.utime(path, (1_000_000, 1_000_000))
    assert store.use(record) and os.path.getmtime(path) > 1_000_000
    store.close()
