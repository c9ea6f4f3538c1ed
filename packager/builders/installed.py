"""An installed dependency tree -> its distributions, their files and sizes, made lean for Lambda.

Files belong to the distribution whose `*.dist-info/RECORD` lists them (the dist-info folder itself
included, and kept: packages read their own metadata). Caches (`__pycache__`, `*.pyc`) and console
scripts (`bin/`, whose shebangs name the build machine's Python) are never packaged.
"""

from __future__ import annotations

import csv
import os
import shutil
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cache.hashing import file_digest
from packager.builders.installer import Platform, tag_problem
from packager.builders.requirements import canonical_name
from packager.builders.zips import COMPRESS_LEVEL, ENTRY_OVERHEAD, STORED
from packager.errors import DependencyError

_SAMPLE = 256 * 1024
_BLOCK = 1 << 20
# For a file too big for a layer chunk at COMPRESS_LEVEL (a large native library: polars' is 177 MB).
BEST_LEVEL = 9


@dataclass
class InstalledFile:
    """One file of an installed tree; `zsize` bounds its deflated size inside a layer zip."""

    relpath: str  # relative to the python/ folder of the layer
    size: int
    digest: str = ""
    zsize: int = 0
    level: int = COMPRESS_LEVEL  # STORED for data that doesn't compress, BEST_LEVEL for a file too big otherwise
    crc: int = 0

    @property
    def hashed_name(self) -> str:
        """Its name in a chunk's input hash: the deflate level shapes the zip's bytes too."""
        name = f"python/{self.relpath}"
        return name if self.level == COMPRESS_LEVEL else f"{name}\0level={self.level}"

    @property
    def zip_cost(self) -> int:
        """Bytes this file adds to a layer zip, at most."""
        return self.zsize + ENTRY_OVERHEAD + 2 * len(("python/" + self.relpath).encode())


@dataclass
class Distribution:
    """One installed distribution (or, for files no RECORD claims, one top-level name)."""

    name: str  # canonical
    version: str
    files: list[InstalledFile] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def zip_cost(self) -> int:
        return sum(f.zip_cost for f in self.files)

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


# Installer bookkeeping that differs from one install to the next (timestamps, local paths).
_VOLATILE_METADATA = ("uv_cache.json", "direct_url.json")


def _excluded(relpath: str) -> bool:
    parts = relpath.split("/")
    if len(parts) == 1 and parts[0].startswith("."):  # uv's .lock at the root of --target
        return True
    if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in _VOLATILE_METADATA:
        return True
    return parts[0] == "bin" or "__pycache__" in parts or relpath.endswith((".pyc", ".pyo"))


def _rewrite_record(path: str) -> None:
    """Drop the lines of files that are not packaged from a RECORD, so it matches the layer and
    doesn't carry the digest of a volatile file."""
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    kept = [row for row in rows if row and not _excluded(os.path.normpath(row[0]).replace(os.sep, "/"))]
    if len(kept) != len(rows):
        with open(path, "w", newline="", encoding="utf-8") as stream:
            csv.writer(stream, lineterminator="\n").writerows(kept)


