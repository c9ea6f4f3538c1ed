"""cache/ is a generic store with a public API: `cache.__all__`, pinned here. packager/ imports
from cache only public names, from `cache` itself or from the submodule that defines them (each
submodule declares its own `__all__`). cache/ imports nothing of packager, and only cache/s3.py
and cache/kms.py (the object store and the signing key) import boto3."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import cache

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = [
    "INDEX_NAME",
    "RACY_WINDOW_NS",
    "EXCLUDED_DIRS",
    "read_generation",
    "FileDigests",
    "SymlinkEscapeError",
    "file_digest",
    "input_hash",
    "walk_tree",
    "ArtifactRecord",
    "Index",
    "PublishedRecord",
    "utc_now",
    "ObjectStore",
    "SharedArtifactMismatch",
    "SharedCache",
    "SharedCacheError",
    "SharedCacheReadOnly",
    "SharedIndexCorrupt",
    "SharedIndexTooLarge",
    "parse_uri",
    "RowRules",
    "PublicKey",
    "Signer",
    "S3ObjectStore",
    "KmsKey",
    "Store",
    "sha256_file",
    "verify",
    "write_atomic",
]

# The submodules callers may import from.
SUBMODULES = [
    "exclusions", "generation", "hashing", "index", "kms", "prune", "remote", "rows", "s3", "signing", "store"
]  # fmt: skip


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every absolute import in a file; names are empty for `import module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
    return found


def test_the_public_api_is_pinned():
    assert cache.__all__ == PUBLIC


def test_every_public_name_loads_from_cache_and_is_its_submodules_own():
    for name in cache.__all__:
        value = getattr(cache, name)
        owner = getattr(value, "__module__", None)
        if owner is not None and owner.startswith("cache."):
            module = importlib.import_module(owner)
            assert name in module.__all__, f"{name} is not public in {owner}"
            assert getattr(module, name) is value


def test_every_documented_submodule_declares_what_it_exports():
    modules = sorted(p.stem for p in (ROOT / "cache").glob("*.py") if p.stem != "__init__")
    assert modules == SUBMODULES
    for name in SUBMODULES:
        module = importlib.import_module(f"cache.{name}")
        assert module.__all__, name
        for public in module.__all__:
            assert hasattr(module, public), f"cache.{name}.__all__ names a missing {public}"


def test_packager_imports_only_public_names_of_cache():
    wrong = []
    for path in sorted((ROOT / "packager").rglob("*.py")):
        for module, names, line in imports_of(path):
            if module.split(".")[0] != "cache":
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            if not names:
                wrong.append(f"{where}: `import {module}` (use `from cache import NAME`)")
                continue
            if module != "cache" and module.removeprefix("cache.") not in SUBMODULES:
                wrong.append(f"{where}: {module} is not a public module of cache")
                continue
            public = importlib.import_module(module).__all__
            wrong += [f"{where}: {module}.{name} is not public" for name in names if name not in public]
    assert wrong == []


def test_cache_knows_no_service_and_only_s3_and_kms_import_boto3():
    for path in sorted((ROOT / "cache").glob("*.py")):
        modules = {module for module, _names, _line in imports_of(path)}
        assert not {m for m in modules if m.split(".")[0] == "packager"}, path.name
        if path.name not in ("s3.py", "kms.py"):
            assert not {m for m in modules if m.split(".")[0] in ("boto3", "botocore")}, path.name
        assert "last-build" not in path.read_text(), path.name  # the no-op answer is packager's

