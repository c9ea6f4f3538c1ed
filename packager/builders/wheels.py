"""Wheels for Glue and EMR jobs: requirement sets, platform wheel downloads, a pure wheel of
internal_libs, and an installed-folder archive for Spark's `spark.archives`.

Glue installs what `--additional-python-modules` lists, so it wants the platform *wheels*
themselves (`pip download --only-binary=:all: --platform ...`). EMR has no installer: the same
wheels are unpacked into one folder (purelib/platlib at its root) and archived, and Spark unpacks
that archive beside the driver and every executor.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass

from packager.builders.zips import COMPRESS_LEVEL, FIXED_DATE_TIME
from packager.errors import PkgError

# The internal_libs wheel's name and version; the S3 key holds the content hash, so the version needn't.
INTERNAL_LIBS_DIST = "internal_libs"
INTERNAL_LIBS_VERSION = "0.0.0"
INTERNAL_LIBS_WHEEL = f"{INTERNAL_LIBS_DIST}-{INTERNAL_LIBS_VERSION}-py3-none-any.whl"


class JobDependencyError(PkgError):
    """A job's requirements can't be satisfied with wheels for its runtime and platform."""


@dataclass(frozen=True)
class WheelTarget:
    """What wheels must fit: a CPython version and the platform tags accepted there."""

    python: str  # "3.11"
    platforms: tuple[str, ...]

    @property
    def settings(self) -> dict:
        return {"python": self.python, "platforms": list(self.platforms)}


@dataclass(frozen=True)
class IndexOptions:
    """Where wheels come from (a team mirror, or a local wheelhouse when offline)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def pip_args(self) -> list[str]:
        args = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.no_index:
            args.append("--no-index")
        return args

    @property
    def settings(self) -> dict:
        return {
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "no_index": self.no_index,
        }


def download_wheels(
    requirements: list[str], target: WheelTarget, index: IndexOptions, dest: str, cwd: str
) -> list[str]:
    """Download binary wheels for `requirements` and everything they need into `dest`; their names, sorted.

    pip runs in `cwd` (the repo root), so relative find_links resolve against the repo, not the shell.
    """
    os.makedirs(dest, exist_ok=True)
    req_file = os.path.join(dest, ".requirements.txt")
    with open(req_file, "w", encoding="utf-8") as stream:
        stream.write("\n".join(requirements) + "\n")
    command = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", target.python,
        *(arg for platform in target.platforms for arg in ("--platform", platform)),
        *index.pip_args(),
        "--dest", dest, "-r", req_file,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    os.unlink(req_file)
    if result.returncode != 0:
        missing = re.findall(r"No matching distribution found for (\S+)", result.stderr)
        what = f"no wheel of {', '.join(missing)}" if missing else "pip download failed"
        last = result.stderr.strip().splitlines()[-1:] or [""]
        raise JobDependencyError(
            f"{what} for Python {target.python} on {target.platforms[0]}: {last[0]}",
            hint="Glue and EMR compile nothing: pin a version that ships a manylinux wheel for this Python,"
            " or point find_links / index_url at a wheelhouse that has one",
        )
    return sorted(name for name in os.listdir(dest) if name.endswith(".whl"))


def _zip_info(arcname: str, mode: int):
    import zipfile

    info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # ZipFile.writestr honours the entry's own level
    return info


def write_zip_of_bytes(path: str, entries: dict[str, tuple[bytes, int]]) -> int:
    """A deterministic zip of in-memory `arcname -> (bytes, mode)` entries, sorted; returns the unzipped size."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        for arcname in sorted(entries):
            data, mode = entries[arcname]
            archive.writestr(_zip_info(arcname, mode), data)
    return sum(len(data) for data, _ in entries.values())


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_pure_wheel(path: str, files: list[tuple[str, str]]) -> int:
    """A deterministic `internal_libs-0.0.0-py3-none-any.whl` of `(arcname, abspath)` files.

    METADATA, WHEEL and RECORD are written here (no build backend), with fixed timestamps.
    """
    from packager import __version__

    entries: dict[str, tuple[bytes, int]] = {}
    for arcname, abspath in files:
        with open(abspath, "rb") as stream:
            entries[arcname] = (stream.read(), 0o644)
    dist_info = f"{INTERNAL_LIBS_DIST}-{INTERNAL_LIBS_VERSION}.dist-info"
    entries[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {INTERNAL_LIBS_DIST}\nVersion: {INTERNAL_LIBS_VERSION}\n".encode(),
        0o644,
    )
    entries[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: pkg {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n".encode(),
        0o644,
    )
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, (data, _) in sorted(entries.items()))
    entries[f"{dist_info}/RECORD"] = ((record + f"{dist_info}/RECORD,,\n").encode(), 0o644)
    return write_zip_of_bytes(path, entries)


def write_wheelhouse(path: str, wheel_dir: str, wheels: list[str]) -> int:
    """A zip holding the downloaded wheels flat (the publisher uploads each one to S3)."""
    from packager.builders.zips import ZipEntry, write_deterministic_zip

    return write_deterministic_zip(path, [ZipEntry(name, os.path.join(wheel_dir, name)) for name in wheels])


_DATA_LIB = re.compile(r"^[^/]+\.data/(purelib|platlib)/")


def write_installed_archive(path: str, wheel_dir: str, wheels: list[str]) -> int:
    """Unpack `wheels` into one folder's layout (what `pip install --target` makes) and zip it.

    purelib/platlib data go to the root, scripts/headers/data are left out (nothing on a Spark
    node runs them); `*.dist-info` stays so packages that read their own metadata still work.
    """
    import zipfile

    entries: dict[str, tuple[bytes, int]] = {}
    for name in wheels:
        with zipfile.ZipFile(os.path.join(wheel_dir, name)) as wheel:
            for info in wheel.infolist():
                if info.is_dir():
                    continue
                arcname = _DATA_LIB.sub("", info.filename)
                if re.match(r"^[^/]+\.data/", arcname) or "__pycache__/" in arcname:
                    continue
                mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                entries[arcname] = (wheel.read(info), mode)
    return write_zip_of_bytes(path, entries)
