"""The CLI's promises: fast help, and no boto3 on the build path."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from packager.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="pkg", standalone_mode=False)
except SystemExit:
    pass
print("BOTO3_IMPORTED" if "boto3" in sys.modules or "botocore" in sys.modules else "NO_BOTO3")
"""


def probe(args: list[str], cwd, env=None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_help_and_build_never_import_boto3(repo, monkeypatch):
    monkeypatch.setenv("PKG_CACHE_DIR", str(repo.cache_dir))
    assert probe(["--help"], cwd=repo.root) == "NO_BOTO3"
    assert probe(["build"], cwd=repo.root) == "NO_BOTO3"
    assert probe(["build"], cwd=repo.root) == "NO_BOTO3"  # the no-op path too
    assert probe(["plan"], cwd=repo.root) == "NO_BOTO3"
