"""pkg cache prune: what the current tree doesn't need goes, least recently used first; what it needs stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import LIB_ORDERS

DAY = 86400


def store_files(repo) -> set[str]:
    store = repo.cache_dir / "store"
    return {str(path.relative_to(repo.cache_dir)) for path in store.rglob("*") if path.is_file()}


def age(paths, days: float) -> None:
    """Make files look last used `days` ago."""
    when = time.time() - days * DAY
    for path in paths:
        os.utime(path, (when, when))


def test_prune_keeps_what_the_tree_needs_and_the_next_build_is_a_no_op(repo):
    first = {a["id"]: a for a in repo.pkg_json("build")["artifacts"]}
    repo.write("src/lambda/internal_libs/orders.py", "def parse(record):\n    return record\n")
    second = {a["id"]: a for a in repo.pkg_json("build")["artifacts"]}
    old_lib = Path(first["lambda/internal_libs"]["path"])
    assert old_lib != Path(second["lambda/internal_libs"]["path"]) and old_lib.exists()
    age([repo.cache_dir / f for f in store_files(repo)], 40)  # everything, the tree's own files too

    dry = repo.pkg_json("cache", "prune", "--older-than", "30d", "--dry-run")
    assert [entry["path"] for entry in dry["removed"]] == [str(old_lib.relative_to(repo.cache_dir))]
    assert dry["summary"]["dry_run"] and old_lib.exists()

    report = repo.pkg_json("cache", "prune", "--older-than", "30d")
    assert report["summary"]["removed"] == 1 and report["summary"]["needed"] == 3
    assert not old_lib.exists()
    assert all(Path(a["path"]).exists() for a in second.values())
    assert repo.pkg_json("build")["summary"] == {"built": 0, "cached": 3}
    assert repo.pkg_json("cache", "verify")["ok"]  # no row names the pruned file

    # The old input again: its row went with its file, so it is simply built again.
    repo.write("src/lambda/internal_libs/orders.py", LIB_ORDERS)
    rebuilt = repo.pkg_json("build")
    assert {a["id"] for a in rebuilt["artifacts"] if a["status"] == "built"} == {"lambda/internal_libs"}


def test_max_size_removes_the_least_recently_used_first_and_never_what_is_needed(repo):
    repo.pkg_json("build")
    made = []
    for n in range(3):
        repo.write("src/lambda/internal_libs/version.py", f"VERSION = {n}\n")
        made.append(Path({a["id"]: a for a in repo.pkg_json("build")["artifacts"]}["lambda/internal_libs"]["path"]))
    for days, path in zip((5, 9, 1), made, strict=True):  # the newest input is the tree's; the others are not
        age([path], days)
    unneeded = made[1].stat().st_size

    report = repo.pkg_json("cache", "prune", "--max-size", "0")

    assert not made[0].exists() and not made[1].exists() and made[2].exists()
    assert report["removed"][0]["path"].endswith(made[1].name)  # used 9 days ago: first
    assert report["summary"]["freed"] >= unneeded
    assert repo.pkg_json("build")["summary"]["built"] == 0


def test_a_bad_size_is_a_usage_error(repo):
    result = repo.pkg("cache", "prune", "--max-size", "lots")
    assert result.exit_code == 2 and "is not a size" in result.stderr


def test_an_old_dependency_install_goes_and_the_current_one_stays(tmp_path, wheelhouse):
    from test_deps import deps_repo

    repo = deps_repo(tmp_path, wheelhouse, functions=("ingest",))
    repo.write("src/lambda/ingest.requirements.txt", "tinylib==1.0\n")
    repo.pkg_json("build")
    deps = repo.cache_dir / "deps"
    (old_set,) = [path for path in deps.iterdir() if not path.name.startswith(".")]
    repo.write("src/lambda/ingest.requirements.txt", "tinylib==1.1\n")
    repo.pkg_json("build")
    (new_set,) = [path for path in deps.iterdir() if path != old_set and not path.name.startswith(".")]
    age([p for p in repo.cache_dir.rglob("*") if p.is_file()], 40)

    report = repo.pkg_json("cache", "prune", "--older-than", "30d")

    removed = {entry["path"] for entry in report["removed"]}
    assert f"deps/{old_set.name}/" in removed and not old_set.exists()
    assert new_set.exists() and report["summary"]["needed"] == 4  # internal_libs, a chunk, its install, ingest
    second = repo.pkg("build", "--json")
    assert "installing" not in second.stderr and second.json["summary"]["built"] == 0
    repo.write("src/lambda/ingest.requirements.txt", "tinylib==1.0\n")  # back: installed and built again
    again = repo.pkg("build", "--json")
    assert again.exit_code == 0 and "installing" in again.stderr
