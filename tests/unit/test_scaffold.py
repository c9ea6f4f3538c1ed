"""`pkg init`: a new pipelines repository from the shipped templates; it never overwrites anything.

The end-to-end run of a new repository (installed wheel, init, build, publish, invoke) is
tests/e2e/test_init.py.
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import Repo

from packager import DISTRIBUTION, __version__
from packager.cli import cli
from packager.config import load_config
from packager.errors import ConfigError

EXPECTED = {
    ".devcontainer/Dockerfile",
    ".devcontainer/Dockerfile.dockerignore",
    ".devcontainer/devcontainer.json",
    ".devcontainer/pipelines.code-workspace",
    ".github/workflows/deploy.yml",
    ".gitignore",
    "envs/emr.yml",
    "envs/glue_python_shell.yml",
    "envs/glue_spark.yml",
    "envs/lambda.yml",
    "pyproject.toml",
    "src/emr/.vscode/settings.json",
    "src/emr/count_rows.py",
    "src/glue_python_shell/.vscode/settings.json",
    "src/glue_python_shell/count_words.py",
    "src/glue_spark/.vscode/settings.json",
    "src/glue_spark/copy_table.py",
    "src/lambda/.vscode/settings.json",
    "src/lambda/hello.py",
    "src/lambda/internal_libs/__init__.py",
    "src/lambda/internal_libs/greetings.py",
    "src/lambda/internal_libs/requirements.txt",
}


def folder(tmp_path: Path, name: str = "datamart") -> Repo:
    (tmp_path / name).mkdir()
    return Repo(tmp_path / name, tmp_path / "cache")


def files_under(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_init_writes_a_repository_named_after_its_folder(tmp_path):
    repo = folder(tmp_path)

    made = repo.pkg("init")

    assert made.exit_code == 0, made.stderr
    assert made.stdout.startswith("project: datamart (the folder's name; `pkg init --project NAME` sets another)")
    assert set(files_under(repo.root)) == EXPECTED
    settings = tomllib.loads((repo.root / "pyproject.toml").read_text())["tool"]["pkg"]
    assert (settings["project"], settings["artifact_bucket"]) == ("datamart", "datamart-artifacts")
    assert settings["lambda"]["role"] == "arn:aws:iam::123456789012:role/datamart-lambda"
    assert ".pkg/" in (repo.root / ".gitignore").read_text().splitlines()
    # The env files are what `pkg env write` renders from the new tree.
    assert repo.pkg("env", "write", "--check").exit_code == 0


def test_the_new_workflow_and_dev_container_install_this_pkg_and_run_valid_commands(tmp_path):
    repo = folder(tmp_path)
    repo.pkg("init")
    stages = tomllib.loads((repo.root / "pyproject.toml").read_text())["tool"]["pkg"]["stages"]
    workflow = yaml.safe_load((repo.root / ".github/workflows/deploy.yml").read_text())
    runs = [
        line.strip()
        for job in workflow["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
    ]

    assert f"pip install '{DISTRIBUTION}[fast]=={__version__}'" in runs
    assert f"'{DISTRIBUTION}[fast]=={__version__}'" in (repo.root / ".devcontainer/Dockerfile").read_text()
    commands = [shlex.split(line.split(">")[0])[1:] for line in runs if line.startswith("pkg ")]
    assert [command[0] for command in commands] == ["plan", "publish", "gc"]
    for args in commands:
        # --help after the real arguments: click parses and validates them all, then stops.
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert args[args.index("--stage") + 1] in stages


def test_project_option_sets_the_name_and_json_reports_it(tmp_path):
    repo = folder(tmp_path, "work")

    report = repo.pkg_json("init", "pipelines", "--project", "Sales_Data")

    assert report == {
        "root": str(repo.root / "pipelines"),
        "project": "Sales_Data",
        "project_from": "--project",
        "written": sorted(EXPECTED),
    }
    settings = tomllib.loads((repo.root / "pipelines/pyproject.toml").read_text())["tool"]["pkg"]
    assert settings["artifact_bucket"] == "sales-data-artifacts"  # S3 takes no '_' and no capitals


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path):
    repo = folder(tmp_path)
    repo.write(".gitignore", "mine\n")
    repo.write("src/lambda/hello.py", "def handler(event, context):\n    return 'mine'\n")
    before = files_under(repo.root)

    refused = repo.pkg("init")

    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 2 of the files pkg init writes already exist in ")
    assert ".gitignore, src/lambda/hello.py" in refused.stderr and "never overwrites" in refused.stderr
    assert files_under(repo.root) == before
    assert not (repo.root / "src/lambda/internal_libs").exists()

    report = repo.pkg("init", "--json").json
    assert report["type"] == "InitError" and report["existing"] == [".gitignore", "src/lambda/hello.py"]


def test_a_file_where_a_folder_goes_is_in_the_way_too(tmp_path):
    repo = folder(tmp_path)
    repo.write("envs", "not a folder\n")

    refused = repo.pkg("init", "--json")

    assert refused.exit_code == 1
    services = ("emr", "glue_python_shell", "glue_spark", "lambda")
    assert refused.json["existing"] == [f"envs/{service}.yml" for service in services]
    assert set(files_under(repo.root)) == {"envs"}


@pytest.mark.parametrize(
    ("name", "args", "message", "hint"),
    [
        ("my pipelines", (), "the folder name 'my pipelines' can't start an AWS name", "--project NAME"),
        ("x", ("--project", "a.b"), "--project 'a.b' can't start an AWS name", "--project NAME"),
        ("x", ("--project", "p" * 50), "is too long", "shorter --project NAME"),
    ],
)
def test_init_checks_the_project_name_before_writing(tmp_path, name, args, message, hint):
    repo = folder(tmp_path, name)

    refused = repo.pkg("init", *args, "--json")

    assert refused.exit_code == 1
    assert message in refused.json["error"] and hint in refused.json["hint"]
    assert not list(repo.root.iterdir())


def test_a_repository_without_a_project_name_is_told_to_set_one(tmp_path):
    repo = folder(tmp_path)
    repo.pkg("init")
    pyproject = repo.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('project = "datamart"\n', ""))

    with pytest.raises(ConfigError, match=r"\[tool.pkg\] has no project name"):
        _ = load_config(str(repo.root)).project
    assert repo.pkg("build").exit_code == 0  # building names nothing in AWS
    failed = repo.pkg("plan", "--stage", "dev", "--json")  # found before any AWS call
    assert failed.exit_code == 1
    assert failed.json["type"] == "ConfigError" and "pkg init" in failed.json["hint"]


def test_version_names_the_distribution(tmp_path):
    # The program's name is `pkg` from the console script (tests/e2e/test_init.py), `cli` in process.
    assert folder(tmp_path).pkg("--version").stdout.endswith(f" {__version__} ({DISTRIBUTION})\n")
