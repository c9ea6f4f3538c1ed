"""The dev environments: env files agree with the runtime table, the dev container's references
resolve, and `pkg env` lists, renders, creates and runs envs (without conda on this machine)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Repo, make_repo
from packager.config import JOB_DEFAULTS, LAMBDA_DEFAULTS
from packager.discover import SERVICES, discover_service
from packager.envs import env_file, rendered_files, repo_envs, requirements_files, stale_files
from packager.runtimes import DEV_ENVS, LAMBDA_RUNTIMES, job_runtime

DEVCONTAINER = REPO_ROOT / ".devcontainer"


def load_env_file(path: Path) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(path.read_text())


# -- the env files and the table ---------------------------------------------------------------


def test_every_service_has_exactly_one_env_and_the_tool_has_its_own():
    served = [service for env in DEV_ENVS.values() for service in env.services]
    assert sorted(served) == sorted(SERVICES)
    assert DEV_ENVS["pkg"].services == ()


def test_the_table_follows_each_services_default_runtime():
    lambda_python = LAMBDA_RUNTIMES[LAMBDA_DEFAULTS["runtime"]].python
    assert DEV_ENVS["lambda"].python == lambda_python == "3.12"
    shell = job_runtime("glue_python_shell", JOB_DEFAULTS["glue_python_shell"]["glue_version"])
    assert DEV_ENVS["glue_python_shell"].python == shell.pythons[0] == "3.9"
    spark = job_runtime("glue_spark", JOB_DEFAULTS["glue_spark"]["glue_version"])
    assert DEV_ENVS["glue_spark"].python == spark.pythons[0] == "3.11"
    assert f"pyspark={spark.spark}" in DEV_ENVS["glue_spark"].conda and spark.spark == "3.5.4"
    emr = job_runtime("emr", JOB_DEFAULTS["emr"]["release_label"])
    assert DEV_ENVS["emr"].python == emr.pythons[0] == "3.11"
    assert f"pyspark={emr.spark}" in DEV_ENVS["emr"].conda
    for name in ("glue_spark", "emr"):
        assert "openjdk=17" in DEV_ENVS[name].conda
    shell_pins = dict(spec.split("==") for spec in DEV_ENVS["glue_python_shell"].pip if "==" in spec)
    assert {"pandas", "awswrangler"} <= set(shell_pins)


@pytest.mark.parametrize("name", sorted(DEV_ENVS))
def test_env_file_agrees_with_the_table(name):
    env = DEV_ENVS[name]
    path = REPO_ROOT / env_file(name)
    assert path.is_file(), f"{env_file(name)} is missing: run `pkg env write`"
    document = load_env_file(path)
    assert document["name"] == name
    assert document["channels"] == ["conda-forge"]
    dependencies = document["dependencies"]
    conda = [d for d in dependencies if isinstance(d, str)]
    assert conda == [f"python={env.python}", "pip", *env.conda]
    pip_sections = [d["pip"] for d in dependencies if isinstance(d, dict)]
    pip = pip_sections[0] if pip_sections else []
    requirements = [f"-r ${{PKG_ROOT}}/{path}" for path in requirements_files(str(REPO_ROOT), env)]
    assert pip == [*env.pip, *requirements]


def test_every_requirements_file_of_every_service_is_in_its_env():
    for env in repo_envs(str(REPO_ROOT)):
        text = (REPO_ROOT / env_file(env.name)).read_text()
        for service in env.services:
            found = discover_service(str(REPO_ROOT), service)
            paths = [entry.requirements for entry in found.entries if entry.requirements]
            if found.internal_libs and found.internal_libs.requirements:
                paths.append(found.internal_libs.requirements)
            for path in paths:
                assert f"-r ${{PKG_ROOT}}/{path}\n" in text, f"{path} not in {env_file(env.name)}: run `pkg env write`"


def test_the_committed_files_are_what_pkg_env_write_renders():
    assert stale_files(str(REPO_ROOT)) == {}, "dev-environment files out of date: run `pkg env write`"


# -- the dev container ----------------------------------------------------------------------------


def test_devcontainer_json_parses_and_its_references_resolve():
    config = json.loads((DEVCONTAINER / "devcontainer.json").read_text())
    assert (DEVCONTAINER / config["build"]["dockerfile"]).is_file()
    assert (DEVCONTAINER / config["build"]["context"]).resolve() == REPO_ROOT
    interpreter = config["customizations"]["vscode"]["settings"]["python.defaultInterpreterPath"]
    assert interpreter == "/opt/conda/envs/pkg/bin/python"
    assert "--name pkg" in config["postCreateCommand"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (DEVCONTAINER / "Dockerfile").read_text()
    logical = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_copies_only_files_that_exist():
    copies = [args for keyword, args in dockerfile_instructions() if keyword in ("COPY", "ADD")]
    assert copies
    ignore = (DEVCONTAINER / "Dockerfile.dockerignore").read_text()
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            assert (REPO_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
            assert f"!{source.rstrip('/')}" in ignore, f"Dockerfile.dockerignore leaves {source} out"


def test_dockerfile_creates_every_env_from_its_file():
    runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
    created = re.findall(r"micromamba create --yes --name (\S+) --file /tmp/pkg/(\S+)", runs)
    assert sorted(created) == sorted((env.name, env_file(env.name)) for env in repo_envs(str(REPO_ROOT)))
    for _, path in created:
        assert (REPO_ROOT / path).is_file()
    assert "/opt/conda/envs/pkg/bin/pkg /usr/local/bin/pkg" in runs  # pkg on the PATH


def test_vscode_picks_each_service_folders_env():
    workspace = json.loads((DEVCONTAINER / "pipelines.code-workspace").read_text())
    folders = [(DEVCONTAINER / folder["path"]).resolve() for folder in workspace["folders"]]
    assert all(folder.is_dir() for folder in folders)
    for service in SERVICES:
        folder = REPO_ROOT / "src" / service
        if not folder.is_dir():
            continue
        assert folder.resolve() in folders
        settings = json.loads((folder / ".vscode" / "settings.json").read_text())
        env = next(env for env in DEV_ENVS.values() if service in env.services)
        assert settings["python.defaultInterpreterPath"] == f"/opt/conda/envs/{env.name}/bin/python"


# -- pkg env ----------------------------------------------------------------------------------------


def test_env_write_renders_a_pipelines_repo_and_check_catches_drift(repo: Repo, no_conda):
    check = repo.pkg("env", "write", "--check")
    assert check.exit_code == 1
    assert "missing  envs/lambda.yml" in check.stdout

    written = repo.pkg("env", "write")
    assert written.exit_code == 0, written.stderr
    assert "wrote envs/lambda.yml" in written.stdout
    assert not (repo.root / "envs/pkg.yml").exists()  # the tool's own env belongs to pkg's repo only
    assert (repo.root / "src/lambda/.vscode/settings.json").is_file()
    lambda_yml = (repo.root / "envs/lambda.yml").read_text()
    assert "-r ${PKG_ROOT}/src/lambda/ingest.requirements.txt" not in lambda_yml
    assert repo.pkg("env", "write", "--check").exit_code == 0

    repo.write("src/lambda/ingest.requirements.txt", "requests==2.32.3\n")
    stale = repo.pkg("env", "write", "--check")
    assert stale.exit_code == 1
    assert "stale    envs/lambda.yml" in stale.stdout
    assert "run `pkg env write`" in stale.stderr
    repo.pkg("env", "write")
    assert "      - -r ${PKG_ROOT}/src/lambda/ingest.requirements.txt\n" in (repo.root / "envs/lambda.yml").read_text()
    assert set(rendered_files(str(repo.root))) >= {"envs/lambda.yml", "envs/emr.yml"}


def test_env_list_says_what_serves_what_and_what_is_created(repo: Repo, no_conda):
    repo.pkg("env", "write")
    report = repo.pkg_json("env", "list")
    assert report["manager"] is None
    envs = {env["name"]: env for env in report["envs"]}
    assert set(envs) == {"lambda", "glue_python_shell", "glue_spark", "emr"}
    assert envs["lambda"]["serves"] == ["src/lambda"]
    assert envs["glue_spark"]["python"] == "3.11"
    assert not any(env["installed"] for env in envs.values())
    assert all(env["file_state"] == "ok" for env in envs.values())

    no_conda.create_env("lambda")
    envs = {env["name"]: env for env in repo.pkg_json("env", "list")["envs"]}
    assert envs["lambda"]["installed"] and envs["lambda"]["prefix"].endswith("/envs/lambda")
    text = repo.pkg("env", "list")
    assert re.search(r"lambda\s+python 3\.12\s+src/lambda\s+created at ", text.stdout)
    assert "no micromamba/mamba/conda on PATH" in text.stderr


def test_env_create_prints_the_command_and_run_needs_a_manager(repo: Repo, no_conda):
    repo.pkg("env", "write")
    printed = repo.pkg("env", "create", "lambda")
    assert printed.exit_code == 0
    assert printed.stdout.strip() == (
        f"PKG_ROOT={repo.root} micromamba create --yes --name lambda --file {repo.root}/envs/lambda.yml"
    )
    by_service = repo.pkg("env", "create", "src/glue_spark")
    assert "--name glue_spark" in by_service.stdout

    run = repo.pkg("env", "create", "lambda", "--run")
    assert run.exit_code == 1
    assert "no conda-compatible manager" in run.stderr and "hint: install micromamba" in run.stderr
    unknown = repo.pkg("env", "create", "nope")
    assert unknown.exit_code == 1 and "no dev environment named 'nope'" in unknown.stderr


def test_env_run_without_conda_fails_with_a_hint(repo: Repo, no_conda):
    result = repo.pkg("env", "run", "lambda", "--", "python", "-c", "print(1)")
    assert result.exit_code == 1
    assert "error: no conda-compatible manager (micromamba, mamba, conda) on PATH" in result.stderr
    assert "hint: install micromamba" in result.stderr
    assert "Traceback" not in result.stderr


FAKE_MICROMAMBA = """\
#!/bin/sh
# Stands in for micromamba: `env list --json` and `run --name NAME CMD...` are all pkg uses.
if [ "$1 $2" = "env list" ]; then
    printf '{"envs": ["%s"]}\\n' "$MAMBA_ROOT_PREFIX/envs/lambda"
    exit 0
