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


@dataclass(frozen=True)
class InstallRequest:
    """What an install was asked, to tell the user where a failure comes from: the repository root,
    the user's requirements files (repo-relative, the top one first) and the file pkg wrote for the tool."""

    root: str
    sources: tuple[str, ...]
    requirements_file: str


def _detail(output: str, request: InstallRequest | None) -> str:
    """The tool's own explanation, without its progress lines, speaking of the user's requirements
    (pip's `-r /tmp/…/requirements.txt (line 2)` becomes the requirement on that line)."""
    lines = [line for line in output.strip().splitlines() if not line.startswith("Using ")]
    detail = "\n".join(lines).strip()
    if request is None:
        return detail
    try:
        with open(request.requirements_file, encoding="utf-8") as stream:
            written = stream.read().splitlines()
    except OSError:
        return detail

    def requirement(match: re.Match) -> str:
        number = int(match.group(1))
        return written[number - 1] if 0 < number <= len(written) else match.group(0)

    return re.sub(r"-r \S+ \(line (\d+)\)", requirement, detail)


def explain_failure(
    output: str,
    platform: Platform,
    label: str,
    options: IndexOptions,
    pinned: bool,
    request: InstallRequest | None = None,
    skipped: set[tuple[str, str]] | None = None,
) -> DependencyError:
    """A user-facing error from the installer's output: the cause (resolver_errors.Cause), the package,
    the user's file and line asking for it, the platform, what to do.

    `pinned`: the install was constrained to the versions the internal_libs layers already hold;
    `skipped`: what pip -vv skipped (see `resolver_errors.skipped_wheels`).
    """
    from packager.builders.requirements import where_required
    from packager.builders.resolver_errors import Cause, classify

    failure = classify(output, skipped)
    detail = _detail(output, request)
    source = "the configured find_links only" if options.no_index else "the package index"
    package = failure.package
    where = (where_required(request.root, request.sources, package) if request and package else None) or label
    via = "" if where != label or package is None else f" (a dependency of a requirement in {label})"
    pins = (
        "; a function's dependencies are resolved against the versions the internal_libs dependency"
        " layers hold (both sit on the same sys.path)"
    )
    if failure.cause is Cause.UNKNOWN_PACKAGE:
        place = "the find_links folders (no_index = true)" if options.no_index else "the package index"
        message = f"{where}: no package named '{package}' in {place}{via}"
        hint = (
            "check the spelling of the name; a private package needs its index or wheel folder in"
            " [tool.pkg.dependencies] (index_url, extra_index_urls, find_links)"
        )
    elif failure.cause is Cause.NO_VERSION:
        available = f" (there are: {failure.versions})" if failure.versions else ""
        message = f"{where}: no version of {package} matches {failure.specifier or 'the request'}{via}{available}"
        hint = "pin a version that exists there, or loosen the specifier" + (pins if pinned else "")
    elif failure.cause is Cause.NO_WHEEL:
        message = f"{where}: no wheel of '{package}' installs on {platform.describe()} from {source}{via}"
        hint = (
            "pin a version that publishes manylinux wheels for this Python and architecture, change the runtime or"
            " architecture in [tool.pkg.lambda], or build the wheel on Amazon Linux and add its folder to"
            " [tool.pkg.dependencies].find_links"
        )
    else:
        message = f"{label}: the requirements can't be resolved together for {platform.describe()}"
        named = _named_requirements(detail, request)
        if named:
            message += ": " + ", ".join(f"{name} ({line})" for name, line in named)
        hint = "loosen or align the conflicting pins shown above" + (pins if pinned else "")
        return DependencyError(f"{message}\n{detail}" if detail else message, hint=hint)
    return DependencyError(message, hint=hint)


def _named_requirements(detail: str, request: InstallRequest | None) -> list[tuple[str, str]]:
    """(name, `path:line`) of each of the user's own requirements the tool's explanation (`_detail`) mentions."""
    from packager.builders.requirements import requirement_name, where_required

    if request is None:
        return []
    try:
        with open(request.requirements_file, encoding="utf-8") as stream:
            names = sorted({requirement_name(line) for line in stream.read().splitlines() if line.strip()})
    except OSError:
        return []
    mentioned = [name for name in names if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", detail, re.I)]
    found = [(name, where_required(request.root, request.sources, name)) for name in mentioned]
    return [(name, line) for name, line in found if line is not None]


def run_install(
    platform: Platform,
    options: IndexOptions,
    root: str,
    target: str,
    requirements: str,
    constraints: str | None,
    label: str,
    sources: tuple[str, ...] = (),
) -> None:
    """Install into `target`, or raise DependencyError saying why, against the user's file and line.

    `sources`: the user's requirements files (repo-relative) that `requirements` was written from.
    """
    import subprocess  # here: a no-op build never installs

    from packager.builders.resolver_errors import skipped_wheels

    command = install_command(platform, options, root, target, requirements, constraints)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=isolated_env(), check=False)
    except OSError as error:
        raise DependencyError(f"{label}: can't run {command[0]}: {error}", hint="install uv or pip") from None
    if result.returncode != 0:
        output = result.stderr + result.stdout
        skipped = None
        if "--quiet" in command and "(from versions:" in output:
            # pip says "from versions: none" for an unknown name and for wheels of other platforms alike:
            # asked again verbosely, it lists the wheels it skipped and why.
            verbose = [*command[: command.index("--quiet")], "-vv", *command[command.index("--quiet") + 1 :]]
            again = subprocess.run(verbose, capture_output=True, text=True, env=isolated_env(), check=False)
            skipped = skipped_wheels(again.stdout + again.stderr)
        request = InstallRequest(root, sources, requirements)
        raise explain_failure(output, platform, label, options, constraints is not None, request, skipped)


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
