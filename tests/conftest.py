"""Shared fixtures: a small pipelines repo in a temp dir, and `pkg` run on it as a user would."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from packager.cli import cli
from wheelhouse import build_wheelhouse

REPO_ROOT = Path(__file__).resolve().parent.parent
E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "network: needs PyPI; skipped when it can't be reached (deselect: -m 'not network')"
    )


def pytest_collection_modifyitems(config, items):
    """Mark every test under tests/e2e as `e2e`: `-m "not e2e"` is the fast loop (tests/unit)."""
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


PYPROJECT = """\
[project]
name = "pipelines"
version = "0.0.0"

[tool.pkg]
project = "datamart"

[tool.pkg.lambda]
runtime = "python3.12"
architecture = "x86_64"
"""

LIB_ORDERS = '''\
def parse(record):
    return {"id": record["id"], "amount": float(record["amount"])}
'''

HANDLER = '''\
from internal_libs.orders import parse


def handler(event, context):
    return [parse(r) for r in event.get("records", [])]
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@dataclass
class PkgResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


class Repo:
    """A pipelines repository under a temp dir, with its own cache folder."""

    def __init__(self, root: Path, cache_dir: Path):
        self.root = root
        self.cache_dir = cache_dir

    def write(self, relpath: str, text: str) -> Path:
        return write(self.root / relpath, text)

    def pkg(self, *args: str, cwd: Path | None = None, env: dict | None = None) -> PkgResult:
        """Run `pkg ARGS` in-process from `cwd` (default: the repo root), as the console script would."""
        runner = CliRunner()
        old = os.getcwd()
        os.chdir(cwd or self.root)
        try:
            result = runner.invoke(
                cli, list(args), env={"PKG_CACHE_DIR": str(self.cache_dir), **(env or {})}, catch_exceptions=False
            )
        finally:
            os.chdir(old)
        return PkgResult(result.exit_code, result.stdout, result.stderr)

    def pkg_json(self, *args: str, **kwargs) -> dict:
        result = self.pkg(*args, "--json", **kwargs)
        assert result.exit_code == 0, result.stderr + result.stdout
        return result.json


def make_repo(base: Path, functions=("ingest", "report"), name: str = "repo") -> Repo:
    root = base / name
    write(root / "pyproject.toml", PYPROJECT)
    write(root / "src/lambda/internal_libs/__init__.py", "")
    write(root / "src/lambda/internal_libs/orders.py", LIB_ORDERS)
    for function in functions:
        write(root / f"src/lambda/{function}.py", HANDLER)
    return Repo(root, base / f"{name}-cache")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A two-function repo sharing internal_libs, with an empty cache."""
    return make_repo(tmp_path)


