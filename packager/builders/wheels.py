"""Wheels for Glue and EMR jobs: requirement sets, platform wheel downloads, a pure wheel of
internal_libs, and an installed-folder archive for Spark's `spark.archives`.

Glue installs what `--additional-python-modules` lists, so it wants the platform *wheels*
themselves: uv resolves them where it is installed (as for Lambda layers), else
`pip download --only-binary=:all: --platform ...` fetches them. EMR has no installer: the same
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

from packager.builders.installer import (
    PIP_ISOLATED,
    UV_NO_CONFIG,
    IndexOptions,
    Platform,
    chosen_uv,
    isolated_env,
)
from packager.builders.resolver_errors import Cause, classify, skipped_wheels
from packager.builders.zips import COMPRESS_LEVEL, FIXED_DATE_TIME, check_members
from packager.errors import JobDependencyError, UnsafeArchiveError

# The internal_libs wheel's name and version; the S3 key holds the content hash, so the version needn't.
INTERNAL_LIBS_DIST = "internal_libs"
INTERNAL_LIBS_VERSION = "0.0.0"
INTERNAL_LIBS_WHEEL = f"{INTERNAL_LIBS_DIST}-{INTERNAL_LIBS_VERSION}-py3-none-any.whl"


def download_wheels(
    requirements: list[str],
    platform: Platform,
    index: IndexOptions,
    dest: str,
    cwd: str,
    sources: tuple[str, ...] = (),
) -> list[str]:
    """Download binary wheels for `requirements` and everything they need into `dest`; their names, sorted.

    uv resolves (`installer` as for Lambda layers), else `pip download` does it all. Both run in
    `cwd` (the repo root), so relative find_links resolve against the repo, not the shell. When a
    wheel uv chose can't be fetched, pip does the whole set: it knows the index credentials (netrc,
    keyring) a plain download does not. `sources` (the user's requirements files, repo-relative)
    let a resolver failure name the file and line (`resolution_failure`).
    """
    os.makedirs(dest, exist_ok=True)
    req_file = os.path.join(dest, ".requirements.txt")
    with open(req_file, "w", encoding="utf-8") as stream:
        stream.write("\n".join(requirements) + "\n")
    try:
        uv = chosen_uv(index)
        if not uv or not _uv_download(uv, req_file, platform, index, dest, cwd, sources):
            for name in os.listdir(dest):
                if name.endswith(".whl"):
                    os.unlink(os.path.join(dest, name))
            _pip_download(req_file, platform, index, dest, cwd, sources)
    finally:
        os.unlink(req_file)
    wheels = sorted(name for name in os.listdir(dest) if name.endswith(".whl"))
    for name in wheels:  # a wheel is read from an index: checked before anything unpacks or ships it
        check_wheel(os.path.join(dest, name))
    return wheels


def check_wheel(path: str) -> None:
    """Refuse a wheel (UnsafeArchiveError naming it and the member) whose member names could escape a folder."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as wheel:
            names = wheel.namelist()
    except zipfile.BadZipFile:
        raise UnsafeArchiveError(
            f"{os.path.basename(path)}: not a zip archive; refusing to use it",
            hint="the download is damaged: build again, or check the index it came from",
        ) from None
    check_members(os.path.basename(path), names)


def _pip_download(
    req_file: str, platform: Platform, index: IndexOptions, dest: str, cwd: str, sources: tuple[str, ...] = ()
) -> None:
    command = [
        sys.executable, "-m", "pip", "download", PIP_ISOLATED,
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", platform.runtime.python,
        *(arg for tag in platform.tags for arg in ("--platform", tag)),
        *index.index_args(cwd),
        "--dest", dest, "-r", req_file,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=isolated_env())
    if result.returncode != 0:
        skipped = None
        if "(from versions:" in result.stderr:
            # "from versions: none" is both an unknown name and wheels of other platforms only: -vv tells.
            verbose = [arg if arg != "--quiet" else "-vv" for arg in command]
            again = subprocess.run(verbose, capture_output=True, text=True, cwd=cwd, env=isolated_env())
            skipped = skipped_wheels(again.stdout + again.stderr)
        raise resolution_failure(result.stderr, platform, index, sources, cwd, skipped)


def _uv_download(
    uv: str, req_file: str, platform: Platform, index: IndexOptions, dest: str, cwd: str, sources: tuple[str, ...] = ()
) -> bool:
    """Resolve with `uv pip compile` into a pylock.toml, then fetch the best-fitting wheel of each package.

    False when a wheel could not be fetched from where the lock file says it is.
    """
    import tomllib

    lock = os.path.join(dest, "pylock.toml")  # uv wants this name for the pylock format
    command = [
        uv, "pip", "compile", UV_NO_CONFIG, req_file, "--format", "pylock.toml", "--output-file", lock,
        # This Python, told the target's version: else uv searches the machine for a CPython of it.
        "--python", sys.executable,
        "--python-platform", platform.uv_platform, "--python-version", platform.runtime.python,
        "--only-binary", ":all:", "--no-header", "--quiet", "--no-progress", "--color", "never",
        *index.index_args(cwd),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=isolated_env())
    if result.returncode != 0:
        raise resolution_failure(result.stderr + result.stdout, platform, index, sources, cwd)
    with open(lock, "rb") as stream:
        packages = tomllib.load(stream).get("packages", [])
    os.unlink(lock)
    for package in packages:
        wheels = package.get("wheels", [])
        best = best_wheel([_wheel_name(wheel) for wheel in wheels], platform)
        if best is None:
            raise _download_failure([package["name"]], "", platform, "")
        if not _fetch_wheel(wheels[best], dest, os.path.dirname(lock)):
            return False
    return True


def _download_failure(
    missing: list[str], output: str, platform: Platform, fallback: str, where: str = ""
) -> JobDependencyError:
    what = f"no wheel of {', '.join(missing)}" if missing else fallback
    last = output.strip().splitlines()[-1:] or [""]
    return JobDependencyError(
        f"{where + ': ' if where else ''}{what} for Python {platform.runtime.python} on {platform.tags[0]}"
        + (f": {last[0]}" if last[0] else ""),
        hint="Glue and EMR compile nothing: pin a version that ships a manylinux wheel for this Python,"
        " or point find_links / index_url at a wheelhouse that has one",
    )


def resolution_failure(
    output: str,
    platform: Platform,
    index: IndexOptions,
    sources: tuple[str, ...],
    root: str,
    skipped: set[tuple[str, str]] | None = None,
) -> JobDependencyError:
    """A job's set uv or pip could not resolve, by cause (resolver_errors), against the user's file and line."""
    from packager.builders.requirements import where_required

    failure = classify(output, skipped)
    package = failure.package
    label = sources[0] if sources else "the job requirements"
    where = (where_required(root, sources, package) if package else None) or label
    via = "" if where != label or package is None else f" (a dependency of a requirement in {label})"
    target = f"Python {platform.runtime.python} on {platform.tags[0]}"
    if failure.cause is Cause.UNKNOWN_PACKAGE:
        place = "the find_links folders (no_index = true)" if index.no_index else "the package index"
        return JobDependencyError(
            f"{where}: no package named '{package}' in {place}{via}",
            hint="check the spelling of the name; a private package needs its index or wheel folder"
            " (index_url, extra_index_urls, find_links)",
        )
    if failure.cause is Cause.NO_VERSION:
        available = f" (there are: {failure.versions})" if failure.versions else ""
        return JobDependencyError(
            f"{where}: no version of {package} matches {failure.specifier or 'the request'}{via}{available}",
            hint="pin a version that exists there, or loosen the specifier",
        )
    if failure.cause is Cause.NO_WHEEL:
        return _download_failure([f"{package}{via}"], "", platform, "", where)
    detail = "\n".join(line for line in output.strip().splitlines() if not line.startswith("Using ")).strip()
    return JobDependencyError(
        f"{label}: the requirements can't be resolved together for {target}" + (f"\n{detail}" if detail else ""),
        hint="loosen or align the conflicting pins shown above",
    )


def supported_tags(platform: Platform) -> list[tuple[str, str, str]]:
    """(interpreter, abi, platform) tags a CPython of `platform` accepts, best first, in pip's order."""
    python, tags = platform.runtime.python_tag, platform.tags
    minor = int(platform.runtime.python.split(".")[1])
    found = [(python, abi, tag) for abi in (python, "abi3", "none") for tag in tags]
    found += [(f"cp3{older}", "abi3", tag) for older in range(minor - 1, 1, -1) for tag in tags]
    pythons = [f"py3{minor}", "py3", *(f"py3{older}" for older in range(minor - 1, -1, -1))]
    found += [(version, "none", tag) for version in pythons for tag in tags]
    found += [(python, "none", "any")] + [(version, "none", "any") for version in pythons]
    return found


def _wheel_name(wheel: dict) -> str:
    from urllib.parse import unquote, urlparse

    location = wheel.get("url") or wheel.get("path") or ""
    return wheel.get("name") or os.path.basename(unquote(urlparse(location).path) if "url" in wheel else location)


def best_wheel(filenames: list[str], platform: Platform) -> int | None:
    """The position of the wheel pip would pick for `platform` (its most specific tag), or None if none fits."""
    ranks = {tag: rank for rank, tag in enumerate(supported_tags(platform))}
    ranked = [(rank, position) for position, name in enumerate(filenames)
              if (rank := _wheel_rank(name, ranks)) is not None]  # fmt: skip
    return min(ranked)[1] if ranked else None


def _wheel_rank(filename: str, ranks: dict[tuple[str, str, str], int]) -> int | None:
    """The best rank of the wheel's expanded tags (its name's last three fields), or None if none fits."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) < 5:
        return None
    interpreters, abis, platforms = (part.split(".") for part in parts[-3:])
    found = [ranks[(i, a, p)] for i in interpreters for a in abis for p in platforms if (i, a, p) in ranks]
    return min(found, default=None)


def _fetch_wheel(wheel: dict, dest: str, lock_folder: str) -> bool:
    """Copy or download one wheel of a pylock.toml into `dest` under its own name, checking its sha256.

    False when it can't be downloaded (an index that wants credentials, a network error).
    """
    import shutil
    import urllib.request
    from urllib.parse import unquote, urlparse

    name = _wheel_name(wheel)
    target = os.path.join(dest, name)
    if "url" in wheel and not wheel["url"].startswith("file:"):
        try:
            with urllib.request.urlopen(wheel["url"], timeout=60) as response, open(target, "wb") as stream:
                shutil.copyfileobj(response, stream)
        except OSError:  # urllib's URLError and HTTPError included
            return False
    else:
        location = unquote(urlparse(wheel["url"]).path) if "url" in wheel else wheel["path"]
        shutil.copyfile(os.path.join(lock_folder, location), target)
    expected = wheel.get("hashes", {}).get("sha256")
    if expected:
        with open(target, "rb") as stream:
            actual = hashlib.file_digest(stream, "sha256").hexdigest()
        if actual != expected:
            os.unlink(target)
            raise JobDependencyError(
                f"{name}: sha256 {actual} is not the {expected} the index announced",
                hint="the index or find_links folder changed while pkg read it; build again",
            )
    return True


def _zip_info(arcname: str, mode: int):
    import zipfile

    info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # writestr honours the entry's level
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

    check_members(os.path.basename(path), wheels)  # wheel names are members of the wheelhouse zip
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
            check_members(name, wheel.namelist())  # the archive is extracted as is on every node
            for info in wheel.infolist():
                if info.is_dir():
                    continue
                arcname = _DATA_LIB.sub("", info.filename)
                if re.match(r"^[^/]+\.data/", arcname) or "__pycache__/" in arcname:
                    continue
                mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                entries[arcname] = (wheel.read(info), mode)
    return write_zip_of_bytes(path, entries)
