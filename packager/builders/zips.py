"""Deterministic zips: sorted entries, a fixed timestamp, normalised permissions, fixed compression.

The same files give the same bytes on any machine and at any checkout time, so the same input
hash gives the same sha256 and the same Lambda CodeSha256.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packager.errors import UnsafeArchiveError

if TYPE_CHECKING:
    from zipfile import ZipFile

# The earliest time a zip can hold; any fixed value works, this one says "not a real date".
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
STORED = 0  # a PreparedEntry "level": kept as is (data that doesn't compress)
# Bounds on what a zip adds around file data: per entry, the local header (30) and central header
# (46) plus the name twice (counted by the caller) and room for zip64 extras; per archive, the end
# records (zip64 included) and a margin.
ENTRY_OVERHEAD = 30 + 46 + 40
ARCHIVE_OVERHEAD = 22 + 56 + 20 + 1024


@dataclass(frozen=True)
class ZipEntry:
    """A file to put into a zip under `arcname`."""

    arcname: str
    abspath: str


@dataclass(frozen=True)
class PreparedEntry:
    """A file whose zip data is ready: deflated once, when it was measured, into `data`.

    `level` is the deflate level of `data` (zlib raw deflate, as zipfile makes it), or STORED, in
    which case `data` is the file itself.
    """

    arcname: str
    abspath: str  # the file: its mode bits
    data: str
    size: int
    zsize: int
    crc: int
    level: int


def normalised_mode(path: str) -> int:
    """0o755 for files anyone may execute, 0o644 otherwise: owner, umask and checkout don't matter."""
    mode = os.stat(path).st_mode
    return 0o755 if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else 0o644


def write_deterministic_zip(path: str, entries: list[ZipEntry]) -> int:
    """Write `entries` to a new zip at `path`, sorted by name; return the total unzipped size."""
    import shutil
    import zipfile  # here, not at the top: a no-op build never writes a zip and skips the import

    unzipped = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        for entry in sorted(entries, key=lambda e: e.arcname):
            info = zipfile.ZipInfo(entry.arcname, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # Unix, whatever builds it, so the mode bits below are honoured
            info.external_attr = (stat.S_IFREG | normalised_mode(entry.abspath)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # else ZipFile.open ignores the level
            size = os.path.getsize(entry.abspath)
            info.file_size = size
            unzipped += size
            with open(entry.abspath, "rb") as source, archive.open(info, "w", force_zip64=size > 0x7FFFFFFF) as dest:
                shutil.copyfileobj(source, dest, 1 << 20)
    return unzipped


def write_prepared_zip(path: str, entries: list[PreparedEntry]) -> int:
    """Write a zip of already-compressed entries, sorted by name; return the total unzipped size.

    The bytes are those `write_deterministic_zip` writes for the same data, level and mode (a test
    compares them), without compressing anything again: this follows what ZipFile.open(..., "w")
    does on a seekable file (header with the final sizes and CRC, then the data).
    """
    import shutil
    import zipfile

    unzipped = 0
    with zipfile.ZipFile(path, "w") as archive:
        out = archive.fp
        assert out is not None  # a ZipFile opened for writing has its file
        for entry in sorted(entries, key=lambda e: e.arcname):
            info = zipfile.ZipInfo(entry.arcname, date_time=FIXED_DATE_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | normalised_mode(entry.abspath)) << 16
            info.compress_type = zipfile.ZIP_STORED if entry.level == STORED else zipfile.ZIP_DEFLATED
            info.file_size, info.compress_size, info.CRC = entry.size, entry.zsize, entry.crc
            info.flag_bits = 0
            zip64 = entry.size > 0x7FFFFFFF or entry.size * 1.05 > zipfile.ZIP64_LIMIT
            info.header_offset = out.tell()
            archive._writecheck(info)  # type: ignore[attr-defined]
            archive._didModify = True  # type: ignore[attr-defined]
            out.write(info.FileHeader(zip64))
            with open(entry.data, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
            archive.start_dir = out.tell()
            archive.filelist.append(info)
            archive.NameToInfo[info.filename] = info
            unzipped += entry.size
    return unzipped


_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def unsafe_member(name: str) -> str | None:
    """Why a zip member's name could land outside the folder it is extracted into, or None if it can't."""
    if "\\" in name:
        return "holds a backslash (a path separator on Windows)"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE_LETTER.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "climbs out of its folder with '..'"
    if "\x00" in name:
        return "holds a NUL character"
    return None


def check_members(archive: str, names: Iterable[str]) -> None:
    """Refuse an archive (named `archive` in the error) with any member that could escape its folder (zip-slip)."""
    for name in names:
        if (reason := unsafe_member(name)) is not None:
            raise UnsafeArchiveError(
                f"{archive}: member {name!r} {reason}; refusing to use it",
                hint="the archive is malformed or malicious: remove the requirement or get the package elsewhere",
            )


def extract_checked(archive: ZipFile, target: str, label: str) -> None:
    """Extract every member of `archive` under `target`, after checking that none can leave it."""
    check_members(label, archive.namelist())
    archive.extractall(target)