def _metadata(dist_info: str) -> tuple[str, str]:
    name = version = ""
    try:
        with open(os.path.join(dist_info, "METADATA"), encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
    except FileNotFoundError:
        pass
    if not name:  # <name>-<version>.dist-info
        name, _, version = os.path.basename(dist_info)[: -len(".dist-info")].partition("-")
    return canonical_name(name), version


def _wheel_tags(dist_info: str) -> list[str]:
    try:
        with open(os.path.join(dist_info, "WHEEL"), encoding="utf-8") as stream:
            return [line.split(":", 1)[1].strip() for line in stream if line.startswith("Tag:")]
    except FileNotFoundError:
        return []


def scan_tree(top: str) -> list[Distribution]:
    """Every distribution installed under `top`, with the packageable files each owns, sorted by name.

    RECORD files are rewritten to list only what is packaged (see `_rewrite_record`).
    """
    on_disk: dict[str, int] = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel_folder = os.path.relpath(folder, top).replace(os.sep, "/")
        for name in files:
            relpath = name if rel_folder == "." else f"{rel_folder}/{name}"
            path = os.path.join(folder, name)
            if os.path.islink(path) or _excluded(relpath):
                continue
            on_disk[relpath] = os.path.getsize(path)
    dists: dict[str, Distribution] = {}
    claimed: set[str] = set()
    for entry in sorted(os.listdir(top)):
        if not entry.endswith(".dist-info"):
            continue
        dist_info = os.path.join(top, entry)
        record = os.path.join(dist_info, "RECORD")
        if os.path.isfile(record):
            _rewrite_record(record)
            on_disk[f"{entry}/RECORD"] = os.path.getsize(record)
        name, version = _metadata(dist_info)
        dist = dists.setdefault(name, Distribution(name, version, tags=_wheel_tags(dist_info)))
        owned: set[str] = {path for path in on_disk if path.startswith(entry + "/")}
        try:
            with open(os.path.join(dist_info, "RECORD"), newline="", encoding="utf-8") as stream:
                for row in csv.reader(stream):
                    if row:
                        path = os.path.normpath(row[0]).replace(os.sep, "/")
                        if path in on_disk:
                            owned.add(path)
        except FileNotFoundError:
            pass
        owned -= claimed
        claimed |= owned
        dist.files.extend(InstalledFile(path, on_disk[path]) for path in sorted(owned))
    for relpath in sorted(set(on_disk) - claimed):
        top_name = relpath.split("/")[0]
        dists.setdefault(top_name, Distribution(top_name, "")).files.append(InstalledFile(relpath, on_disk[relpath]))
    return sorted(dists.values(), key=lambda d: d.name)


def check_tags(dists: list[Distribution], platform: Platform, label: str) -> None:
    """Refuse any installed wheel whose tags don't fit the platform (a safety net behind the installer)."""
    for dist in dists:
        if dist.tags:
            problem = tag_problem(dist.tags, platform)
            if problem:
                raise DependencyError(
                    f"{label}: {dist.label}: {problem}",
                    hint="pin a version with a manylinux wheel for this runtime, or change the runtime/architecture",
                )


def stream_name(digest: str, level: int) -> str:
    """The file name of a file's deflated data in an install's streams folder."""
    return f"{digest}.{level}"


def _incompressible(sample: bytes, level: int) -> bool:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return len(compressor.compress(sample)) + len(compressor.flush()) >= len(sample) * 0.98


def _deflate(path: str, level: int, out: str) -> tuple[int, int, int]:
    """(size in the zip, level, CRC-32) of `path`, its raw deflate stream written to `out`.

    A file whose first 256 kB don't shrink (already-compressed data) is STORED instead: its size
    in the zip is its own size, and nothing is written to `out`.
    """
    crc = total = 0
    with open(path, "rb") as source:
        block = source.read(_SAMPLE)
        if len(block) == _SAMPLE and _incompressible(block, level):
            while block:
                crc = zlib.crc32(block, crc)
                total += len(block)
                block = source.read(_BLOCK)
            return total, STORED, crc
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        with open(out, "wb") as sink:
            while block:
                crc = zlib.crc32(block, crc)
                data = compressor.compress(block)
                sink.write(data)
                total += len(data)
                block = source.read(_BLOCK)
            data = compressor.flush()
            sink.write(data)
            total += len(data)
    return total, level, crc


def _deflate_into(path: str, digest: str, level: int, streams: str) -> tuple[int, int, int]:
    """`_deflate` into `streams/<digest>.<level>`, written under a temporary name first."""
    scratch = os.path.join(streams, f".{digest}.{level}.tmp-{threading.get_ident()}")
    try:
        result = _deflate(path, level, scratch)
        if result[1] != STORED:
            os.replace(scratch, os.path.join(streams, stream_name(digest, level)))
        return result
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


def measure(
    top: str,
    dists: list[Distribution],
    streams: str,
    file_budget: int,
    known: dict[str, tuple[list[int], str]] | None = None,
) -> None:
    """Compress every file once, into `streams/`, and fill in its digest, size in the zip, level and CRC.

    The layer chunks are written from these streams later without compressing again. A file over
    `file_budget` at the usual level is deflated at BEST_LEVEL instead, which may fit it. `known`
    maps a digest to ([zsize, level, crc], its stream) from an earlier install of the same group, so
    a reinstall after a one-package bump compresses only the files that changed. Runs in threads
    (hashing, zlib and I/O release the GIL).
    """
    known = known or {}
    os.makedirs(streams, exist_ok=True)
    files = [f for dist in dists for f in dist.files]

    def fill(item: InstalledFile) -> None:
        path = os.path.join(top, item.relpath)
        item.digest = file_digest(path)
        hit = known.get(item.digest)
        if hit is not None:
            (zsize, level, crc), stream = hit
            target = os.path.join(streams, stream_name(item.digest, level))
            if level == STORED or _link(stream, target):
                item.zsize, item.level, item.crc = zsize, level, crc
                return
        item.zsize, item.level, item.crc = _deflate_into(path, item.digest, COMPRESS_LEVEL, streams)
        if item.level == COMPRESS_LEVEL and item.zip_cost > file_budget:
            zsize, level, crc = _deflate_into(path, item.digest, BEST_LEVEL, streams)
            if level == BEST_LEVEL and zsize < item.zsize:
                os.unlink(os.path.join(streams, stream_name(item.digest, COMPRESS_LEVEL)))
                item.zsize, item.level, item.crc = zsize, level, crc
            elif level == BEST_LEVEL:
                os.unlink(os.path.join(streams, stream_name(item.digest, BEST_LEVEL)))

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        list(pool.map(fill, files))


def _link(source: str, target: str) -> bool:
    """Hard-link (or copy) an earlier install's stream; False if it is gone."""
    if os.path.exists(target):
        return True
    try:
        os.link(source, target)
    except FileExistsError:
        return True
    except FileNotFoundError:
        return False
    except OSError:
        shutil.copyfile(source, target)
    return True
