"""The no-op fast path of `pkg build`: answered from the last report only when nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import make_repo

from cache.exclusions import EXCLUDED_DIRS
from cache.index import Index
from packager.builders.noop import answer, fingerprint, requirement_includes

PROBE = """
import sys
from packager.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pkg", standalone_mode=False)
except SystemExit:
    pass
print("SLOW" if "packager.builders.builder" in sys.modules else "FAST", file=sys.stderr)
"""


def build(repo, *args: str) -> tuple[str, dict]:
    """`pkg build --json` in a fresh interpreter: which path answered, and the report."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "build", "--json", *args],
        cwd=repo.root,
        env={**os.environ, "PKG_CACHE_DIR": str(repo.cache_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1], json.loads(result.stdout)


AGED_TESTS = 6  # the tests below that take `aged`


@pytest.fixture(scope="module")
def aged_repos(tmp_path_factory) -> list:
    """Repos made together, then older than the racy-timestamp window (ctimes can't be set back, so
    time has to pass): one wait serves every test of the module on this worker."""
    repos = []
    for _ in range(AGED_TESTS):
        repo = make_repo(tmp_path_factory.mktemp("aged"))
        repo.write("src/lambda/internal_libs/.env", "SECRET=1\n")  # a warning the fast path must repeat
        repos.append(repo)
    time.sleep(2.1)
    return repos


@pytest.fixture
def aged(aged_repos):
    """A repo whose files are older than the racy-timestamp window, built once."""
    assert aged_repos, "more tests take `aged` than AGED_TESTS"
    repo = aged_repos.pop()
    path, report = build(repo)
    assert path == "SLOW" and report["summary"]["built"] == 3
    return repo


def test_second_build_answers_from_the_report_without_loading_the_builder(aged):
    path, report = build(aged)
    assert path == "FAST"
    assert report["summary"] == {"built": 0, "cached": 3}
    os.unlink(aged.cache_dir / "last-build.json")
    slow_path, slow = build(aged)
    assert slow_path == "SLOW"
    assert slow == report


def test_fast_path_repeats_warnings(aged):
    result = aged.pkg("build")
    assert "left out of the artifact" in result.stderr and "0 built, 3 cached" in result.stdout


def test_an_edit_a_new_file_or_a_setting_goes_the_slow_way(aged):
    aged.write("src/lambda/report.py", "def handler(event, context):\n    return 2\n")
    path, report = build(aged)
    assert path == "SLOW" and [a["id"] for a in report["artifacts"] if a["status"] == "built"] == [
        "lambda/function/report"
    ]
    aged.write("src/lambda/internal_libs/more.py", "X = 1\n")
    path, report = build(aged)
    assert path == "SLOW" and report["summary"]["built"] == 1
    pyproject = aged.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('runtime = "python3.12"', 'runtime = "python3.11"'))
    path, report = build(aged)
    assert path == "SLOW" and report["summary"]["built"] == 2  # both functions: their runtime changed


def test_a_missing_artifact_or_index_goes_the_slow_way(aged):
    _, report = build(aged)
    os.unlink(report["artifacts"][1]["path"])
    path, again = build(aged)
    assert path == "SLOW" and again["summary"]["built"] == 1
    assert build(aged)[0] == "FAST"  # the sources are as old as before: the new answer holds
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        if (aged.cache_dir / name).exists():
            os.unlink(aged.cache_dir / name)
    path, rebuilt = build(aged)
    assert path == "SLOW" and rebuilt["summary"]["built"] == 3


def test_any_index_write_voids_the_answer(aged):
    assert answer(str(aged.root), str(aged.cache_dir)) is not None
    aged.pkg_json("cache", "verify", "--repair")  # reads only: the answer stays
    assert answer(str(aged.root), str(aged.cache_dir)) is not None
    aged.pkg_json("build", "--force")  # writes rows
    assert answer(str(aged.root), str(aged.cache_dir)) is None
    assert build(aged)[0] == "SLOW"


def test_a_write_from_another_process_voids_the_answer(aged):
    index = Index(str(aged.cache_dir / "index.sqlite"))
    index.save_checked_sources(["0" * 32], "another-process")
    assert answer(str(aged.root), str(aged.cache_dir)) is not None  # not committed to a generation yet
    index.close()
    assert answer(str(aged.root), str(aged.cache_dir)) is None
    assert build(aged)[0] == "SLOW"


def test_an_edit_in_a_folder_hashing_skips_keeps_the_answer(tmp_path):
    repo = make_repo(tmp_path)
    for folder in ("__pycache__", ".git"):
        repo.write(f"src/lambda/internal_libs/{folder}/state", "1\n")
    time.sleep(2.1)
    assert build(repo)[0] == "SLOW"
    for folder in ("__pycache__", ".git"):
        repo.write(f"src/lambda/internal_libs/{folder}/state", "2, and longer\n")
        repo.write(f"src/lambda/internal_libs/{folder}/new", "new\n")
    assert build(repo)[0] == "FAST"
    repo.write("src/lambda/internal_libs/orders.py", "X = 2\n")
    path, report = build(repo)
    assert path == "SLOW" and report["summary"]["built"] == 1


@pytest.mark.parametrize("folder", sorted(EXCLUDED_DIRS))
def test_the_fingerprint_skips_every_folder_hashing_skips(tmp_path, folder):
    repo = make_repo(tmp_path)
    repo.write(f"src/lambda/internal_libs/{folder}/state", "1\n")
    before = fingerprint(str(repo.root), [])[0]
    repo.write(f"src/lambda/internal_libs/{folder}/state", "2, and longer\n")  # an edit hashing never sees ...
    repo.write(f"src/lambda/internal_libs/{folder}/new", "new\n")
    assert fingerprint(str(repo.root), [])[0] == before  # ... is no edit for the answer either
    repo.write("src/lambda/internal_libs/orders.py", "X = 2\n")
    assert fingerprint(str(repo.root), [])[0] != before


def test_requirement_includes_outside_src_are_inputs(tmp_path):
    repo = make_repo(tmp_path)
    repo.write("constraints/base.txt", "-c ../constraints/pins.txt\n")
    repo.write("constraints/pins.txt", "six==1.16.0\n")
    repo.write("src/lambda/internal_libs/requirements.txt", "-r ../../../constraints/base.txt\n")
    assert requirement_includes(str(repo.root)) == ["constraints/base.txt", "constraints/pins.txt"]


def test_an_edit_inside_a_linked_folder_goes_the_slow_way(tmp_path):
    repo = make_repo(tmp_path)
    repo.write("src/lambda/internal_libs/real/__init__.py", "X = 1\n")
    (repo.root / "src/lambda/internal_libs/alias").symlink_to("real")
    time.sleep(2.1)
    assert build(repo)[0] == "SLOW"
    assert build(repo)[0] == "FAST"
    (repo.root / "src/lambda/internal_libs/real/__init__.py").write_text("X = 2\n")
    path, report = build(repo)
    assert path == "SLOW" and report["summary"]["built"] == 1
