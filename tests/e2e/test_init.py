"""From an empty folder, as a new user: install the built wheel, `pkg init`, build, publish, invoke.

Everything runs with the `pkg` the wheel installed into a fresh virtualenv, never this checkout's
code. Offline: the wheel is built without build isolation, installed without its dependencies, and
the fresh venv finds them in this test run's site-packages through a .pth file (a directory named
in a .pth line is only added to sys.path: its own .pth files, such as an editable install of this
checkout, are not followed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import boto3
import pytest
from conftest import AWS_REGION, REPO_ROOT

from packager import DISTRIBUTION, __version__

# What the wheel is built from: the packaging configuration and the two import packages.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "packager", "cache")


def run(command: list, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def installed_pkg(tmp_path: Path) -> Path:
    """The `pkg` executable of a fresh virtualenv with the built wheel installed in it."""
    sources = tmp_path / "sources"  # a copy: the build writes build/ and *.egg-info beside its sources
    sources.mkdir()
    for name in WHEEL_SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, sources / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO_ROOT / name, sources / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--no-cache-dir"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "dist", "."], sources, env)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], tmp_path, env)
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env)
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(site_packages.stdout.strip()) / "pkg_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")

    imported = run([python, "-c", "import packager, cache; print(packager.__file__, cache.__file__)"], tmp_path, env)
    assert all(path.startswith(str(venv)) for path in imported.stdout.split()), imported.stdout
    return venv / "bin" / "pkg"


def test_from_an_empty_folder_to_a_published_and_invoked_function(installed_pkg, tmp_path, aws):
    folder = tmp_path / "datamart"  # the project name comes from the folder: the bucket and role aws made
    folder.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "PKG_CACHE_DIR")}

    def pkg(*args: str) -> subprocess.CompletedProcess:
        return run([installed_pkg, *args], folder, env)

    assert pkg("--version").stdout.strip() == f"pkg {__version__} ({DISTRIBUTION})"
    made = pkg("init")
    assert "project: datamart (the folder's name" in made.stdout
    assert (folder / ".gitignore").read_text().startswith("# pkg's local cache")
    assert ".pkg/" in (folder / ".gitignore").read_text().splitlines()

    built = json.loads(pkg("build", "--json").stdout)
    assert {artifact["id"] for artifact in built["artifacts"]} >= {
        "lambda/function/hello",
        "lambda/internal_libs",
        "glue_python_shell/job/count_words",
        "glue_spark/job/copy_table",
        "emr/job/count_rows",
    }

    published = json.loads(pkg("publish", "--stage", "dev", "--json").stdout)
    assert published["stage"] == "dev" and published["summary"]["mutating_calls"] > 0
    assert {action["status"] for action in published["actions"] if action["action"] != "skip"} == {"done"}
    function = boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName="datamart-dev-hello")
    assert function["Configuration"]["Environment"]["Variables"] == {"STAGE": "dev"}
    glue = boto3.client("glue", region_name=AWS_REGION)
    assert glue.get_job(JobName="datamart-dev-count_words")["Job"]["Command"]["Name"] == "pythonshell"
    assert glue.get_job(JobName="datamart-dev-copy_table")["Job"]["Command"]["Name"] == "glueetl"
    again = json.loads(pkg("publish", "--stage", "dev", "--json").stdout)
    assert again["summary"]["mutating_calls"] == 0  # nothing changed: nothing published

    (folder / "event.json").write_text('{"name": "pkg"}')
    invoked = json.loads(pkg("invoke", "lambda/hello", "--event", "event.json", "--json").stdout)
    assert invoked["result"] == {"message": "hello, pkg"}
