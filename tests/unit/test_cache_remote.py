"""The shared cache's protocol over an in-memory object store: what a pull downloads (absent index,
unchanged ETag, changed ETag), how a push merges (a union of artifacts, the newest publish record
per resource) and what it does when another writer wins the race (a 412: pull, merge, retry)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Callable

import pytest

from cache.index import ArtifactRecord
from cache.remote import (
    ObjectNotFound,
    ObjectNotModified,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailed,
    SharedArtifactMismatch,
    SharedCache,
    SharedCacheError,
    SharedIndexCorrupt,
    SharedIndexTooLarge,
)
from cache.rows import RowRules
from cache.store import Store

RULES = RowRules({"code": ("store/{hh}/{hash}.zip",)})
URI = "s3://team-bucket/team-cache"
INDEX_KEY = "team-cache/index.sqlite"
ACCOUNT, REGION = "123456789012", "eu-west-1"


class MemoryObjectStore:
    """An ObjectStore in memory with S3's rules: MD5 ETags, 304 on a matching If-None-Match, 412 on a
    failed write condition. It logs every call; `before_put(key)` runs before each write (a test's other writer)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.calls: list[tuple[str, str]] = []
        self.before_put: Callable[[str], None] | None = None
        self.unreachable = False
        self._lock = threading.Lock()

    def get(
        self, bucket: str, key: str, path: str, if_none_match: str | None = None, max_bytes: int | None = None
    ) -> str:
        with self._lock:
            self.calls.append(("get", key))
            if self.unreachable:
                raise ObjectStoreError("Could not connect to the endpoint URL")
            found = self.objects.get((bucket, key))
        if found is None:
            raise ObjectNotFound("An error occurred (NoSuchKey)")
        body, etag = found
        if if_none_match == etag:
            raise ObjectNotModified("An error occurred (304)")
        Path(path).write_bytes(body)
        return etag

    def put(
        self, bucket: str, key: str, path: str, if_match: str | None = None, if_none_match: str | None = None
    ) -> str:
        if self.before_put is not None:
            self.before_put(key)
        body = Path(path).read_bytes()
        with self._lock:
            self.calls.append(("put", key))
            current = self.objects.get((bucket, key))
            if if_none_match == "*" and current is not None:
                raise PreconditionFailed("An error occurred (PreconditionFailed)")
            if if_match is not None and (current is None or current[1] != if_match):
                raise PreconditionFailed("An error occurred (PreconditionFailed)")
            etag = f'"{hashlib.md5(body).hexdigest()}"'
            self.objects[(bucket, key)] = (body, etag)
        return etag

    def puts(self, key: str) -> int:
        return self.calls.count(("put", key))

    def gets(self, key: str) -> int:
        return self.calls.count(("get", key))


class Machine:
    """One machine of the team: a local store and its view of the shared cache."""

    def __init__(self, root: Path, objects: ObjectStore):
        self.store = Store(str(root))
        self.shared = SharedCache(URI, objects, self.store, RULES)

    def build(self, name: str, data: bytes) -> ArtifactRecord:
        input_hash = hashlib.md5(data).hexdigest()  # stands for the input hash: same bytes, same inputs

        def write(tmp: str) -> int:
            Path(tmp).write_bytes(data)
            return len(data)

        record = self.store.put(input_hash, "code", ".zip", write)
        self.store.index.record_artifact(record, f"lambda/function/{name}", {})
        return record

    def publish(self, resource_id: str, record: ArtifactRecord) -> None:
        self.store.index.record_published(ACCOUNT, REGION, "dev", resource_id, record.input_hash, {"of": resource_id})

    def deployed(self, resource_id: str) -> str:
        return self.store.index.published(ACCOUNT, REGION, "dev")[resource_id].input_hash


@pytest.fixture
def objects() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture
def machines(tmp_path, objects):
    made: list[Machine] = []

    def machine(name: str) -> Machine:
        made.append(Machine(tmp_path / name, objects))
        return made[-1]

    yield machine
    for m in made:
        m.store.close()


def shared_index(objects: MemoryObjectStore, tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "shared-copy.sqlite"
    path.write_bytes(objects.objects[("team-bucket", INDEX_KEY)][0])
    return sqlite3.connect(path)


# -- pull ------------------------------------------------------------------------------------


def test_pull_without_a_shared_index_knows_no_shared_artifact(machines, objects):
    laptop = machines("laptop")
    report = laptop.shared.pull()
    assert report.changed and (report.artifacts, report.published) == (0, 0)
    assert laptop.store.index.count_remote_artifacts(URI) == 0
    assert laptop.store.index.shared_etag(URI) is None
    assert objects.calls == [("get", INDEX_KEY)]


def test_pull_of_an_unchanged_index_downloads_nothing(machines, objects):
    ci = machines("ci")
    ci.build("ingest", b"ingest code")
    ci.shared.push()
    laptop = machines("laptop")
    first = laptop.shared.pull()
    assert first.changed and first.artifacts == 1
    second = laptop.shared.pull()  # If-None-Match: the ETag merged last time -> 304
    assert not second.changed and second.artifacts == 0
    assert laptop.store.index.count_remote_artifacts(URI) == 1


def test_pull_after_another_push_takes_the_new_rows(machines, objects):
    ci, laptop = machines("ci"), machines("laptop")
    ci.build("ingest", b"ingest code")
    ci.shared.push()
    laptop.shared.pull()
    etag = laptop.store.index.shared_etag(URI)
    ci.build("report", b"report code")
    ci.shared.push()
    report = laptop.shared.pull()
    assert report.changed and report.artifacts == 2
    assert laptop.store.index.shared_etag(URI) not in (None, etag)


def test_pull_of_a_corrupt_index_raises_and_push_replaces_it(machines, objects, tmp_path):
    objects.objects[("team-bucket", INDEX_KEY)] = (b"garbage, not sqlite", '"bad"')
    laptop = machines("laptop")
    with pytest.raises(SharedIndexCorrupt, match="corrupt or not a pkg index"):
        laptop.shared.pull()
    laptop.build("ingest", b"ingest code")
    report = laptop.shared.push()
    assert report.warnings == [
        "the shared index is corrupt or not a pkg index (file is not a database); replacing it with the rows of"
        " this machine"
    ]
    assert shared_index(objects, tmp_path).execute("SELECT count(*) FROM artifacts").fetchone()[0] == 1


def test_an_unreachable_store_is_a_shared_cache_error(machines, objects):
    objects.unreachable = True
    with pytest.raises(SharedCacheError, match=f"shared cache {URI} unavailable: Could not connect"):
        machines("laptop").shared.pull()


# -- fetch -----------------------------------------------------------------------------------


def test_download_puts_a_verified_file_in_the_local_store(machines, objects):
    ci, laptop = machines("ci"), machines("laptop")
    built = ci.build("ingest", b"ingest code")
    ci.shared.push()
    laptop.shared.pull()
    remote = laptop.store.index.remote_artifacts(URI, [built.input_hash])[built.input_hash]
    laptop.shared.fetch(remote)
    assert Path(laptop.store.abspath(remote.path)).read_bytes() == b"ingest code"
    assert laptop.store.index.artifacts([built.input_hash]) == {built.input_hash: built}


def test_a_tampered_object_is_rejected_and_leaves_nothing(machines, objects):
    ci, laptop = machines("ci"), machines("laptop")
    built = ci.build("ingest", b"ingest code")
    ci.shared.push()
    key = f"team-cache/{built.path}"
    objects.objects[("team-bucket", key)] = (b"not what was built", '"other"')
    with pytest.raises(SharedArtifactMismatch, match="does not match its index row"):
        laptop.shared.download(built)
    assert not Path(laptop.store.abspath(built.path)).exists()
    assert list(Path(laptop.store.store_dir).rglob("*.tmp-*")) == []


# -- push ------------------------------------------------------------------------------------


def test_first_push_creates_the_index_only_if_none_exists(machines, objects, tmp_path):
    ci = machines("ci")
    built = ci.build("ingest", b"ingest code")
    report = ci.shared.push()
    assert report.uploaded == [f"team-cache/{built.path}"] and report.rows_added == 1 and report.attempts == 1
    assert objects.objects[("team-bucket", f"team-cache/{built.path}")][0] == b"ingest code"
    rows = shared_index(objects, tmp_path).execute("SELECT input_hash FROM artifacts").fetchall()
    assert rows == [(built.input_hash,)]
    assert ci.store.index.shared_etag(URI) == objects.objects[("team-bucket", INDEX_KEY)][1]


def test_a_push_with_nothing_new_writes_nothing(machines, objects):
    ci = machines("ci")
    ci.build("ingest", b"ingest code")
    ci.shared.push()
    objects.calls.clear()
    report = ci.shared.push()
    assert report.uploaded == [] and report.rows_added == 0
    assert [call for call in objects.calls if call[0] == "put"] == []


def test_pushes_merge_a_union_of_artifacts_and_the_newest_publish_record(machines, objects, tmp_path):
    ci, laptop = machines("ci"), machines("laptop")
    old = ci.build("ingest", b"ingest v1")
    ci.publish("lambda/function/ingest", old)
    ci.shared.push()
    new = laptop.build("ingest", b"ingest v2")
    laptop.build("report", b"report")
    laptop.publish("lambda/function/ingest", new)  # later than CI's record
    laptop.shared.push()
    ci.shared.push()  # CI's older record does not win back

    conn = shared_index(objects, tmp_path)
    assert len(conn.execute("SELECT input_hash FROM artifacts").fetchall()) == 3
    deployed = conn.execute("SELECT input_hash FROM published WHERE resource_id = 'lambda/function/ingest'")
    assert deployed.fetchall() == [(new.input_hash,)]
    ci.shared.pull()
    assert ci.deployed("lambda/function/ingest") == new.input_hash  # the later write, by the order pushes landed


def test_a_412_on_push_pulls_merges_and_retries_losing_no_row(machines, objects, tmp_path):
    first, second = machines("first"), machines("second")
    first.build("ingest", b"ingest code")
    first.shared.push()
    mine = second.build("report", b"report code")
    theirs = first.build("other", b"other code")

    def another_writer_wins(key: str) -> None:
        if key == INDEX_KEY:
            objects.before_put = None  # once
            first.shared.push()  # between our download of the index and our conditional write

    objects.before_put = another_writer_wins
    report = second.shared.push()
    assert report.attempts == 2 and report.rows_added == 1
    assert objects.puts(INDEX_KEY) == 4  # first's 2 pushes, second's refused write, its retry
    hashes = {row[0] for row in shared_index(objects, tmp_path).execute("SELECT input_hash FROM artifacts")}
    assert {mine.input_hash, theirs.input_hash} <= hashes and len(hashes) == 3
    assert second.store.index.count_remote_artifacts(URI) == 3  # what it merged is what it now knows


def test_an_object_already_uploaded_by_someone_else_is_not_uploaded_again(machines, objects):
    first, second = machines("first"), machines("second")
    first.build("ingest", b"same bytes")
    second.build("ingest", b"same bytes")  # same input hash on another machine
    first.shared.push()
    second.shared.pull()
    report = second.shared.push()
    assert report.uploaded == [] and report.rows_added == 0


def test_a_row_is_shared_only_with_its_file(machines, objects, tmp_path):
    ci = machines("ci")
    built = ci.build("ingest", b"ingest code")
    Path(ci.store.abspath(built.path)).unlink()
    report = ci.shared.push()
    assert report.uploaded == [] and report.rows_added == 0
    assert shared_index(objects, tmp_path).execute("SELECT count(*) FROM artifacts").fetchone()[0] == 0
    assert report.warnings == []


def test_a_file_overwritten_with_same_size_bytes_is_not_shared(machines, objects, tmp_path):
    ci = machines("ci")
    built = ci.build("ingest", b"ingest code")
    Path(ci.store.abspath(built.path)).write_bytes(b"other bytes")  # same size as b"ingest code"
    report = ci.shared.push()
    assert report.uploaded == [] and report.rows_added == 0
    assert report.warnings == [
        f"local artifact {built.path} does not match its index row; not shared (run `pkg cache verify --repair`)"
    ]
    assert not any(key.startswith("team-cache/store/") for _bucket, key in objects.objects)


def test_an_index_over_the_cap_is_refused_even_by_a_store_that_ignores_max_bytes(machines, objects, tmp_path):
    objects.objects[("team-bucket", INDEX_KEY)] = (b"x" * 5000, '"big"')
    laptop = machines("laptop")
    laptop.shared.max_index_bytes = 4096
    with pytest.raises(SharedIndexTooLarge) as raised:
        laptop.shared.pull()
    assert raised.value.limit == 4096
    with pytest.raises(SharedIndexTooLarge):
        laptop.shared.push()
    assert objects.puts(INDEX_KEY) == 0
