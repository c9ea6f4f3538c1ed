"""Collecting the shared cache's garbage over an in-memory object store: what goes, what stays, in
what order, and what happens when another writer gets to the index first."""

from __future__ import annotations

import pytest
from test_cache_remote import INDEX_KEY, Machine, MemoryObjectStore, shared_index

from cache.remote import SharedCacheError, StoredObject

NOW = 2_000_000_000.0
BUCKET = "team-bucket"


class ListingObjectStore(MemoryObjectStore):
    """MemoryObjectStore that also lists and deletes; every object is old unless `modified` says otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.modified: dict[str, float] = {}

    def list(self, bucket: str, prefix: str):
        self.calls.append(("list", prefix))
        for (found_bucket, key), (body, etag) in sorted(self.objects.items()):
            if found_bucket == bucket and key.startswith(prefix):
                yield StoredObject(key, len(body), self.modified.get(key, 0.0), etag)

    def delete(self, bucket: str, key: str) -> None:
        self.calls.append(("delete", key))
        self.objects.pop((bucket, key), None)


@pytest.fixture
def objects() -> ListingObjectStore:
    return ListingObjectStore()


@pytest.fixture
def machines(tmp_path, objects):
    made: list[Machine] = []

    def machine(name: str) -> Machine:
        made.append(Machine(tmp_path / name, objects))
        return made[-1]

    yield machine
    for m in made:
        m.store.close()


def uses(*hashes: str):
    return lambda artifacts, published: set(hashes)


def test_only_unused_old_artifacts_go_and_their_rows_go_first(machines, objects, tmp_path):
    ci = machines("ci")
    kept, unused, young = ci.build("a", b"kept"), ci.build("b", b"unused"), ci.build("c", b"young")
    ci.shared.push()
    objects.modified[f"team-cache/{young.path}"] = NOW - 60
    objects.calls.clear()

    report = ci.shared.collect_garbage(objects, uses(kept.input_hash), grace=3600, now=NOW)

    assert [obj.key for obj in report.deleted] == [f"team-cache/{unused.path}"]
    assert (report.in_use, report.young, report.ignored, report.rows_removed) == (1, 1, 1, 1)
    writes = [call for call in objects.calls if call[0] in ("put", "delete")]
    assert writes == [("put", INDEX_KEY), ("delete", f"team-cache/{unused.path}")]  # rows first, then the object
    rows = {row[0] for row in shared_index(objects, tmp_path).execute("SELECT input_hash FROM artifacts")}
    assert rows == {kept.input_hash, young.input_hash}
    assert ci.store.index.count_remote_artifacts("s3://team-bucket/team-cache") == 2


def test_a_dry_run_writes_and_deletes_nothing(machines, objects):
    ci = machines("ci")
    ci.build("a", b"unused")
    ci.shared.push()
    objects.calls.clear()

    report = ci.shared.collect_garbage(objects, uses(), grace=0, dry_run=True, now=NOW)

    assert len(report.deleted) == 1 and report.dry_run
    assert [call for call in objects.calls if call[0] in ("put", "delete")] == []


def test_keys_outside_the_prefix_or_pkgs_layout_are_never_touched(machines, objects, tmp_path):
    ci = machines("ci")
    ci.shared.push()
    strangers = [
        "team-cache/store/zz/" + "a" * 32 + ".zip",  # hh does not match the hash
        "team-cache/store/aa/" + "a" * 32 + ".exe",
        "team-cache/../store/aa/" + "a" * 32 + ".zip",
        "team-cache-other/store/aa/" + "a" * 32 + ".zip",
        "elsewhere/store/aa/" + "a" * 32 + ".zip",
    ]
    body = tmp_path / "body"
    body.write_bytes(b"x")
    for key in strangers:
        objects.put(BUCKET, key, str(body))

    report = ci.shared.collect_garbage(objects, uses(), grace=0, now=NOW)

    assert report.deleted == [] and all((BUCKET, key) in objects.objects for key in strangers)


def test_a_row_whose_object_is_gone_is_dropped(machines, objects, tmp_path):
    ci = machines("ci")
    lost = ci.build("a", b"lost")
    ci.shared.push()
    del objects.objects[(BUCKET, f"team-cache/{lost.path}")]

    report = ci.shared.collect_garbage(objects, uses(lost.input_hash), grace=0, now=NOW)

    assert report.deleted == [] and report.rows_removed == 1
    assert shared_index(objects, tmp_path).execute("SELECT count(*) FROM artifacts").fetchone()[0] == 0


def test_another_writer_first_means_looking_again_and_its_new_artifact_stays(machines, objects, tmp_path):
    ci, laptop = machines("ci"), machines("laptop")
    unused = ci.build("a", b"unused")
    ci.shared.push()
    theirs = laptop.build("b", b"theirs")

    def laptop_pushes_first(key: str) -> None:
        if key == INDEX_KEY:
            objects.before_put = None
            laptop.shared.push()
            objects.modified[f"team-cache/{theirs.path}"] = NOW  # just uploaded

    objects.before_put = laptop_pushes_first
    report = ci.shared.collect_garbage(objects, uses(), grace=3600, now=NOW)

    assert report.attempts == 2 and [obj.key for obj in report.deleted] == [f"team-cache/{unused.path}"]
    rows = {row[0] for row in shared_index(objects, tmp_path).execute("SELECT input_hash FROM artifacts")}
    assert rows == {theirs.input_hash} and (BUCKET, f"team-cache/{theirs.path}") in objects.objects


def test_an_unreachable_store_is_a_shared_cache_error(machines, objects):
    ci = machines("ci")
    ci.shared.push()
    objects.unreachable = True
    with pytest.raises(SharedCacheError):
        ci.shared.collect_garbage(objects, uses(), grace=0, now=NOW)
