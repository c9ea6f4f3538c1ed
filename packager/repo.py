"""Where a pipelines repository and its local cache are, found without parsing any configuration."""

from __future__ import annotations

import os

from packager.errors import ConfigError

DEFAULT_CACHE_DIR = ".pkg"


def find_root(start: str) -> str:
    """The nearest folder at or above `start` whose pyproject.toml has a [tool.pkg] table."""
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            with open(candidate, "rb") as stream:
                if b"[tool.pkg" in stream.read():
                    return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            raise ConfigError(
                f"no pkg repository found at or above {os.path.abspath(start)}",
                hint="run pkg inside a repository whose pyproject.toml has a [tool.pkg] table, or pass --root DIR",
            )
        folder = parent


def cache_dir_of(root: str) -> str:
    """The local cache folder of the repo at `root`: `PKG_CACHE_DIR`, else `.pkg/` at the root."""
    return os.path.abspath(os.environ.get("PKG_CACHE_DIR") or os.path.join(root, DEFAULT_CACHE_DIR))
