"""The content-addressed store: file hashing, artifact files, their SQLite index, and the shared
cache over an object store.

This package knows files, hashes, the index and objects in an object store; it knows nothing
about Lambda, Glue or EMR, nor about what its callers derive from the index.

The public API is `__all__`, importable from here or from the submodule that defines it
(`cache.hashing`, `cache.exclusions`, `cache.index`, `cache.generation`, `cache.store`, `cache.prune`,
`cache.rows`, `cache.remote`, `cache.s3`, `cache.signing`, `cache.kms`). Names load on
first use: `from cache import INDEX_NAME` costs nothing, which the no-op build relies on.
"""

from __future__ import annotations

# typing costs the no-op build ~2 ms it otherwise never pays; mypy reads this name as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from cache.exclusions import EXCLUDED_DIRS
    from cache.generation import read_generation
    from cache.hashing import FileDigests, SymlinkEscapeError, file_digest, input_hash, walk_tree
    from cache.kms import KmsKey
    from cache.index import ArtifactRecord, Index, PublishedRecord, utc_now
    from cache.remote import (
        ObjectStore,
        SharedArtifactMismatch,
        SharedCache,
        SharedCacheError,
        SharedCacheReadOnly,
        SharedIndexCorrupt,
        SharedIndexTooLarge,
        parse_uri,
    )
    from cache.rows import RowRules
    from cache.s3 import S3ObjectStore
    from cache.signing import PublicKey, Signer
    from cache.store import Store, sha256_file, verify, write_atomic

# File names inside a cache folder.
INDEX_NAME = "index.sqlite"

# A file modified this close to the moment it was read could change again within the filesystem's
# timestamp granularity without its stat changing ("racy git"): its stat proves nothing yet.
RACY_WINDOW_NS = 2_000_000_000

# name -> the submodule that defines it
_SOURCES = {
    "EXCLUDED_DIRS": "exclusions",
    "read_generation": "generation",
    "FileDigests": "hashing",
    "SymlinkEscapeError": "hashing",
    "file_digest": "hashing",
    "input_hash": "hashing",
    "walk_tree": "hashing",
    "ArtifactRecord": "index",
    "Index": "index",
    "PublishedRecord": "index",
    "utc_now": "index",
    "ObjectStore": "remote",
    "SharedArtifactMismatch": "remote",
    "SharedCache": "remote",
    "SharedCacheError": "remote",
    "SharedIndexCorrupt": "remote",
    "SharedIndexTooLarge": "remote",
    "parse_uri": "remote",
    "RowRules": "rows",
    "S3ObjectStore": "s3",
    "PublicKey": "signing",
    "Signer": "signing",
    "KmsKey": "kms",
    "SharedCacheReadOnly": "remote",
    "Store": "store",
    "sha256_file": "store",
    "verify": "store",
    "write_atomic": "store",
}

__all__ = [
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


def __getattr__(name: str) -> Any:
    """Load a public name from its submodule on first use (PEP 562)."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'cache' has no attribute {name!r}")
    value = getattr(__import__(f"cache.{source}", fromlist=[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
