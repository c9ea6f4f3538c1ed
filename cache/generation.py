"""The index's write generation: a random token beside the index file, replaced by every index
connection that wrote when it closes (whatever process it runs in).

Whatever a caller derives from the index (a saved build report, say) records the token it
saw and is void once the token differs: one small read, no SQLite. SQLite's own `data_version`
can't serve: it is per connection, not comparable across processes.
"""

from __future__ import annotations

import os

__all__ = ["read_generation", "new_generation"]

_SUFFIX = "-generation"


def read_generation(index_path: str) -> str | None:
    """The current generation of the index at `index_path`, or None if none was ever written."""
    try:
        with open(index_path + _SUFFIX, encoding="ascii") as stream:
            return stream.read()
    except (OSError, ValueError):
        return None


def new_generation(index_path: str) -> None:
    """Replace the generation with a new token (after a write to the index was committed)."""
    from cache.store import write_atomic  # here: store.py imports the index, which calls this

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="ascii") as stream:
            stream.write(os.urandom(16).hex())

    write_atomic(index_path + _SUFFIX, write)
