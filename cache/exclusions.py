"""What never goes into an artifact, nor into an input hash: caches and secrets.

One set for every walk over sources: the hashing walk (`cache.hashing.walk_tree`) and the no-op
fingerprint of `pkg build` both skip these folders. Kept apart from hashing.py so that the no-op
path can read it without paying for xxhash and dataclasses.
"""

from __future__ import annotations

import fnmatch

__all__ = ["EXCLUDED_DIRS", "EXCLUDED_FILES", "SECRET_FILES", "is_excluded", "is_secret"]

# Never packaged, never hashed: caches and version-control folders.
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_FILES = ("*.pyc", "*.pyo", ".DS_Store")
SECRET_FILES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
)


def is_secret(name: str) -> bool:
    """Whether a file name looks like credentials or keys (never packaged)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_FILES)


def is_excluded(name: str) -> bool:
    """Whether a file name is a cache artefact that never belongs in an artifact."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED_FILES)
