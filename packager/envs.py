"""Dev environments: one conda env per service runtime, rendered from `DEV_ENVS` (packager/runtimes.py).

`envs/<name>.yml` installs the env's pinned packages and, through its pip section, every requirements
file of the service folders it serves (`-r ${PKG_ROOT}/src/...`: pip expands the variable, so the
same file works with conda, mamba and micromamba whatever folder they run from). `pkg env write`
renders those files and the per-folder VS Code settings; `pkg env create|run` drive micromamba/conda.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass

from packager import DISTRIBUTION
from packager.discover import SERVICES, discover_service
from packager.errors import EnvError
from packager.runtimes import DEV_ENVS, DevEnv

ENVS_DIR = "envs"
ROOT_VARIABLE = "PKG_ROOT"  # the repo root, expanded by pip inside the env files' -r lines
TOOL_ENV = "pkg"
CHANNELS = ("conda-forge",)
WORKSPACE_FILE = ".devcontainer/pipelines.code-workspace"
CONTAINER_ENVS = "/opt/conda/envs"  # MAMBA_ROOT_PREFIX/envs in the dev container


def env_file(name: str) -> str:
    """Repo-relative path of an env's conda environment file."""
    return f"{ENVS_DIR}/{name}.yml"


def is_tool_repo(root: str) -> bool:
    """Whether `root` is pkg's own repository (which also gets the tool's env, envs/pkg.yml)."""
    try:
        with open(os.path.join(root, "pyproject.toml"), "rb") as stream:
            return tomllib.load(stream).get("project", {}).get("name") == DISTRIBUTION
    except (OSError, tomllib.TOMLDecodeError):
        return False


def repo_envs(root: str) -> list[DevEnv]:
    """The envs a repository gets: one per service runtime, plus the tool's own in pkg's repo."""
    return [env for env in DEV_ENVS.values() if env.name != TOOL_ENV or is_tool_repo(root)]


def env_for_service(service: str) -> DevEnv:
    """The env that serves `service` ("lambda", "src/lambda", or an env name)."""
    name = service.strip("/").removeprefix("src/")
    for env in DEV_ENVS.values():
        if name in env.services or name == env.name:
            return env
    known = ", ".join(SERVICES)
    raise EnvError(f"no dev environment serves '{service}'", hint=f"services: {known}; see `pkg env list`")


def requirements_files(root: str, env: DevEnv) -> list[str]:
    """Repo-relative requirements files of the service folders `env` serves, in a stable order."""
    found = []
    for service in env.services:
        discovered = discover_service(root, service)
        if discovered.internal_libs and discovered.internal_libs.requirements:
            found.append(discovered.internal_libs.requirements)
        found += [entry.requirements for entry in discovered.entries if entry.requirements]
    return found


def render_env_file(root: str, env: DevEnv) -> str:
    """The text of `envs/<name>.yml` for this repository."""
    serves = ", ".join(f"src/{service}" for service in env.services) or "the repository root"
    lines = [
        f"# {env.about}; serves {serves}.",
        "# Rendered from DEV_ENVS in packager/runtimes.py by `pkg env write`: change the table, not this file.",
        f"# Create or update it with `pkg env create {env.name} --run` (which sets {ROOT_VARIABLE} to the repo root).",
        f"name: {env.name}",
        "channels:",
        *(f"  - {channel}" for channel in CHANNELS),
        "dependencies:",
        f"  - python={env.python}",
        "  - pip",
        *(f"  - {spec}" for spec in env.conda),
    ]
    pip = list(env.pip) + [f"-r ${{{ROOT_VARIABLE}}}/{path}" for path in requirements_files(root, env)]
    if pip:
        lines.append("  - pip:")
        lines += [f"      - {spec}" for spec in pip]
    return "\n".join(lines) + "\n"


def interpreter_in_container(env: DevEnv) -> str:
    return f"{CONTAINER_ENVS}/{env.name}/bin/python"


