"""pkg gc --shared against a moto server: what no stage records nor the current tree use goes, once
older than the grace period; nothing outside pkg's layout under the prefix is touched."""

from __future__ import annotations

from conftest import ARTIFACT_BUCKET, PUBLISH_PYPROJECT, make_repo
from test_shared_cache import CACHE_URI, PREFIX, clone, s3, shared_index_rows, shared_repo


def keys() -> set[str]:
    return {o["Key"] for o in s3().list_objects_v2(Bucket=ARTIFACT_BUCKET).get("Contents", [])}


def lib_key(report: dict) -> str:
    layer = {a["id"]: a for a in report["artifacts"]}["lambda/internal_libs"]
    return f"{PREFIX}/store/{layer['input_hash'][:2]}/{layer['input_hash']}.zip"


def test_gc_shared_keeps_what_stages_and_the_tree_use_and_respects_the_grace_period(tmp_path, aws):
    repo = make_repo(tmp_path)
    repo.write("pyproject.toml", PUBLISH_PYPROJECT.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "{CACHE_URI}"\n'))
    repo.write("src/lambda/internal_libs/version.py", "VERSION = 0\n")
    unused = lib_key(repo.pkg_json("build"))
    repo.write("src/lambda/internal_libs/version.py", "VERSION = 1\n")
    published = lib_key(repo.pkg_json("publish", "--stage", "dev"))
    repo.write("src/lambda/internal_libs/version.py", "VERSION = 2\n")
    current = lib_key(repo.pkg_json("build"))
    foreign = {
        f"{PREFIX}/notes.txt",
        f"{PREFIX}/store/zz/not-an-artifact.zip",
        "elsewhere/store/aa/" + "a" * 32 + ".zip",
    }
    for key in foreign:
        s3().put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=b"not pkg's")

    fresh = repo.pkg_json("gc", "--shared")  # default grace: everything here is minutes old
    assert fresh["summary"]["deleted"] == 0 and fresh["summary"]["young"] == 1
    dry = repo.pkg_json("gc", "--shared", "--grace", "0s", "--dry-run")
    assert [d["key"] for d in dry["deleted"]] == [unused] and unused in keys()

    report = repo.pkg_json("gc", "--shared", "--grace", "0s")

    assert [d["key"] for d in report["deleted"]] == [unused]
    assert report["summary"]["rows_removed"] == 1 and report["summary"]["ignored"] >= 3
    left = keys()
    assert unused not in left and {published, current} <= left and foreign <= left
    assert unused.rsplit("/", 1)[-1][:32] not in shared_index_rows(tmp_path)
    assert repo.pkg_json("gc", "--shared", "--grace", "0s")["summary"]["deleted"] == 0


def test_an_object_gone_from_the_shared_cache_is_built_again_and_uploaded_again(tmp_path, aws):
    first = shared_repo(tmp_path)
    key = lib_key(first.pkg_json("build"))
    s3().delete_object(Bucket=ARTIFACT_BUCKET, Key=key)  # its row stays: a machine still believes in it

    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")

    assert result.exit_code == 0 and "is gone" in result.stderr
    assert result.json["summary"] == {"built": 1, "cached": 2}
    assert key in keys()  # the verified rebuild went back up
    third = clone(first, tmp_path, "third")
    assert third.pkg_json("build")["summary"] == {"built": 0, "cached": 3}
