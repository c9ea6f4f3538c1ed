"""Rows read from a shared index are untrusted data: each one is checked before anything uses it.

A row that fails is skipped (the caller warns once with the count); nothing in a row names a local
path that was not computed here from its validated input hash. cache/ knows no artifact kinds: the
caller passes `RowRules` (the kinds it makes, the path layouts it uses, optional checks of its own).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from cache.index import ARTIFACT_COLUMNS, PUBLISHED_COLUMNS, ArtifactRecord

__all__ = [
    "INPUT_HASH_LENGTH",
    "RowRules",
    "check_artifact_row",
    "check_published_row",
    "is_input_hash",
    "is_plain_relpath",
    "is_sha256",
    "safe_relpath",
]

INPUT_HASH_LENGTH = 32  # xxh3-128, as hex (cache/hashing.py)
_INPUT_HASH = re.compile(rf"[0-9a-f]{{{INPUT_HASH_LENGTH}}}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def is_input_hash(value: object) -> bool:
    """Whether `value` is an input hash as pkg computes them (lower-case hex, fixed length)."""
    return isinstance(value, str) and _INPUT_HASH.match(value) is not None


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.match(value) is not None


def safe_relpath(cache_dir: str, relpath: object, input_hash: str) -> bool:
    """Whether `relpath` may be followed inside `cache_dir`: relative, plain names only (no `..`,
    no absolute path, no hidden file), naming the row's input hash, and not leaving the folder
    through a symlink."""
    if not isinstance(relpath, str) or not is_input_hash(input_hash):
        return False
    parts = relpath.split("/")
    if len(parts) < 2 or not all(_PART.match(part) for part in parts) or input_hash not in relpath:
        return False
    root = _real_root(cache_dir)
    # The names are plain: only a symlink below the root can lead out. One lstat per name (a build
    # checks thousands of files) instead of resolving the whole path each time.
    path = root
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            return os.path.realpath(os.path.join(root, relpath)).startswith(root + os.sep)
    return True


def is_plain_relpath(relpath: object) -> bool:
    """Whether `relpath` (read from a file the shared cache may have served) stays below the folder it
    is joined to: relative, `/`-separated, no empty, `.` or `..` part, no backslash nor NUL."""
    if not isinstance(relpath, str) or not relpath or relpath.startswith("/") or "\\" in relpath or "\0" in relpath:
        return False
    return all(part not in ("", ".", "..") for part in relpath.split("/"))


@functools.lru_cache(maxsize=64)
def _real_root(cache_dir: str) -> str:
    """The cache folder's real path, resolved once per process."""
    return os.path.realpath(cache_dir)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_object(text: object) -> dict | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _timestamp(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@dataclass(frozen=True)
class RowRules:
    """What the caller accepts in a shared index row.

    `layouts`: where an artifact of each kind may live, as templates over `{hash}` and `{hh}` (its
    first two characters), e.g. "store/{hh}/{hash}.zip"; a row's path must be one of them exactly.
    `check_meta(kind, meta)` and `check_details(resource_id, details)` may refuse a row's JSON.
    """

    layouts: dict[str, tuple[str, ...]]
    check_meta: Callable[[str, dict], bool] | None = None
    check_details: Callable[[str, dict], bool] | None = None

    def paths(self, kind: str, input_hash: str) -> tuple[str, ...]:
        """The paths an artifact of `kind` and `input_hash` may have."""
        return tuple(layout.format(hash=input_hash, hh=input_hash[:2]) for layout in self.layouts.get(kind, ()))

    def input_hash_of(self, relpath: str) -> str | None:
        """The input hash of a path laid out as one of `layouts` (e.g. an object key below the shared
        cache's prefix), or None for any other path."""
        for pattern in _layout_patterns(tuple(sorted({one for many in self.layouts.values() for one in many}))):
            match = pattern.fullmatch(relpath)
            if match and match["hash"][:2] == match.groupdict().get("hh", match["hash"][:2]):
                return match["hash"]
        return None


@functools.lru_cache(maxsize=16)
def _layout_patterns(layouts: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    """Each layout template as a regular expression capturing `hash` (and `hh`)."""
    patterns = []
    for layout in layouts:
        text = re.escape(layout)
        text = text.replace(re.escape("{hash}"), f"(?P<hash>[0-9a-f]{{{INPUT_HASH_LENGTH}}})", 1)
        text = text.replace(re.escape("{hh}"), "(?P<hh>[0-9a-f]{2})", 1)
        patterns.append(re.compile(text))
    return tuple(patterns)


def check_artifact_row(row: tuple[Any, ...], rules: RowRules) -> ArtifactRecord | str:
    """The record of an `artifacts` row (columns of ARTIFACT_COLUMNS), or why it is refused."""
    if len(row) != len(ARTIFACT_COLUMNS):
        return "wrong number of columns"
    input_hash, kind, path, sha256, size, unzipped_size, created, meta_text = row
    if not is_input_hash(input_hash):
        return f"input hash {str(input_hash)[:40]!r} is not {INPUT_HASH_LENGTH} hex characters"
    if not isinstance(kind, str) or kind not in rules.layouts:
        return f"{input_hash}: unknown kind {str(kind)[:40]!r}"
    if path not in rules.paths(kind, input_hash):
        return f"{input_hash}: path {str(path)[:120]!r} is not where pkg keeps a {kind}"
    if not is_sha256(sha256):
        return f"{input_hash}: sha256 is not 64 hex characters"
    if not (_is_count(size) and _is_count(unzipped_size)):
        return f"{input_hash}: sizes must be integers >= 0"
    if _timestamp(created) is None:
        return f"{input_hash}: created is not an ISO 8601 time"
    meta = _json_object(meta_text)
    if meta is None or (rules.check_meta is not None and not rules.check_meta(kind, meta)):
        return f"{input_hash}: meta is not what a {kind} records"
    return ArtifactRecord(input_hash, kind, path, sha256, size, unzipped_size, created, meta)


def check_published_row(row: tuple[Any, ...], rules: RowRules) -> dict | str:
    """A `published` row (columns of PUBLISHED_COLUMNS) as a dict, or why it is refused."""
    if len(row) != len(PUBLISHED_COLUMNS):
        return "wrong number of columns"
    values = dict(zip(PUBLISHED_COLUMNS, row, strict=True))
    for column in ("account", "region", "stage", "resource_id"):
        if not isinstance(values[column], str) or not values[column]:
            return f"publish record: {column} is not a string"
    what = f"publish record {values['resource_id'][:80]!r}"
    if values["input_hash"] != "" and not is_input_hash(values["input_hash"]):  # "": a row with no code
        return f"{what}: input hash is not empty nor {INPUT_HASH_LENGTH} hex characters"
    details = _json_object(values["details"])
    if details is None or (rules.check_details is not None and not rules.check_details(values["resource_id"], details)):
        return f"{what}: details are not what pkg records"
    if _timestamp(values["published"]) is None:  # shown to people only: merges never compare it
        return f"{what}: published is not an ISO 8601 time"
    return values