def render_folder_settings(env: DevEnv) -> str:
    """`src/<service>/.vscode/settings.json`: VS Code's interpreter for that folder in the dev container."""
    return json.dumps({"python.defaultInterpreterPath": interpreter_in_container(env)}, indent=2) + "\n"


def service_folders(root: str) -> list[tuple[str, DevEnv]]:
    """(repo-relative folder, env) for every service folder present under src/."""
    return [
        (f"src/{service}", env_for_service(service))
        for service in SERVICES
        if os.path.isdir(os.path.join(root, "src", service))
    ]


def render_workspace(root: str) -> str:
    """A multi-root VS Code workspace: the repo (tool env) and each service folder (its own env)."""
    folders = [{"name": "repository", "path": ".."}]
    folders += [{"name": f"{folder} ({env.name} env)", "path": f"../{folder}"} for folder, env in service_folders(root)]
    tool = DEV_ENVS[TOOL_ENV] if is_tool_repo(root) else DEV_ENVS["lambda"]
    document = {
        "folders": folders,
        "settings": {"python.defaultInterpreterPath": interpreter_in_container(tool)},
    }
    return json.dumps(document, indent=2) + "\n"


def rendered_files(root: str) -> dict[str, str]:
    """Every file `pkg env write` owns, repo-relative path -> text."""
    files = {env_file(env.name): render_env_file(root, env) for env in repo_envs(root)}
    for folder, env in service_folders(root):
        files[f"{folder}/.vscode/settings.json"] = render_folder_settings(env)
    files[WORKSPACE_FILE] = render_workspace(root)
    return files


def stale_files(root: str) -> dict[str, str]:
    """Rendered files that are missing or differ on disk: path -> "missing" or "stale"."""
    problems = {}
    for path, text in rendered_files(root).items():
        try:
            with open(os.path.join(root, path), encoding="utf-8") as stream:
                if stream.read() != text:
                    problems[path] = "stale"
        except FileNotFoundError:
            problems[path] = "missing"
    return problems


def write_files(root: str) -> list[str]:
    """Write every missing or stale rendered file; returns the paths written."""
    rendered = rendered_files(root)
    written = []
    for path in stale_files(root):
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as stream:
            stream.write(rendered[path])
        written.append(path)
    return written


@dataclass(frozen=True)
class EnvManager:
    """A conda-compatible environment manager found on this machine."""

    kind: str  # "micromamba", "mamba" or "conda"
    exe: str

    def create_command(self, root: str, env: DevEnv) -> list[str]:
        """Create the env, or bring an existing one up to date with its file."""
        path = os.path.join(root, env_file(env.name))
        if self.kind == "micromamba":
            return [self.exe, "create", "--yes", "--name", env.name, "--file", path]
        return [self.exe, "env", "update", "--name", env.name, "--file", path, "--prune"]

    def run_command(self, env: DevEnv, command: list[str]) -> list[str]:
        if self.kind == "micromamba":
            return [self.exe, "run", "--name", env.name, *command]
        return [self.exe, "run", "--no-capture-output", "--name", env.name, *command]

    def env_prefixes(self) -> list[str]:
        """The env folders the manager knows (`env list --json`); empty if it can't say."""
        try:
            listed = subprocess.run(
                [self.exe, "env", "list", "--json"], capture_output=True, text=True, timeout=60, check=True
            )
            return list(json.loads(listed.stdout).get("envs", []))
        except (OSError, subprocess.SubprocessError, ValueError):
            return []


def find_manager() -> EnvManager | None:
    """micromamba, mamba or conda, preferring the one an activated shell names (MAMBA_EXE, CONDA_EXE)."""
    for variable, kind in (("MAMBA_EXE", "micromamba"), ("CONDA_EXE", "conda")):
        exe = os.environ.get(variable)
        if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
            named = next((k for k in ("micromamba", "mamba") if os.path.basename(exe).startswith(k)), kind)
            return EnvManager(named, exe)
    for kind in ("micromamba", "mamba", "conda"):
        exe = shutil.which(kind)
        if exe:
            return EnvManager(kind, exe)
    return None


