"""Platform installs: a requirements set into a folder, for a runtime and architecture.

Never for the build machine: binary wheels only, for the runtime's Python and every manylinux tag
its OS accepts (runtimes.py). uv does it (fast); pip is the fallback when uv is not installed.
Every installed wheel's tags are checked afterwards against the same table. `IndexOptions` says
where packages come from, for Lambda layers and job wheels alike. Installs are hermetic: pip and
uv run without the machine's and user's configuration files and `PIP_*`/`UV_*` variables
(`isolated_env`), so the options that shape a set are the ones its hash covers.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packager.errors import ConfigError, DependencyError
from packager.runtimes import MACHINES, Runtime

if TYPE_CHECKING:
    from packager.config import Config

INSTALLERS = ("auto", "uv", "pip")
# The keys of [tool.pkg.dependencies] that say where packages come from (a job's table may override them).
INDEX_KEYS = ("index_url", "extra_index_urls", "find_links", "no_index")


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from (`[tool.pkg.dependencies]`); part of every dependency-set hash."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # folders relative to the repo root, or URLs
    no_index: bool = False
    installer: str = "auto"  # "auto" (uv if installed, else pip), "uv" or "pip"

    def hashed(self) -> dict:
        """What of these options shapes the result (the installer tool does not)."""
        return {
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "no_index": self.no_index,
        }

    def index_args(self, root: str) -> list[str]:
        """The index options as uv and pip both spell them; relative find_links resolve against `root`."""
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", _resolve_link(link, root)]
        if self.no_index:
            args.append("--no-index")
        return args


def index_options(config: Config, overrides: Mapping[str, Any] | None = None) -> IndexOptions:
    """`[tool.pkg.dependencies]` as IndexOptions; `overrides` (a job's own settings) win key by key."""
    raw = config.raw.get("dependencies", {})
    for key in ("extra_index_urls", "find_links"):
        if not all(isinstance(item, str) for item in raw.get(key, [])):
            raise ConfigError(f"tool.pkg.dependencies.{key} must be an array of strings")
    installer = raw.get("installer", "auto")
    if installer not in INSTALLERS:
        raise ConfigError(
            f"tool.pkg.dependencies.installer: unknown installer '{installer}'", hint="one of " + ", ".join(INSTALLERS)
        )
    picked = {key: (overrides or {}).get(key, raw.get(key)) for key in INDEX_KEYS}
    return IndexOptions(
        index_url=picked["index_url"],
        extra_index_urls=tuple(picked["extra_index_urls"] or ()),
        find_links=tuple(picked["find_links"] or ()),
        no_index=bool(picked["no_index"]),
        installer=installer,
    )


@dataclass(frozen=True)
class Platform:
    """The Lambda platform a dependency set is installed for."""

    runtime: Runtime
    architecture: str

    @property
    def tags(self) -> list[str]:
        """Every wheel platform tag accepted here (runtimes.py)."""
        return self.runtime.platform_tags(self.architecture)

    @property
    def uv_platform(self) -> str:
        """uv's name for the newest manylinux target (uv accepts every older tag with it)."""
        major, minor = self.runtime.manylinux_max
        return f"{MACHINES[self.architecture]}-manylinux_{major}_{minor}"

    def describe(self) -> str:
        """ "python3.12 x86_64 (cp312, manylinux_2_34 and older)", for messages."""
        major, minor = self.runtime.manylinux_max
        runtime = self.runtime
        return f"{runtime.name} {self.architecture} ({runtime.python_tag}, manylinux_{major}_{minor} and older)"


def find_uv() -> str | None:
    """The uv executable beside this Python (a venv install) or on PATH."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("uv")


def chosen_uv(options: IndexOptions) -> str | None:
    """The uv executable to use, or None for pip (`installer = "uv"` without uv is an error)."""
    uv = find_uv() if options.installer in ("auto", "uv") else None
    if options.installer == "uv" and uv is None:
        raise DependencyError(
            '[tool.pkg.dependencies] installer = "uv" but uv is not installed',
            hint='pip install uv, or set installer = "auto" to fall back to pip',
        )
    return uv


# Flags that make each tool skip every configuration file: pip.conf (all scopes with PIP_CONFIG_FILE
# set to os.devnull below) and uv.toml / a repo's [tool.uv].
PIP_ISOLATED = "--isolated"
UV_NO_CONFIG = "--no-config"
# Where uv caches downloads, not what it resolves: kept so a machine's (or the tests') cache is reused.
KEPT_INSTALLER_VARIABLES = ("UV_CACHE_DIR",)


def isolated_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment pip and uv run in: `environ` (default os.environ) without PIP_* and UV_* variables
    (but the uv cache folder), and PIP_CONFIG_FILE=os.devnull so pip reads no pip.conf at all."""
    source = os.environ if environ is None else environ
    env = {
        name: value
        for name, value in source.items()
        if not name.startswith(("PIP_", "UV_")) or name in KEPT_INSTALLER_VARIABLES
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _resolve_link(link: str, root: str) -> str:
    return link if "://" in link else os.path.normpath(os.path.join(root, link))


def install_command(
    platform: Platform, options: IndexOptions, root: str, target: str, requirements: str, constraints: str | None
) -> list[str]:
    """The uv or pip command line that installs `requirements` into `target` for `platform`."""
    uv = chosen_uv(options)
    if uv:
        command = [
            uv, "pip", "install", UV_NO_CONFIG, "--target", target, "--python", sys.executable,
            "--python-platform", platform.uv_platform, "--python-version", platform.runtime.python,
            "--only-binary", ":all:", "--no-progress", "--color", "never",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "pip", "install", PIP_ISOLATED, "--target", target, "--implementation", "cp",
            "--python-version", platform.runtime.python, "--only-binary=:all:", "--no-compile",
            "--disable-pip-version-check", "--no-input", "--quiet",
        ]  # fmt: skip
        for tag in platform.tags:
            command += ["--platform", tag]
    command += options.index_args(root)
    command += ["-r", requirements]
    if constraints:
        command += ["-c", constraints]
    return command


# What uv and pip say when a requirement has no usable wheel, and the name it is about.
NO_WHEEL = [
    re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*)\S* has no (?:usable )?wheels"),
    re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*)\S* has no wheels with a matching"),
    re.compile(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in"),
    re.compile(r"Because there are no (?:usable )?versions of ([A-Za-z0-9][A-Za-z0-9._-]*)"),
    re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)"),
]