fi
if [ "$1" = "run" ] && [ "$2" = "--name" ]; then
    env_name="$3"; shift 3
    CONDA_DEFAULT_ENV="$env_name" exec "$@"
fi
if [ "$1" = "create" ]; then
    echo "PKG_ROOT=$PKG_ROOT $*" > "$FAKE_MICROMAMBA_LOG"
    exit 0
fi
exit 2
"""


def test_env_run_runs_the_command_in_the_services_env(repo: Repo, no_conda, tmp_path):
    no_conda.create_env("lambda")
    no_conda.add_tool("micromamba", FAKE_MICROMAMBA)
    out = tmp_path / "out.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['CONDA_DEFAULT_ENV'] + ' ' + os.environ['PKG_ROOT'])"
    result = repo.pkg("env", "run", "src/lambda", "--", "python", "-c", script)
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == f"lambda {repo.root}"

    failing = repo.pkg("env", "run", "lambda", "--", "python", "-c", "raise SystemExit(7)")
    assert failing.exit_code == 7

    not_created = repo.pkg("env", "run", "emr", "--", "python", "-V")
    assert not_created.exit_code == 1
    assert "the 'emr' env is not created yet" in not_created.stderr
    assert "pkg env create emr --run" in not_created.stderr


def test_tool_repo_gets_the_tool_env(tmp_path):
    other = make_repo(tmp_path, name="other")
    assert "envs/pkg.yml" not in rendered_files(str(other.root))
    assert "envs/pkg.yml" in rendered_files(str(REPO_ROOT))


# -- lock files ------------------------------------------------------------------------------------


def test_lock_inputs_inline_what_conda_lock_cannot_follow(repo: Repo, no_conda):
    repo.write("src/lambda/internal_libs/requirements.txt", "# shared\n-r base.txt\nrequests==2.32.3  # http\n")
    repo.write("src/lambda/internal_libs/base.txt", "attrs>=23\n")
    repo.pkg("env", "write")
    printed = repo.pkg("env", "lock", "lambda", "emr")
    assert printed.exit_code == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines == [
        f"conda-lock lock -f {repo.root}/.pkg/lock-inputs/{name}.yml -p linux-64 -p linux-aarch64"
        f" --lockfile {repo.root}/envs/{name}.conda-lock.yml"
        for name in ("lambda", "emr")
    ]
    document = load_env_file(repo.root / ".pkg/lock-inputs/lambda.yml")
    assert document["dependencies"][:2] == ["python=3.12", "pip"]
    assert document["dependencies"][-1] == {"pip": ["attrs>=23", "requests==2.32.3"]}
    emr = load_env_file(repo.root / ".pkg/lock-inputs/emr.yml")  # empty requirements: no pip section
    assert all(isinstance(d, str) for d in emr["dependencies"])

    run = repo.pkg("env", "lock", "--run")
    assert run.exit_code == 1
    assert "conda-lock is not on PATH" in run.stderr


def test_the_tool_env_locks_the_projects_own_dependencies():
    from packager.envs import render_lock_input

    document = load_env_file_text(render_lock_input(str(REPO_ROOT), DEV_ENVS["pkg"]))
    pip = document["dependencies"][-1]["pip"]
    assert "click>=8.1" in pip and "conda-lock" in pip
    assert not any("PKG_ROOT" in line for line in pip)


def load_env_file_text(text: str) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(text)


def test_make_locks_runs_pkg_env_lock():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^locks:.*\n\t\$\(BIN\)/pkg env lock --run$", makefile, re.M)


def test_pip_finds_the_requirements_files_through_pkg_root_from_any_folder(repo: Repo, no_conda, tmp_path):
    """What micromamba does with a pip section: the lines go to a temp file elsewhere, then `pip -r` it."""
    import subprocess
    import sys

    from wheelhouse import WHEELS, write_wheel

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for spec in WHEELS:
        if spec.name == "tinylib":
            write_wheel(wheels, spec)
    repo.write("src/lambda/internal_libs/requirements.txt", "tinylib==1.0\n")
    repo.pkg("env", "write")
    pip_lines = load_env_file(repo.root / "envs/lambda.yml")["dependencies"][-1]["pip"]
    elsewhere = tmp_path / "tmp-of-the-manager"
    elsewhere.mkdir()
    (elsewhere / "requirements.txt").write_text("\n".join(pip_lines) + "\n")
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--find-links", str(wheels)]
    command += ["-r", "requirements.txt", "--disable-pip-version-check"]

    found = subprocess.run(
        command, cwd=elsewhere, env={**no_conda.environ, "PKG_ROOT": str(repo.root)}, capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    assert "Would install tinylib-1.0" in found.stdout

    unset = subprocess.run(command, cwd=elsewhere, env=no_conda.environ, capture_output=True, text=True)
    assert unset.returncode != 0  # without PKG_ROOT the path can't resolve: `pkg env create` always sets it


def test_env_create_run_calls_the_manager_with_pkg_root_set(repo: Repo, no_conda, tmp_path, monkeypatch):
    repo.pkg("env", "write")
    tool = no_conda.add_tool("micromamba", FAKE_MICROMAMBA)
    log = tmp_path / "micromamba.log"
    monkeypatch.setenv("FAKE_MICROMAMBA_LOG", str(log))
    result = repo.pkg("env", "create", "glue_python_shell", "--run")
    assert result.exit_code == 0, result.stderr
    assert log.read_text().strip() == (
        f"PKG_ROOT={repo.root} create --yes --name glue_python_shell --file {repo.root}/envs/glue_python_shell.yml"
    )
    assert f"running: PKG_ROOT={repo.root} {tool} create" in result.stderr
