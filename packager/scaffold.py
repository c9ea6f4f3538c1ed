"""`pkg init`: a new pipelines repository from the templates shipped in packager/templates/.

The templates are package data (read through importlib.resources, so an installed wheel has them);
a path component `dot-x` in the templates is `.x` in the repository (setuptools' package-data globs
skip hidden files). `__PROJECT__`-style tokens are replaced; the env files, the VS Code settings and
the workspace are rendered by packager/envs.py from the new tree, as `pkg env write` would.

Every file is planned before any is written: if one exists, nothing is written.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable

from packager import DISTRIBUTION, __version__
from packager.deploy.naming import NAME, resource_name
from packager.envs import rendered_files
from packager.errors import InitError
from packager.runtimes import LAMBDA_LIMITS

TEMPLATES = "templates"
HIDDEN_PREFIX = "dot-"
EXAMPLE_STAGE = "dev"  # the stage the new pyproject.toml configures
EXAMPLE_ENTRY = re.compile(r"src/\w+/(\w+)\.py\Z")  # a function or job of the templates


class ProjectSource(StrEnum):
    """Where the new repository's project name came from."""

    OPTION = "--project"
    FOLDER = "folder name"


@dataclass(frozen=True)
class InitReport:
    """What `pkg init` wrote, and where the project name came from."""

    root: str
    project: str
    project_from: ProjectSource
    written: list[str]

    def as_json(self) -> dict:
        return {
            "root": self.root,
            "project": self.project,
            "project_from": str(self.project_from),
            "written": self.written,
        }


def check_project_name(project: str, where: str, examples: list[str]) -> None:
    """The project name starts every AWS name: letters, digits, '-' and '_', short enough for the examples."""
    if not NAME.match(project):
        raise InitError(
            f"{where} '{project}' can't start an AWS name: use letters, digits, '-' and '_' only",
            hint="pass --project NAME",
        )
    longest = max((resource_name(project, EXAMPLE_STAGE, example) for example in examples), key=len, default="")
    limit = LAMBDA_LIMITS.function_name_length
    if len(longest) > limit:
        raise InitError(
            f"{where} '{project}' is too long: '{longest}' would pass Lambda's {limit} characters for a name",
            hint="pass a shorter --project NAME",
        )


def bucket_name(project: str) -> str:
    """The example artifact bucket: S3 takes lowercase letters, digits and '-' (no '_', not first)."""
    return f"{project.lower().replace('_', '-').lstrip('-')}-artifacts"


def _repo_path(template_path: str) -> str:
    return "/".join(
        "." + part.removeprefix(HIDDEN_PREFIX) if part.startswith(HIDDEN_PREFIX) else part
        for part in template_path.split("/")
    )


def _template_files(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Repo-relative path -> template text, for every file under `folder`."""
    found: dict[str, str] = {}
    for entry in folder.iterdir():
        path = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name != "__pycache__":
                found.update(_template_files(entry, f"{path}/"))
        else:
            found[_repo_path(path)] = entry.read_text(encoding="utf-8")
    return found


def planned_files(project: str) -> dict[str, str]:
    """Every file of a new repository named `project`: repo-relative path -> text."""
    tokens = {
        "__PROJECT__": project,
        "__BUCKET__": bucket_name(project),
        "__DISTRIBUTION__": DISTRIBUTION,
        "__VERSION__": __version__,
    }
    files = {}
    for path, text in _template_files(resources.files("packager") / TEMPLATES).items():
        for token, value in tokens.items():
            text = text.replace(token, value)
        files[path] = text
    # The env files list the requirements files of src/: rendered from the new tree, as `pkg env write` does.
    with tempfile.TemporaryDirectory(prefix="pkg-init-") as staging:
        _write(staging, files)
        files.update(rendered_files(staging))
    return dict(sorted(files.items()))


def _in_the_way(root: str, path: str) -> bool:
    """Whether writing `path` would overwrite something (a file, a link, or a non-folder where a folder goes)."""
    target = os.path.join(root, path)
    if os.path.lexists(target):
        return True
    folder = os.path.dirname(target)
    while len(folder) > len(root):
        if os.path.lexists(folder) and not os.path.isdir(folder):
            return True
        folder = os.path.dirname(folder)
    return False


def _write(root: str, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "x", encoding="utf-8") as stream:  # "x": never overwrite, even in a race
            stream.write(text)


def init(folder: str, project: str | None = None) -> InitReport:
    """Write a new pipelines repository into `folder` (made if missing); refuse if any of its files exists."""
    root = os.path.abspath(folder)
    if os.path.lexists(root) and not os.path.isdir(root):
        raise InitError(f"{root} exists and is not a folder", hint="pass a folder: pkg init DIR")
    if project is None:
        project, project_from, where = os.path.basename(root), ProjectSource.FOLDER, "the folder name"
    else:
        project_from, where = ProjectSource.OPTION, "--project"
    files = planned_files(project)  # in memory (and a staging folder): nothing is written before the checks
    check_project_name(project, where, [m.group(1) for m in map(EXAMPLE_ENTRY.match, files) if m])
    existing = [path for path in files if _in_the_way(root, path)]
    if existing:
        failure = InitError(
            f"{len(existing)} of the files pkg init writes already exist in {root}: " + ", ".join(existing),
            hint="pkg init never overwrites: run it in an empty folder (pkg init DIR), or move these files away",
        )
        failure.completed = {"existing": existing}
        raise failure
    try:
        _write(root, files)
    except OSError as error:
        raise InitError(
            f"can't write {error.filename}: {error.strerror}", hint="check the folder's permissions and free space"
        ) from None
    return InitReport(root, project, project_from, list(files))