def run_console(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `pkg` console script in a subprocess (for what in-process runs can't show)."""
    pkg = shutil.which("pkg", path=os.path.dirname(sys.executable)) or "pkg"
    return subprocess.run(
        [pkg, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300
    )


# -- a local AWS endpoint (moto server) for the publish tests ----------------------------------

AWS_ACCOUNT = "123456789012"  # moto's account
AWS_REGION = "us-east-1"
LAMBDA_ROLE = f"arn:aws:iam::{AWS_ACCOUNT}:role/datamart-lambda"
ARTIFACT_BUCKET = "datamart-artifacts"


@pytest.fixture(scope="session")
def moto_server():
    """One wrapped moto server per test process (each xdist worker gets its own), on a free port."""
    from moto_server import MotoServer

    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch, tmp_path):
    """boto3 pointed at a freshly reset moto server with dummy credentials, the role and the bucket made."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    import boto3

    boto3.client("iam", region_name=AWS_REGION).create_role(
        RoleName="datamart-lambda", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}'
    )
    boto3.client("s3", region_name=AWS_REGION).create_bucket(Bucket=ARTIFACT_BUCKET)
    moto_server.reset_calls()
    return moto_server


class DevEnvs:
    """A machine without conda: PATH holds only this interpreter's folder, the system's and `bin`.

    `create_env` makes a real env folder (conda-meta/ and bin/python) where micromamba would put it;
    `add_tool` puts an executable script on PATH (a stand-in for micromamba or conda themselves).
    """

    def __init__(self, base: Path, monkeypatch: pytest.MonkeyPatch):
        self.bin = base / "bin"
        self.root_prefix = base / "mamba"
        self.bin.mkdir(parents=True)
        (base / "home").mkdir()
        self.environ = {
            "PATH": os.pathsep.join([str(self.bin), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
            "MAMBA_ROOT_PREFIX": str(self.root_prefix),
            "HOME": str(base / "home"),
        }
        for name in ("MAMBA_EXE", "CONDA_EXE", "CONDA_ENVS_PATH", "CONDA_PREFIX", "PKG_ROOT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in self.environ.items():
            monkeypatch.setenv(name, value)

    def create_env(self, name: str) -> str:
        prefix = self.root_prefix / "envs" / name
        (prefix / "conda-meta").mkdir(parents=True)
        (prefix / "bin").mkdir()
        (prefix / "bin" / "python").symlink_to(sys.executable)
        return str(prefix / "bin" / "python")

    def add_tool(self, name: str, script: str) -> Path:
        path = self.bin / name
        path.write_text(textwrap.dedent(script))
        path.chmod(0o755)
        return path


@pytest.fixture
def no_conda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DevEnvs:
    """No micromamba/conda on this machine and no env created (see DevEnvs)."""
    return DevEnvs(tmp_path / "machine", monkeypatch)


# -- shared by the dependency, publish, shared-cache and gc tests ----------------------------------

def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test session's temp folder: shared by its xdist workers, never by another session."""
    base = tmp_path_factory.getbasetemp()
    # An xdist worker's basetemp is SESSION/popen-gwN; without xdist, the parent would be every
    # session's (/tmp/pytest-of-USER), where a run of another checkout would find these wheels.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """The wheels of tests/wheelhouse.py, written once for all test processes of the session."""
    shared = session_dir(tmp_path_factory)
    folder = shared / "wheelhouse"
    with open(shared / "wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build_wheelhouse(folder)
            (folder / "done").write_text("")
    return folder


@pytest.fixture(autouse=True)
def uv_cache(tmp_path_factory, monkeypatch):
    """uv's cache inside the session's temp folder: the big generated wheels don't pile up in ~/.cache."""
    monkeypatch.setenv("UV_CACHE_DIR", str(session_dir(tmp_path_factory) / "uv-cache"))


PUBLISH_PYPROJECT = f"""\
[project]
name = "pipelines"
version = "0.0.0"

[tool.pkg]
project = "datamart"
artifact_bucket = "{ARTIFACT_BUCKET}"

[tool.pkg.lambda]
runtime = "python3.12"
architecture = "x86_64"
role = "{LAMBDA_ROLE}"
tags = {{ team = "data" }}

[tool.pkg.lambda.functions.ingest]
memory = 1024

[tool.pkg.stages.dev]
region = "{AWS_REGION}"
account = "123456789012"

[tool.pkg.stages.dev.lambda]
environment = {{ STAGE = "dev" }}
"""


@pytest.fixture
def project(tmp_path, aws):
    """A two-function repo sharing internal_libs, configured for stage dev, and the moto server."""
    repo = make_repo(tmp_path)
    repo.write("pyproject.toml", PUBLISH_PYPROJECT)
    return repo


# `python -m packager ARGS` as a terminal starts it: Ctrl-C raises KeyboardInterrupt in the main thread
# whatever this test run inherited (a shell's background jobs get SIGINT ignored). The child also writes a
# line to the pipe whose fd is its first argument when it does: the test goes on once the interrupt arrived.
INTERRUPTIBLE_PKG = """
import os, runpy, signal, sys

announce_fd = int(sys.argv.pop(1))


def interrupted(signum, frame):
    os.write(announce_fd, b"SIGINT\\n")
    signal.default_int_handler(signum, frame)


signal.signal(signal.SIGINT, interrupted)
runpy.run_module("packager", run_name="__main__", alter_sys=True)
"""


def start_pkg(project, command: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """A pkg process in the project's root with its cache folder, its stdout and stderr piped as text."""
    return subprocess.Popen(
        command,
        cwd=project.root,
        env={**os.environ, "PKG_CACHE_DIR": str(project.cache_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=pass_fds,
    )


def interrupt_publish(project, aws, *args: str, before_interrupt=None) -> subprocess.CompletedProcess:
    """`pkg publish --stage dev -j 1 ARGS` as a terminal runs it, Ctrl-C pressed while its CreateFunction is held.

    The held call returns after the interrupt arrived (so what AWS confirmed must be recorded);
    `before_interrupt` runs while it is held. Returns the finished process with its stdout and stderr.
    """
    aws.inject("CreateFunction", "hang_after")
    announced, announce_fd = os.pipe()
    command = [sys.executable, "-c", INTERRUPTIBLE_PKG, str(announce_fd), "publish", "--stage", "dev", "-j", "1", *args]
    process = start_pkg(project, command, pass_fds=(announce_fd,))
    os.close(announce_fd)
    announcements = os.fdopen(announced, "rb")
    try:
        aws.wait_held("CreateFunction")
        if before_interrupt:
            before_interrupt()
        process.send_signal(signal.SIGINT)
        assert announcements.readline() == b"SIGINT\n"  # pkg's main thread has its KeyboardInterrupt
        aws.release()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        announcements.close()
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
