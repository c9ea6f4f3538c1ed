"""The local store and index: verify/repair, and two builds at once on one repo."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import run_console


def test_verify_reports_and_repairs_a_tampered_artifact(repo):
    artifacts = {a["id"]: a for a in repo.pkg_json("build")["artifacts"]}
    assert repo.pkg_json("cache", "verify") == {"checked": 3, "problems": [], "repaired": [], "ok": True}

    layer = Path(artifacts["lambda/internal_libs"]["path"])
    data = bytearray(layer.read_bytes())
    data[-30] ^= 0xFF  # same size, different bytes
    layer.write_bytes(bytes(data))
    os.unlink(artifacts["lambda/function/ingest"]["path"])
    orphan = repo.cache_dir / "store" / "ff" / ("f" * 32 + ".zip")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"crash leftover")

    result = repo.pkg("cache", "verify")
    assert result.exit_code == 1
    assert "sha256 does not match the index" in result.stdout
    assert "missing" in result.stdout
    assert "orphan file" in result.stdout
    assert "--repair" in result.stderr

    repaired = repo.pkg_json("cache", "verify", "--repair")
    assert len(repaired["problems"]) == 3 and repaired["ok"]
    assert not orphan.exists()
    assert repo.pkg_json("cache", "verify")["problems"] == []
    rebuilt = {a["id"] for a in repo.pkg_json("build")["artifacts"] if a["status"] == "built"}
    assert rebuilt == {"lambda/internal_libs", "lambda/function/ingest"}
    assert repo.pkg_json("cache", "verify") == {"checked": 3, "problems": [], "repaired": [], "ok": True}


def test_index_is_a_real_sqlite_file_with_the_documented_columns(repo):
    repo.pkg_json("build")
    conn = sqlite3.connect(repo.cache_dir / "index.sqlite")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(artifacts)")}
    assert {"input_hash", "path", "sha256", "size", "unzipped_size", "created"} <= columns
    assert conn.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 3


def test_two_builds_at_once_do_not_corrupt_anything(repo):
    for n in range(40):
        repo.write(f"src/lambda/fn_{n:02d}.py", f"def handler(event, context):\n    return {n}\n")
    env = {"PKG_CACHE_DIR": str(repo.cache_dir)}
    pkg = [sys.executable, "-m", "packager", "build", "--json"]
    procs = [
        subprocess.Popen(pkg, cwd=repo.root, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert repo.pkg_json("cache", "verify")["ok"]
    assert repo.pkg_json("cache", "verify")["problems"] == []
    assert repo.pkg_json("build")["summary"] == {"built": 0, "cached": 43}
    leftovers = [p for p in (repo.cache_dir / "store").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_console_script_runs_and_fails_cleanly(repo):
    ok = run_console(["build"], cwd=repo.root, env={"PKG_CACHE_DIR": str(repo.cache_dir)})
    assert ok.returncode == 0, ok.stderr
    repo.write("src/lambda/broken.py", "def handler(:\n")
    bad = run_console(["build"], cwd=repo.root, env={"PKG_CACHE_DIR": str(repo.cache_dir)})
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: src/lambda/broken.py:1: syntax error")
    assert "Traceback" not in bad.stderr