def _env_dirs() -> list[str]:
    """Folders that hold named conda envs, from the usual variables and install locations."""
    dirs = []
    if os.environ.get("MAMBA_ROOT_PREFIX"):
        dirs.append(os.path.join(os.environ["MAMBA_ROOT_PREFIX"], "envs"))
    dirs += [d for d in os.environ.get("CONDA_ENVS_PATH", "").split(os.pathsep) if d]
    home = os.path.expanduser("~")
    for base in ("micromamba", "miniforge3", "mambaforge", "miniconda3", "anaconda3", ".conda"):
        dirs.append(os.path.join(home, base, "envs"))
    dirs.append(CONTAINER_ENVS)
    return dirs


def _is_env(prefix: str) -> bool:
    return os.path.isdir(os.path.join(prefix, "conda-meta")) and os.path.exists(os.path.join(prefix, "bin", "python"))


def installed_envs(manager: EnvManager | None) -> dict[str, str]:
    """Env name -> prefix for every created env (first found wins)."""
    candidates = list(manager.env_prefixes()) if manager else []
    for folder in _env_dirs():
        try:
            candidates += [os.path.join(folder, name) for name in sorted(os.listdir(folder))]
        except OSError:
            continue
    found: dict[str, str] = {}
    for prefix in candidates:
        name = os.path.basename(os.path.normpath(prefix))
        if name not in found and _is_env(prefix):
            found[name] = prefix
    return found


def env_python(name: str, manager: EnvManager | None = None) -> str | None:
    """The Python interpreter of a created env, or None."""
    prefix = installed_envs(manager).get(name)
    return os.path.join(prefix, "bin", "python") if prefix else None


@dataclass
class EnvStatus:
    """One row of `pkg env list`."""

    env: DevEnv
    file: str
    file_state: str  # "ok", "stale" or "missing"
    prefix: str | None

    def as_json(self) -> dict:
        return {
            "name": self.env.name,
            "python": self.env.python,
            "serves": [f"src/{service}" for service in self.env.services],
            "file": self.file,
            "file_state": self.file_state,
            "installed": self.prefix is not None,
            "prefix": self.prefix,
            "about": self.env.about,
        }


def list_envs(root: str) -> tuple[list[EnvStatus], EnvManager | None]:
    """Every env of the repo with its file's state and where it is installed."""
    manager = find_manager()
    installed = installed_envs(manager)
    stale = stale_files(root)
    rows = [
        EnvStatus(env, env_file(env.name), stale.get(env_file(env.name), "ok"), installed.get(env.name))
        for env in repo_envs(root)
    ]
    return rows, manager


def get_env(root: str, name: str) -> DevEnv:
    envs = {env.name: env for env in repo_envs(root)}
    if name not in envs:
        try:
            return env_for_service(name)
        except EnvError:
            raise EnvError(f"no dev environment named '{name}'", hint=f"envs: {', '.join(envs)}") from None
    return envs[name]


def command_environment(root: str) -> dict[str, str]:
    """The process environment for manager commands: PKG_ROOT set for the env files' -r lines."""
    return {**os.environ, ROOT_VARIABLE: os.path.abspath(root)}


def shell_line(root: str, command: list[str]) -> str:
    """A command as one line a user can paste, with PKG_ROOT set."""
    return f"{ROOT_VARIABLE}={shlex.quote(os.path.abspath(root))} {shlex.join(command)}"


NO_MANAGER_HINT = (
    "install micromamba (https://mamba.readthedocs.io), or open the repo in the dev container (.devcontainer/),"
    " where every env already exists"
)


