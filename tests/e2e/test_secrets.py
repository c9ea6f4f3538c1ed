"""Secrets are never packaged: every credential file the team tried, in any letter case, behind a link
or inside a credentials folder; and a service folder or internal_libs linked outside the repo is refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cache.exclusions import is_secret, is_secret_path
from cache.hashing import walk_tree

# Every file the issue found packaged, and the ones that were already left out.
SECRET_NAMES = (
    ".env",
    ".ENV",
    ".env.local",
    ".Env.Production",
    ".envrc",
    "id_rsa",
    "id_rsa.pub",
    "id_ed25519",
    "deploy.pem",
    "tls.key",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".pgpass",
    "credentials.json",
    "Credentials.JSON",
    "service-account.json",
    "service-account-prod.json",
    "secrets.yaml",
    "secrets.yml",
    "terraform.tfvars",
    "terraform.tfstate",
    "terraform.tfstate.backup",
)
SECRET_PATHS = (".aws/credentials", ".aws/config", ".AWS/credentials", ".docker/config.json", ".ssh/config")
HARMLESS = ("orders.py", "settings.txt", "environment.py", "keys.py", "config.json", "secrets_manager.py")


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_every_listed_name_is_a_secret(name):
    assert is_secret(name)


@pytest.mark.parametrize("path", SECRET_PATHS)
def test_files_in_credential_folders_are_secrets(path):
    assert is_secret_path(path)


@pytest.mark.parametrize("name", HARMLESS)
def test_ordinary_names_are_not_secrets(name):
    assert not is_secret_path(name)


def test_walk_leaves_out_links_whose_target_is_a_secret(tmp_path):
    (tmp_path / ".env").write_text("TOKEN=1")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws/credentials").write_text("[default]")
    (tmp_path / "orders.py").write_text("")
    (tmp_path / "settings.txt").symlink_to(".env")
    (tmp_path / "config.ini").symlink_to(".aws/credentials")
    (tmp_path / "profile").symlink_to(".aws")
    tree = walk_tree(str(tmp_path))
    assert [f.relpath for f in tree.files] == ["orders.py"]
    assert tree.skipped_secrets == [".aws/", ".env", "config.ini", "profile/", "settings.txt"]


def test_build_packages_no_listed_secret_and_warns_for_each(repo):
    clean = repo.pkg_json("build")
    libs = repo.root / "src/lambda/internal_libs"
    for relpath in (*SECRET_NAMES, *SECRET_PATHS):
        path = libs / "secret_dir" / relpath if relpath in (".ENV", ".Env.Production") else libs / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("hunter2")
    (libs / "settings.txt").symlink_to(".env")
    result = repo.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    for shown in (".env", "secret_dir/.ENV", ".envrc", ".aws/", ".docker/", ".ssh/", "settings.txt", "tfstate"):
        assert shown in result.stderr
    layer = next(a for a in result.json["artifacts"] if a["id"] == "lambda/internal_libs")
    before = next(a for a in clean["artifacts"] if a["id"] == "lambda/internal_libs")
    assert layer["input_hash"] == before["input_hash"] and layer["status"] == "cached"
    with zipfile.ZipFile(layer["path"]) as archive:
        assert all(b"hunter2" not in archive.read(name) for name in archive.namelist())


def test_a_handler_linked_to_a_secret_is_refused(repo):
    repo.write("src/lambda/.env", "TOKEN=hunter2\n")
    (repo.root / "src/lambda/leak.py").symlink_to(".env")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda/leak.py:1: symlink to .env, a secret file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_internal_libs_linked_outside_the_repository_is_refused(repo, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "internal_libs").mkdir(parents=True)
    (outside / "internal_libs/leak.py").write_text("SECRET = 1\n")
    libs = repo.root / "src/lambda/internal_libs"
    for child in libs.iterdir():
        child.unlink()
    libs.rmdir()
    libs.symlink_to(outside / "internal_libs")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda/internal_libs:1: symlink to" in result.stderr and "leaves the repository" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (repo.cache_dir / "store").exists()


def test_service_folder_linked_outside_the_repository_is_refused(repo, tmp_path):
    outside = tmp_path / "elsewhere-lambda"
    (repo.root / "src/lambda").rename(outside)
    (repo.root / "src/lambda").symlink_to(outside)
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda:1: symlink to" in result.stderr and "leaves the repository" in result.stderr
    assert not (repo.cache_dir / "store").exists()


def test_internal_libs_linked_inside_the_repository_is_packaged(repo):
    shared = repo.root / "shared_libs"
    (repo.root / "src/lambda/internal_libs").rename(shared)
    (repo.root / "src/lambda/internal_libs").symlink_to(shared)
    layer = next(a for a in repo.pkg_json("build")["artifacts"] if a["id"] == "lambda/internal_libs")
    with zipfile.ZipFile(layer["path"]) as archive:
        assert "python/internal_libs/orders.py" in archive.namelist()


# -- environment values are never stored or printed ------------------------------------------------------

WANTED_VALUE = "tok-hunter2-first"
CHANGED_VALUE = "tok-hunter2-second"
HAND_SET_VALUE = "by-hand-hunter3"


def _index_bytes(cache_dir: Path) -> bytes:
    """Every byte of the local index files (the database and its write-ahead log)."""
    return b"".join(path.read_bytes() for path in sorted(cache_dir.glob("index.sqlite*")))


def test_environment_values_never_reach_the_index_the_shared_index_or_the_plan(tmp_path, aws):
    import boto3
    from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT, make_repo

    repo = make_repo(tmp_path)
    pyproject = PUBLISH_PYPROJECT.replace(
        'project = "datamart"', f'project = "datamart"\ncache_uri = "s3://{ARTIFACT_BUCKET}/team-cache"'
    ).replace('{ STAGE = "dev" }', f'{{ STAGE = "dev", API_TOKEN = "{WANTED_VALUE}" }}')
    repo.write("pyproject.toml", pyproject)
    lam = boto3.client("lambda", region_name=AWS_REGION)
    repo.pkg_json("publish", "--stage", "dev")
    live = lam.get_function(FunctionName="datamart-dev-ingest")["Configuration"]["Environment"]["Variables"]
    assert live == {"STAGE": "dev", "API_TOKEN": WANTED_VALUE}
    assert WANTED_VALUE.encode() not in _index_bytes(repo.cache_dir)
    shared = tmp_path / "shared-index.sqlite"
    boto3.client("s3", region_name=AWS_REGION).download_file(ARTIFACT_BUCKET, "team-cache/index.sqlite", str(shared))
    assert b"API_TOKEN" in shared.read_bytes() and WANTED_VALUE.encode() not in shared.read_bytes()

    # A value set by hand on the live function: drift names the key, never the value.
    lam.update_function_configuration(
        FunctionName="datamart-dev-report",
        Environment={"Variables": {"STAGE": "dev", "API_TOKEN": WANTED_VALUE, "DEBUG_TOKEN": HAND_SET_VALUE}},
    )
    result = repo.pkg("plan", "--stage", "dev", "--refresh", "--json")
    assert result.exit_code == 0, result.stderr
    for value in (WANTED_VALUE, HAND_SET_VALUE):
        assert value not in result.stdout + result.stderr
    assert [d["field"] for d in result.json["drift"]] == ["configuration"]
    repair = [a for a in result.json["actions"] if a["action"] != "skip"]
    assert [(a["name"], a["action"]) for a in repair] == [
        ("datamart-dev-report", "update_function_configuration"),
        ("datamart-dev-report", "publish_version"),  # then its alias moves (docs/releases.md)
    ]
    assert "DEBUG_TOKEN" in repair[0]["reason"]
    assert HAND_SET_VALUE.encode() not in _index_bytes(repo.cache_dir)

    # A changed value is still seen (by its digest) and published.
    repo.write("pyproject.toml", pyproject.replace(WANTED_VALUE, CHANGED_VALUE))
    plan = repo.pkg_json("plan", "--stage", "dev")
    reasons = {a["name"]: a["reason"] for a in plan["actions"] if a["action"] == "update_function_configuration"}
    assert set(reasons) == {"datamart-dev-ingest", "datamart-dev-report"}
    assert "environment API_TOKEN" in reasons["datamart-dev-ingest"]
    repo.pkg_json("publish", "--stage", "dev")
    for function in ("ingest", "report"):
        config = lam.get_function(FunctionName=f"datamart-dev-{function}")["Configuration"]
        assert config["Environment"]["Variables"] == {"STAGE": "dev", "API_TOKEN": CHANGED_VALUE}
    index = _index_bytes(repo.cache_dir)
    assert all(value.encode() not in index for value in (WANTED_VALUE, CHANGED_VALUE, HAND_SET_VALUE))
    assert {a["action"] for a in repo.pkg_json("plan", "--stage", "dev", "--refresh")["actions"]} == {"skip"}
