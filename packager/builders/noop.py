"""The no-op fast path of `pkg build`: when nothing under src/ (nor the config, nor any other input
file) has changed since a build that left everything cached, answer from that build's report.

The check stats files and folders; it parses no configuration, reads no source, opens no index and
imports none of the builder, so a no-op costs little more than the interpreter's start-up.

It is safe because:
- the fingerprint covers the size, mtime, ctime and inode of every file and folder under src/ (but
  the folders no artifact includes: `cache.exclusions.EXCLUDED_DIRS`, as hashing skips them), of
  pyproject.toml and of every file a requirements file includes from outside src/; it is taken
  *before* the build it describes, so a change made during that build shows up next time;
- the index file must be the one the answer was saved beside (a deleted index voids it);
- it is not saved when any of those changed within 2 s of being read (the timestamp-granularity
  "racy git" window), nor when the build left warnings for a human to read again;
- any write to the index (a build, a publish, `pkg cache verify --repair`, a pull), from any process,
  voids it: the answer records the index's generation (cache/generation.py), which every index
  connection that wrote replaces when it closes;
- every artifact file of the report must still be in the store with its recorded size.
"""

from __future__ import annotations

import json
import os
import re
import time

from cache import INDEX_NAME, RACY_WINDOW_NS
from cache.exclusions import EXCLUDED_DIRS
from cache.generation import read_generation
from packager import BUILD_FORMAT_VERSION, __version__

# The saved answer, in the cache folder.
SUMMARY_NAME = "last-build.json"
SUMMARY_FORMAT = 2


def _stat_line(path: str, rel: str) -> tuple[str, int]:
    """"rel size mtime ctime inode", and the newest of its times."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{rel} -", 0
    return f"{rel} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}", max(st.st_mtime_ns, st.st_ctime_ns)


def _index_identity(cache_dir: str) -> int | None:
    """The index file's inode: a deleted or replaced index means nothing recorded can be trusted."""
    try:
        return os.stat(os.path.join(cache_dir, INDEX_NAME)).st_ino
    except FileNotFoundError:
        return None


def fingerprint(root: str, extra_files: list[str]) -> tuple[str, int]:
    """A digest of the stat of every input of a build, and the newest timestamp among them."""
    import hashlib

    lines = [f"pkg {__version__} format {BUILD_FORMAT_VERSION}/{SUMMARY_FORMAT}"]
    newest = 0
    for rel in ["pyproject.toml", *sorted(extra_files)]:
        line, stamp = _stat_line(os.path.join(root, rel), rel)
        lines.append(line)
        newest = max(newest, stamp)

    walked: set[str] = set()

    def walk(folder: str, rel: str) -> None:
        nonlocal newest
        real = os.path.realpath(folder)
        if real in walked:  # a symlink back up the tree
            return
        walked.add(real)
        line, stamp = _stat_line(folder, rel + "/")
        lines.append(line)
        newest = max(newest, stamp)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            child = f"{rel}/{entry.name}"
            if entry.is_dir():  # a linked folder too: the build packages what it holds
                if entry.name not in EXCLUDED_DIRS:  # what no artifact includes is no input either
                    walk(entry.path, child)
            else:
                try:
                    st = entry.stat()  # follows symlinks: a link's target is the input
                except FileNotFoundError:
                    lines.append(f"{child} dangling")
                    continue
                lines.append(f"{child} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}")
                newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)

    walk(os.path.join(root, "src"), "src")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), newest


def summary_path(cache_dir: str) -> str:
    """Where the saved answer of the cache folder `cache_dir` is."""
    return os.path.join(cache_dir, SUMMARY_NAME)


def answer(root: str, cache_dir: str) -> dict | None:
    """The last build's summary (`report`, `warnings`) if nothing changed since and its artifacts are in place."""
    try:
        with open(summary_path(cache_dir), encoding="utf-8") as stream:
            summary = json.load(stream)
    except (OSError, ValueError):
        return None
    if summary.get("format") != SUMMARY_FORMAT:
        return None
    if summary["index"] != _index_identity(cache_dir) or summary["index"] is None:
        return None
    if summary["generation"] != read_generation(os.path.join(cache_dir, INDEX_NAME)):
        return None  # the index was written since
    if fingerprint(root, summary["extra_files"])[0] != summary["fingerprint"]:
        return None
    for artifact in summary["report"]["artifacts"]:
        try:
            if os.stat(artifact["path"]).st_size != artifact["size"]:
                return None
        except (OSError, TypeError):
            return None
    return summary


_INCLUDE = re.compile(r"(?:-r|--requirement|-c|--constraint)[\s=]+(\S+)")


def requirement_includes(root: str) -> list[str]:
    """Files outside src/ that a requirements file under src/ includes (`-r`, `-c`), repo-relative."""
    found: set[str] = set()
    todo = [
        os.path.join(folder, name)
        for folder, dirs, files in os.walk(os.path.join(root, "src"))
        for name in files
        if name == "requirements.txt" or name.endswith(".requirements.txt")
    ]
    seen: set[str] = set()
    while todo:
        path = os.path.normpath(todo.pop())
        if path in seen:
            continue
        seen.add(path)
        rel = os.path.relpath(path, root)
        if not rel.startswith("src" + os.sep):
            found.add(rel)
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
        except OSError:
            continue
        todo += [os.path.join(os.path.dirname(path), m) for m in _INCLUDE.findall(text)]
    return sorted(found)


def take(root: str) -> tuple[str, int, list[str], int]:
    """Fingerprint the inputs now, before a build: (digest, newest timestamp, extra files, when)."""
    started = time.time_ns()
    extra = requirement_includes(root)
    digest, newest = fingerprint(root, extra)
    return digest, newest, extra, started


def remember(cache_dir: str, taken: tuple[str, int, list[str], int], summary: dict) -> None:
    """Save `summary` (the report of an all-cached build, its warnings) as the answer for what `take` saw."""
    digest, newest, extra_files, started = taken
    if started - newest < RACY_WINDOW_NS:
        return  # an input changed too recently for its stat to be trusted
    from cache.store import write_atomic

    document = {
        "format": SUMMARY_FORMAT,
        "fingerprint": digest,
        "extra_files": extra_files,
        "index": _index_identity(cache_dir),
        "generation": read_generation(os.path.join(cache_dir, INDEX_NAME)),
        **summary,
    }

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as stream:
            json.dump(document, stream)

    write_atomic(summary_path(cache_dir), write)


def forget(cache_dir: str) -> None:
    """Drop the saved answer."""
    try:
        os.unlink(summary_path(cache_dir))
    except FileNotFoundError:
        pass
