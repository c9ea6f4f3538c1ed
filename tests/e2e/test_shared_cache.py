"""The shared S3 cache against a moto server: a second machine reuses everything, writers lose no
row, and nothing downloaded is trusted."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT, PYPROJECT, Repo, make_repo

PREFIX = "team-cache"
CACHE_URI = f"s3://{ARTIFACT_BUCKET}/{PREFIX}"


def shared_repo(base: Path, name: str = "repo", functions=("ingest", "report")) -> Repo:
    repo = make_repo(base, functions=functions, name=name)
    with_cache = PYPROJECT.replace('project = "datamart"', f'project = "datamart"\ncache_uri = "{CACHE_URI}"')
    repo.write("pyproject.toml", with_cache)
    return repo


def clone(repo: Repo, base: Path, name: str) -> Repo:
    """Another machine: the same sources at another path, with its own empty local cache."""
    shutil.copytree(repo.root, base / name, ignore=shutil.ignore_patterns(".pkg"))
    return Repo(base / name, base / f"{name}-cache")


def s3():
    return boto3.client("s3", region_name=AWS_REGION)


def shared_index_rows(tmp_path: Path) -> list[str]:
    path = tmp_path / "downloaded-index.sqlite"
    s3().download_file(ARTIFACT_BUCKET, f"{PREFIX}/index.sqlite", str(path))
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT input_hash FROM artifacts")]


def statuses(report: dict) -> dict[str, str]:
    return {a["id"]: a["status"] for a in report["artifacts"]}


def test_second_machine_fetches_everything_and_builds_nothing(tmp_path, aws):
    first = shared_repo(tmp_path)
    built = first.pkg_json("build")
    assert built["summary"] == {"built": 3, "cached": 0}
    assert sorted(shared_index_rows(tmp_path)) == sorted(a["input_hash"] for a in built["artifacts"])

    second = clone(first, tmp_path, "second")
    aws.reset_calls()
    report = second.pkg_json("build")
    assert report["summary"] == {"built": 0, "cached": 3}
    assert aws.mutating_calls() == []  # fetched, nothing pushed back
    mine = {a["id"]: a for a in report["artifacts"]}
    for artifact in built["artifacts"]:
        assert Path(mine[artifact["id"]]["path"]).read_bytes() == Path(artifact["path"]).read_bytes()
    assert second.pkg_json("cache", "verify")["ok"]
    plan = second.pkg_json("plan")
    assert {a["action"] for a in plan["artifacts"]} == {"cached"}


def test_noop_build_touches_neither_s3_nor_boto3(tmp_path, aws):
    repo = shared_repo(tmp_path)
    repo.pkg_json("build")
    aws.reset_calls()
    assert repo.pkg_json("build")["summary"]["built"] == 0
    assert aws.calls() == []


def test_tampered_shared_artifact_is_rejected_and_rebuilt(tmp_path, aws):
    first = shared_repo(tmp_path)
    layer = {a["id"]: a for a in first.pkg_json("build")["artifacts"]}["lambda/internal_libs"]
    key = f"{PREFIX}/store/{layer['input_hash'][:2]}/{layer['input_hash']}.zip"
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=b"not the layer you built")

    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "does not match" in result.stderr and "rebuilding it locally" in result.stderr
    assert statuses(result.json) == {
        "lambda/internal_libs": "built",
        "lambda/function/ingest": "cached",
        "lambda/function/report": "cached",
    }
    rebuilt = {a["id"]: a for a in result.json["artifacts"]}["lambda/internal_libs"]
    assert rebuilt["sha256"] == layer["sha256"]
    assert second.pkg_json("cache", "verify")["ok"]


def test_corrupt_shared_index_does_not_break_a_build_and_is_replaced(tmp_path, aws):
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=f"{PREFIX}/index.sqlite", Body=b"garbage, not sqlite")
    repo = shared_repo(tmp_path)
    result = repo.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["summary"]["built"] == 3
    assert "corrupt" in result.stderr
    assert len(shared_index_rows(tmp_path)) == 3  # the push replaced it with this machine's rows


def test_unreachable_shared_cache_is_a_warning(tmp_path, aws, monkeypatch):
    repo = shared_repo(tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    result = repo.pkg("build", "--json")
    assert result.exit_code == 0
    assert result.json["summary"]["built"] == 3
    assert "going on with the local cache only" in result.stderr
    assert "run `pkg cache push` later" in result.stderr


def test_no_shared_cache_flag_and_explicit_push_pull_status(tmp_path, aws):
    repo = shared_repo(tmp_path)
    repo.pkg_json("build", "--no-shared-cache")
    aws.reset_calls()
    assert aws.calls() == []
    status = repo.pkg_json("cache", "status")
    assert status == {"uri": CACHE_URI, "local": 3, "shared": 0, "local_only": 3}
    pushed = repo.pkg_json("cache", "push")
    assert len(pushed["uploaded"]) == 3 and pushed["rows_added"] == 3
    assert repo.pkg_json("cache", "status")["local_only"] == 0
    again = repo.pkg_json("cache", "push")
    assert again["uploaded"] == [] and again["rows_added"] == 0

    other = clone(repo, tmp_path, "other")
    pulled = other.pkg_json("cache", "pull")
    assert pulled["artifacts"] == 3 and pulled["changed"]
    assert other.pkg_json("cache", "pull")["changed"] is False  # ETag unchanged: nothing downloaded


def test_cache_commands_without_a_shared_cache_say_how_to_configure_one(repo):
    result = repo.pkg("cache", "pull")
    assert result.exit_code == 1
    assert "no shared cache configured" in result.stderr and "cache_uri" in result.stderr


def test_concurrent_pushes_lose_no_row(tmp_path, aws):
    machines = []
    expected = set()
    for n in range(6):
        repo = shared_repo(tmp_path, name=f"m{n}", functions=[f"fn_{n}_{k}" for k in range(3)])
        report = repo.pkg_json("build", "--no-shared-cache")
        expected |= {a["input_hash"] for a in report["artifacts"]}
        machines.append(repo)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "packager", "cache", "push", "--json"],
            cwd=repo.root,
            env={**env, "PKG_CACHE_DIR": str(repo.cache_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for repo in machines
    ]
    attempts = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        attempts.append(__import__("json").loads(out)["attempts"])
    rows = shared_index_rows(tmp_path)
    assert len(rows) == len(set(rows)) == len(expected)  # 6 machines x 3 functions + one shared layer
    assert set(rows) == expected
    assert len(expected) == 6 * 3 + 1


def test_warm_shared_cache_spares_a_fresh_machine_the_dependency_install(tmp_path, aws, wheelhouse):
    first = shared_repo(tmp_path)
    first.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")
    with (first.root / "pyproject.toml").open("a") as stream:
        stream.write(f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n')
    built = first.pkg("build", "--json")
    assert built.exit_code == 0, built.stderr
    assert "installing" in built.stderr
    deps = {a["id"]: a for a in built.json["artifacts"] if a["id"].startswith("lambda/internal_libs_deps/")}
    assert deps

    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "installing" not in result.stderr
    assert result.json["summary"]["built"] == 0
    mine = {a["id"]: a for a in result.json["artifacts"]}
    for artifact_id, artifact in deps.items():
        assert mine[artifact_id]["sha256"] == artifact["sha256"]
    again = second.pkg("build", "--json")  # the install tree is absent here, yet nothing is reinstalled
    assert "installing" not in again.stderr and again.json["summary"]["built"] == 0


def test_ci_fresh_clone_with_warm_shared_cache_builds_and_publishes_nothing(tmp_path, aws):
    first = make_repo(tmp_path)
    first.write("pyproject.toml", PUBLISH_PYPROJECT.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "{CACHE_URI}"\n'))
    published = first.pkg_json("publish", "--stage", "dev")
    assert published["summary"]["mutating_calls"] > 0

    runner = clone(first, tmp_path, "ci-runner")
    aws.reset_calls()
    plan = runner.pkg_json("plan", "--stage", "dev")
    assert plan["summary"]["mutating_calls"] == 0
    report = runner.pkg_json("publish", "--stage", "dev")
    assert report["summary"]["built"] == 0
    assert report["summary"]["mutating_calls"] == 0
    assert aws.mutating_calls() == []

    runner.write("src/lambda/report.py", "def handler(event, context):\n    return 'changed in CI'\n")
    changed = runner.pkg_json("publish", "--stage", "dev")
    assert changed["summary"]["built"] == 1
    steps = {a["action"] for a in changed["actions"] if a["action"] != "skip"}
    assert steps == {"update_function_code", "publish_version"}
    # ...and the first machine learns it from the shared cache: nothing left to publish there either.
    first.write("src/lambda/report.py", "def handler(event, context):\n    return 'changed in CI'\n")
    assert first.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_a_fetched_artifact_replaces_a_stale_local_row(tmp_path, aws):
    first = shared_repo(tmp_path)
    layer = {a["id"]: a for a in first.pkg_json("build")["artifacts"]}["lambda/internal_libs"]
    second = clone(first, tmp_path, "second")
    second.pkg_json("build", "--no-shared-cache")
    conn = sqlite3.connect(second.cache_dir / "index.sqlite")
    with conn:  # a row that no longer matches anything, and its file gone
        conn.execute("UPDATE artifacts SET sha256 = 'stale' WHERE input_hash = ?", (layer["input_hash"],))
    conn.close()
    os.unlink(second.cache_dir / "store" / layer["input_hash"][:2] / f"{layer['input_hash']}.zip")
    report = {a["id"]: a for a in second.pkg_json("build")["artifacts"]}
    assert report["lambda/internal_libs"]["status"] == "cached"  # fetched, not rebuilt
    assert report["lambda/internal_libs"]["sha256"] == layer["sha256"]
    assert second.pkg_json("cache", "verify")["problems"] == []
