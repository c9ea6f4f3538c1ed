"""The shared cache under the names packager/shared.py and packager/cli.py import today.

The logic is in cache/remote.py (over any ObjectStore) and cache/s3.py (the S3 one); this module
only re-exports it, with `s3_client` the S3 object store that `SharedCache(uri, …, store)` expects.
"""

from __future__ import annotations

from cache.remote import SharedArtifactMismatch, SharedCache, SharedCacheError, SharedIndexCorrupt, parse_uri
from cache.s3 import S3ObjectStore

__all__ = ["SharedArtifactMismatch", "SharedCache", "SharedCacheError", "SharedIndexCorrupt", "parse_uri", "s3_client"]

s3_client = S3ObjectStore.connect