def explain_failure(
    output: str, platform: Platform, label: str, options: IndexOptions, pinned: bool
) -> DependencyError:
    """A user-facing error from the installer's output: the package, the platform, what to do.

    `pinned`: the install was constrained to the versions the internal_libs layers already hold.
    """
    package = next((m.group(1) for p in NO_WHEEL if (m := p.search(output))), None)
    detail = "\n".join(line for line in output.strip().splitlines() if not line.startswith("Using ")).strip()
    source = "the configured find_links only" if options.no_index else "the package index"
    if package:
        message = f"{label}: no wheel of '{package}' installs on {platform.describe()} from {source}"
        hint = (
            "pin a version that publishes manylinux wheels for this Python and architecture, change the runtime or"
            " architecture in [tool.pkg.lambda], or build the wheel on Amazon Linux and add its folder to"
            " [tool.pkg.dependencies].find_links"
        )
    else:
        message = f"{label}: the requirements can't be resolved together for {platform.describe()}"
        hint = "loosen or align the conflicting pins shown above"
        if pinned:
            hint += (
                "; a function's dependencies are resolved against the versions the internal_libs dependency"
                " layers hold (both sit on the same sys.path)"
            )
    return DependencyError(f"{message}\n{detail}" if detail else message, hint=hint)


def run_install(
    platform: Platform,
    options: IndexOptions,
    root: str,
    target: str,
    requirements: str,
    constraints: str | None,
    label: str,
) -> None:
    """Install into `target`, or raise DependencyError naming the package that could not be installed."""
    import subprocess  # here: a no-op build never installs

    command = install_command(platform, options, root, target, requirements, constraints)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=isolated_env(), check=False)
    except OSError as error:
        raise DependencyError(f"{label}: can't run {command[0]}: {error}", hint="install uv or pip") from None
    if result.returncode != 0:
        raise explain_failure(result.stderr + result.stdout, platform, label, options, constraints is not None)


def _python_fits(interpreters: set[str], abis: set[str], runtime: Runtime) -> bool:
    """Whether a wheel built for these interpreter and ABI tags imports on the runtime's CPython."""
    minor = int(runtime.python.split(".")[1])

    def at_most(tag: str, prefix: str) -> bool:  # "cp39" <= cp312, "py3" / "py311" <= 3.12
        rest = tag[len(prefix) :]
        return tag.startswith(prefix) and (rest == "" or (rest.isdigit() and int(rest) <= minor))

    if runtime.python_tag in abis:
        return runtime.python_tag in interpreters
    if "abi3" in abis:
        return any(at_most(tag, "cp3") for tag in interpreters)
    if "none" in abis:
        return any(at_most(tag, "py3") or tag == runtime.python_tag for tag in interpreters)
    return False


def tag_problem(tags: list[str], platform: Platform) -> str | None:
    """Why a wheel with these `Tag:` lines can't run on `platform`, or None if one of them fits."""
    accepted = set(platform.tags) | {"any"}
    for tag in tags:
        parts = tag.split("-")
        if len(parts) != 3:
            continue
        interpreters, abis, platforms = (set(p.split(".")) for p in parts)
        if platforms & accepted and _python_fits(interpreters, abis, platform.runtime):
            return None
    return f"wheel tags {', '.join(tags) or '(none)'} don't fit {platform.describe()}"
