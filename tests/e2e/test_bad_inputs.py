"""Bad inputs end in one `error:` line with a hint, never a traceback, and write nothing outside the cache.

Each case spoils a fresh two-function repo one way (a config value, a file name, an encoding, a link,
a requirement line, a zip member, the local index, the disk) and runs one command on it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cache.store import Store, verify
from conftest import Repo, make_repo, run_console
from jobs_fixtures import make_jobs_repo, make_wheelhouse
from wheelhouse import write_unsafe_wheel

LAMBDA_TABLE = '[tool.pkg.lambda]\nruntime = "python3.12"\narchitecture = "x86_64"\n'


@dataclass(frozen=True)
class Case:
    """One bad input: how it spoils the repo, and the command that must refuse it."""

    id: str
    spoil: Callable[[Repo, Path], None]
    args: tuple[str, ...] = ("build",)
    jobs: bool = False  # a repo with Glue and EMR jobs too (zip members come in through job dependencies)
    index_spoiled: bool = False  # the case breaks the index itself: `pkg cache verify` is expected to fail


def config(text: str) -> Callable[[Repo, Path], None]:
    """Append `text` to pyproject.toml."""

    def spoil(repo: Repo, base: Path) -> None:
        with open(repo.root / "pyproject.toml", "a") as stream:
            stream.write(text)

    return spoil


def lambda_setting(line: str) -> Callable[[Repo, Path], None]:
    """Add `line` to the [tool.pkg.lambda] table."""

    def spoil(repo: Repo, base: Path) -> None:
        path = repo.root / "pyproject.toml"
        path.write_text(path.read_text().replace(LAMBDA_TABLE, LAMBDA_TABLE + line + "\n"))

    return spoil


def replace_in_pyproject(old: str, new: str) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        path = repo.root / "pyproject.toml"
        path.write_text(path.read_text().replace(old, new))

    return spoil


def file(relpath: str | bytes, data: bytes) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        path = os.path.join(os.fsencode(repo.root), os.fsencode(relpath))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            stream.write(data)

    return spoil


def link(relpath: str, target: str | Callable[[Repo, Path], str]) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        path = repo.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target(repo, base) if callable(target) else target)

    return spoil


def requirement(line: str, relpath: str = "src/lambda/ingest.requirements.txt") -> Callable[[Repo, Path], None]:
    return file(relpath, f"# dependencies\n{line}\n".encode())


def outside_folder(name: str) -> Callable[[Repo, Path], str]:
    def make(repo: Repo, base: Path) -> str:
        folder = base / "elsewhere" / name
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("LEAKED = True\n")
        return str(folder)

    return make


def outside_file(text: str) -> Callable[[Repo, Path], str]:
    def make(repo: Repo, base: Path) -> str:
        path = base / "elsewhere.txt"
        path.write_text(text)
        return str(path)

    return make


def both(*spoils: Callable[[Repo, Path], None]) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        for each in spoils:
            each(repo, base)

    return spoil


def replace_folder_by_link(relpath: str) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        target = base / "elsewhere-folder"
        (repo.root / relpath).rename(target)
        (repo.root / relpath).symlink_to(target)

    return spoil


def deep_folders(depth: int, name_length: int = 1) -> Callable[[Repo, Path], None]:
    """`depth` nested folders of `name_length`-character names (kept under Python's recursion limit:
    pytest removes the tree with a recursive rmtree)."""

    def spoil(repo: Repo, base: Path) -> None:
        name = "d" * name_length
        folder = os.open(repo.root / "src/lambda/internal_libs", os.O_RDONLY)
        for _ in range(depth):  # relative to a folder descriptor: the whole path may be longer than PATH_MAX
            os.mkdir(name, dir_fd=folder)
            inner = os.open(name, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
        os.close(os.open("x.py", os.O_WRONLY | os.O_CREAT, dir_fd=folder))
        os.close(folder)

    return spoil


def corrupt_index(data: bytes) -> Callable[[Repo, Path], None]:
    def spoil(repo: Repo, base: Path) -> None:
        assert repo.pkg("build").exit_code == 0
        (repo.cache_dir / "index.sqlite").write_bytes(data)
        for suffix in ("-wal", "-shm"):
            Path(f"{repo.cache_dir}/index.sqlite{suffix}").unlink(missing_ok=True)

    return spoil


def unsafe_wheel_dependency(member: str) -> Callable[[Repo, Path], None]:
    """An EMR job whose only dependency is a wheel with member `member` (zip-slip)."""

    def spoil(repo: Repo, base: Path) -> None:
        wheels = make_wheelhouse(base / "wheelhouse")
        write_unsafe_wheel(wheels, "evildep", "1.0", member)
        config(f'\n[tool.pkg.emr.jobs.clean_emr]\nfind_links = ["{wheels}"]\nno_index = true\n')(repo, base)
        (repo.root / "src/emr/internal_libs/requirements.txt").write_text("evildep==1.0\n")

    return spoil


HANDLER = b"def handler(event, context):\n    return 1\n"

CASES = [
    # config values
    Case("toml-syntax", config("\n[tool.pkg\n")),
    Case("project-not-a-string", lambda r, b: r.write("pyproject.toml", '[tool.pkg]\nproject = 5\n')),
    Case("memory-not-a-number", lambda_setting('memory = "lots"')),
    Case("memory-negative", lambda_setting("memory = -1")),
    Case("timeout-too-long", lambda_setting("timeout = 100000")),
    Case("runtime-unknown", replace_in_pyproject('runtime = "python3.12"', 'runtime = "python2.7"')),
    Case("architecture-unknown", replace_in_pyproject('architecture = "x86_64"', 'architecture = "sparc"')),
    Case("stage-unknown", lambda r, b: None, ("plan", "--stage", "nosuch")),
    Case("setting-unknown", lambda_setting('colour = "blue"')),
    Case("environment-bad-name", lambda_setting('environment = { "1BAD" = "x" }')),
    Case("environment-not-a-string", lambda_setting("environment = { A = [1, 2] }")),
    Case("include-empty", lambda_setting("include = []")),
    Case("include-leaves-internal-libs", lambda_setting('include = ["../../*.py"]')),
    Case("include-not-patterns", lambda_setting("include = [1, 2]")),
    Case("pyproject-not-utf8", file("pyproject.toml", b'[tool.pkg]\nproject = "\xff"\n')),
    Case("pyproject-not-utf8-plan", file("pyproject.toml", b"[tool.pkg]\n\xfe\xff\n"), ("plan",)),
    Case("unknown-artifact", lambda r, b: None, ("build", "lambda/function/nosuch")),
    # file names
    Case("function-name-dash", file("src/lambda/bad-name.py", HANDLER)),
    Case("function-name-shadows-stdlib", file("src/lambda/json.py", HANDLER)),
    Case("function-name-not-utf8", file(b"src/lambda/bad\xffname.py", HANDLER)),
    Case("libs-file-name-not-utf8", file(b"src/lambda/internal_libs/bad\xffname.py", b"X = 1\n")),
    Case("requirements-without-function", file("src/lambda/orphan.requirements.txt", b"numpy\n")),
    # encodings
    Case("handler-latin1", file("src/lambda/latin.py", b"# caf\xe9\ndef handler(event, context):\n    pass\n")),
    Case("handler-nul-byte", file("src/lambda/nul.py", b"def handler(event, context):\n    return '\x00'\x00\n")),
    Case("handler-utf16", file("src/lambda/wide.py", HANDLER.decode().encode("utf-16"))),
    Case("requirements-not-utf8", file("src/lambda/ingest.requirements.txt", b"numpy\npandas\xff==2\n")),
    Case("handler-unknown-encoding", file("src/lambda/odd.py", b"# -*- coding: klingon -*-\n" + HANDLER)),
    # links
    Case("libs-file-links-outside", link("src/lambda/internal_libs/leak.py", outside_file("LEAK = 1\n"))),
    Case("libs-link-loop", both(link("src/lambda/internal_libs/a", "b"), link("src/lambda/internal_libs/b", "a"))),
    Case("libs-links-outside-repo", both(
        lambda r, b: [p.unlink() for p in (r.root / "src/lambda/internal_libs").iterdir()],
        lambda r, b: (r.root / "src/lambda/internal_libs").rmdir(),
        link("src/lambda/internal_libs", outside_folder("libs")),
    )),
    Case("service-folder-links-outside-repo", replace_folder_by_link("src/lambda")),
    Case("handler-links-to-secret", both(file("src/lambda/.env", b"TOKEN=x\n"), link("src/lambda/leak.py", ".env"))),
    Case("handler-links-outside-folder", link("src/lambda/leak.py", outside_file("def handler(e, c):\n    pass\n"))),
    Case("requirements-link-outside-repo", link("src/lambda/ingest.requirements.txt", outside_file("numpy\n"))),
    Case("folders-too-deep", deep_folders(300)),
    Case("path-longer-than-path-max", deep_folders(30, 200)),
    # requirement lines
    Case("requirement-vcs", requirement("git+https://github.com/example/lib.git")),
    Case("requirement-direct-url", requirement("lib @ https://example.org/lib-1.0-py3-none-any.whl")),
    Case("requirement-bare-url", requirement("https://example.org/lib-1.0-py3-none-any.whl")),
    Case("requirement-editable", requirement("-e git+https://github.com/example/lib.git")),
    Case("requirement-index-option", requirement("--index-url https://example.org/simple")),
    Case("requirement-local-path", requirement("../lib")),
    Case("requirement-unreadable", requirement("=== not a requirement")),
    Case("requirement-include-leaves-repo", requirement("-r ../../../outside.txt")),
    Case("requirement-include-cycle", requirement("-r ingest.requirements.txt")),
    Case("requirement-include-missing", requirement("-r nosuch.txt")),
    # zip members
    Case("wheel-member-climbs-out", unsafe_wheel_dependency("../../escape.py"), ("build",), jobs=True),
    Case("wheel-member-absolute", unsafe_wheel_dependency("/tmp/escape.py"), ("build",), jobs=True),
    Case("wheel-member-backslash", unsafe_wheel_dependency("evildep\\..\\..\\escape.py"), ("build",), jobs=True),
    Case("wheel-member-drive-letter", unsafe_wheel_dependency("C:/escape.py"), ("build",), jobs=True),
    # the local index
    Case("index-garbage-build", corrupt_index(b"garbage, not sqlite" * 100), ("build", "--force"), index_spoiled=True),
    Case("index-garbage-plan", corrupt_index(b"\x00" * 4096), ("plan",), index_spoiled=True),
    Case("index-garbage-verify", corrupt_index(os.urandom(8192)), ("cache", "verify"), index_spoiled=True),
    Case(
        "index-truncated-status",
        lambda r, b: corrupt_index(b"SQLite format 3\x00" + b"\x10\x00" * 40)(r, b),
        ("build", "--force"),
        index_spoiled=True,
    ),
]


def snapshot(base: Path, cache_dir: Path) -> dict[bytes, tuple]:
    """Every path under `base` but the cache folder, with its kind, size and modification time."""
    found: dict[bytes, tuple] = {}
    skip = os.fsencode(cache_dir)
    for folder, dirs, files in os.walk(os.fsencode(base)):
        if folder == skip or folder.startswith(skip + b"/") or folder.count(b"/") > 64:
            dirs[:] = []  # the cache; and the depths of a deliberately deep tree, which no command writes to
            continue
        for name in dirs + files:
            path = os.path.join(folder, name)
            if path == skip:
                continue
            try:
                st = os.lstat(path)
            except OSError:  # longer than PATH_MAX: spoiled that way on purpose, never written by a command
                continue
            found[path] = (st.st_mode, st.st_size if not os.path.isdir(path) else 0, st.st_mtime_ns)
    return found


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def test_there_are_enough_bad_inputs():
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_bad_input_is_one_error_line_and_writes_nothing_outside_the_cache(tmp_path, case):
    repo = make_jobs_repo(tmp_path) if case.jobs else make_repo(tmp_path)
    case.spoil(repo, tmp_path)
    before = snapshot(tmp_path, repo.cache_dir)

    result = repo.pkg(*case.args)

    output = result.stdout + result.stderr
    assert result.exit_code != 0, output
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert "Traceback" not in output
    assert snapshot(tmp_path, repo.cache_dir) == before
    if not case.index_spoiled and repo.cache_dir.exists():  # the index is read directly: the config may be broken
        report = verify(Store(str(repo.cache_dir)))
        assert report.ok, report.problems


def test_a_corrupt_index_is_moved_aside_by_repair_and_the_next_build_starts_fresh(tmp_path):
    repo = make_repo(tmp_path)
    corrupt_index(b"garbage, not sqlite" * 100)(repo, tmp_path)
    for args in (("build", "--force"), ("plan",), ("cache", "verify")):
        result = repo.pkg(*args)
        assert result.exit_code == 1 and "the local index is not a readable SQLite database" in result.stderr
        assert "pkg cache verify --repair" in result.stderr

    repaired = repo.pkg("cache", "verify", "--repair")

    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert "moved aside to" in repaired.stdout and "(repaired)" in repaired.stdout
    assert len(list(repo.cache_dir.glob("index.sqlite.corrupt-*[0-9]"))) == 1
    assert repo.pkg("build").exit_code == 0
    assert repo.pkg("cache", "verify", "--repair").exit_code == 0  # the old store files: orphans, removed
    assert repo.pkg("cache", "verify").exit_code == 0


def test_a_corrupt_index_is_one_line_from_the_console_script(tmp_path):
    repo = make_repo(tmp_path)
    corrupt_index(b"garbage, not sqlite" * 100)(repo, tmp_path)
    result = run_console(["build", "--force"], repo.root, env={"PKG_CACHE_DIR": str(repo.cache_dir)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(error_lines(result.stderr)) == 1


def test_a_full_disk_while_writing_the_store_is_one_error_line(repo, monkeypatch):
    import packager.builders.zips

    def no_space(path: str, entries: list) -> int:
        with open(path, "wb") as stream:
            stream.write(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(packager.builders.zips, "write_deterministic_zip", no_space)
    before = snapshot(repo.root.parent, repo.cache_dir)
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [f"error: no space left on the device while writing {_tmp_in(result.stderr)}"]
    assert "free some space" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(repo.root.parent, repo.cache_dir) == before
    assert not [p for p in (repo.cache_dir / "store").rglob("*") if p.is_file()]  # the half-written file is gone
    monkeypatch.undo()
    assert repo.pkg("build").exit_code == 0 and repo.pkg("cache", "verify").exit_code == 0


def _tmp_in(stderr: str) -> str:
    """The file named by the disk-full error (a temporary name in the store)."""
    return stderr.split("while writing ", 1)[1].splitlines()[0]



def test_a_hashed_requirement_installs_and_a_wrong_hash_is_one_error_line(tmp_path, wheelhouse):
    import hashlib

    digest = hashlib.sha256((wheelhouse / "tinylib-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    repo = make_repo(tmp_path)
    with open(repo.root / "pyproject.toml", "a") as stream:
        stream.write(f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n')
    repo.write("src/lambda/ingest.requirements.txt", f"tinylib==1.0 \\\n    --hash=sha256:{digest}\n")
    assert repo.pkg("build").exit_code == 0

    repo.write("src/lambda/ingest.requirements.txt", f"tinylib==1.0 --hash=sha256:{'0' * 64}\n")
    result = repo.pkg("build")
    # the installer's message quotes the resolver's own output (its "error:" lines too): the hash is kept intact
    assert result.exit_code == 1 and error_lines(result.stderr)[0].startswith("error: src/lambda/ingest.requirements")
    assert "Traceback" not in result.stderr and "sha256:" + "0" * 64 in result.stderr


def test_sqlite_failures_are_told_apart(tmp_path):
    import sqlite3

    from packager.app import _index_failure
    from packager.errors import CorruptIndexError, DiskFullError

    index = tmp_path / "index.sqlite"
    with sqlite3.connect(index) as conn:
        conn.execute("CREATE TABLE t (x)")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert isinstance(_index_failure(str(index), full), DiskFullError)
    locked = _index_failure(str(index), sqlite3.OperationalError("database is locked"))
    assert not isinstance(locked, CorruptIndexError) and "database is locked" in str(locked)
    index.write_bytes(b"not a database" * 300)
    assert isinstance(_index_failure(str(index), sqlite3.DatabaseError("file is not a database")), CorruptIndexError)