def create_command(root: str, name: str) -> tuple[list[str], EnvManager | None]:
    """The command that creates or updates env `name` (micromamba's form when no manager is installed)."""
    env = get_env(root, name)
    if not os.path.isfile(os.path.join(root, env_file(env.name))):
        raise EnvError(f"{env_file(env.name)} does not exist", hint="write the env files with `pkg env write`")
    manager = find_manager()
    return (manager or EnvManager("micromamba", "micromamba")).create_command(root, env), manager


def run_in_env(root: str, service: str, command: list[str]) -> int:
    """Run `command` in the env of `service` through its manager (activation scripts included); its exit code."""
    env = env_for_service(service)
    manager = find_manager()
    if manager is None:
        raise EnvError(
            f"no conda-compatible manager (micromamba, mamba, conda) on PATH to run in the '{env.name}' env",
            hint=NO_MANAGER_HINT,
        )
    if env.name not in installed_envs(manager):
        raise EnvError(
            f"the '{env.name}' env is not created yet", hint=f"create it with `pkg env create {env.name} --run`"
        )
    if not command:
        raise EnvError("no command given", hint=f"pkg env run {service} -- python -m pytest")
    try:
        return subprocess.run(manager.run_command(env, command), env=command_environment(root)).returncode
    except OSError as error:
        raise EnvError(f"could not start {manager.exe}: {error}") from None


LOCK_PLATFORMS = ("linux-64", "linux-aarch64")
LOCK_INPUTS = ".pkg/lock-inputs"  # inside the (git-ignored) cache folder


def lock_file(name: str) -> str:
    """Repo-relative path of an env's conda-lock file."""
    return f"{ENVS_DIR}/{name}.conda-lock.yml"


def _project_requirements(root: str, extras: list[str]) -> list[str]:
    with open(os.path.join(root, "pyproject.toml"), "rb") as stream:
        project = tomllib.load(stream).get("project", {})
    optional = project.get("optional-dependencies", {})
    return list(project.get("dependencies", [])) + [req for extra in extras for req in optional.get(extra, [])]


def render_lock_input(root: str, env: DevEnv) -> str:
    """The env file as conda-lock can read it: `-r` files and the editable checkout inlined.

    conda-lock parses every pip line as one requirement, so the requirements files' lines (includes
    resolved, comments dropped) and the project's own dependencies take their place.
    """
    from cache.hashing import file_digest
    from packager.builders.requirements import RequirementsReader

    reader = RequirementsReader(root, lambda _relpath, abspath: file_digest(abspath))

    lines = []
    for line in render_env_file(root, env).splitlines():
        include = re.match(r"(\s+- )-r \$\{" + ROOT_VARIABLE + r"\}/(.+)$", line)
        editable = re.match(r"(\s+- )-e \$\{" + ROOT_VARIABLE + r"\}(?:\[(.+)\])?$", line)
        if include:
            required = reader.read(include.group(2)).lines
            lines += [f"{include.group(1)}{req}" for req in required]
        elif editable:
            extras = editable.group(2).split(",") if editable.group(2) else []
            lines += [f"{editable.group(1)}{req}" for req in _project_requirements(root, extras)]
        else:
            lines.append(line)
    if lines[-1].strip() == "- pip:":  # every requirements file was empty
        lines.pop()
    return "\n".join(lines) + "\n"


def lock_commands(root: str, names: list[str]) -> list[list[str]]:
    """Write each env's conda-lock input under .pkg/ and return the conda-lock command of each."""
    envs = [get_env(root, name) for name in names] if names else repo_envs(root)
    folder = os.path.join(root, LOCK_INPUTS)
    os.makedirs(folder, exist_ok=True)
    commands = []
    for env in envs:
        source = os.path.join(folder, f"{env.name}.yml")
        with open(source, "w", encoding="utf-8") as stream:
            stream.write(render_lock_input(root, env))
        platforms = [word for platform in LOCK_PLATFORMS for word in ("-p", platform)]
        commands.append(
            ["conda-lock", "lock", "-f", source, *platforms, "--lockfile", os.path.join(root, lock_file(env.name))]
        )
    return commands
