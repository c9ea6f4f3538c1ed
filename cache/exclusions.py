"""What never goes into an artifact, nor into an input hash: caches and secrets.

One set for every walk over sources: the hashing walk (`cache.hashing.walk_tree`) and the no-op
fingerprint of `pkg build` both skip these folders. Kept apart from hashing.py so that the no-op
path can read it without paying for xxhash and dataclasses. Secret names match case-insensitively
(`.ENV` is as secret as `.env`, and macOS and Windows file systems do not tell them apart).
"""

from __future__ import annotations

import fnmatch

__all__ = [
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "SECRET_DIRS",
    "SECRET_FILES",
    "is_excluded",
    "is_secret",
    "is_secret_dir",
    "is_secret_path",
]

# Never packaged, never hashed: caches and version-control folders.
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_FILES = ("*.pyc", "*.pyo", ".DS_Store")
# Folders of credentials (compared lower-case): everything under them is left out.
SECRET_DIRS = frozenset({".aws", ".ssh", ".gnupg", ".docker", ".kube", ".azure", ".gcloud", ".terraform"})
# File names of credentials and keys (patterns lower-case, matched against the lower-cased name).
SECRET_FILES = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    ".flaskenv",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "*.gpg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pypirc",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pgpass",
    ".my.cnf",
    ".git-credentials",
    ".dockercfg",
    ".htpasswd",
    "credentials",
    "credentials.json",
    "credentials.csv",
    "client_secret*.json",
    "service-account*.json",
    "service_account*.json",
    "secrets.yaml",
    "secrets.yml",
    "secrets.json",
    "secrets.toml",
    "*.tfvars",
    "*.tfvars.json",
    "*.tfstate",
    "*.tfstate.*",
)


def is_secret(name: str) -> bool:
    """Whether a file name looks like credentials or keys (never packaged), in any letter case."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in SECRET_FILES)


def is_secret_dir(name: str) -> bool:
    """Whether a folder name is one that holds credentials (`.aws`, `.ssh`, ...), in any letter case."""
    return name.lower() in SECRET_DIRS


def is_secret_path(path: str) -> bool:
    """Whether a "/"-separated path names a secret file or lies inside a secret folder."""
    *folders, name = path.split("/")
    return is_secret(name) or any(is_secret_dir(folder) for folder in folders)


def is_excluded(name: str) -> bool:
    """Whether a file name is a cache artefact that never belongs in an artifact."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED_FILES)
