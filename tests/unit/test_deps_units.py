"""The pure parts of dependency layers: requirements normalisation and stable chunk assignment."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest

from cache.hashing import file_digest
from packager.builders.installed import ENTRY_OVERHEAD, Distribution, InstalledFile
from packager.builders.installer import Platform, tag_problem
from packager.builders.layer_chunks import assign_chunks
from packager.builders.requirements import RequirementsReader
from packager.errors import DependencyError, LayerLimitError
from packager.runtimes import LAMBDA_RUNTIMES, MB


def reader(root: Path) -> RequirementsReader:
    return RequirementsReader(str(root), lambda relpath, abspath: file_digest(abspath))


def write(root: Path, relpath: str, text: str) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_requirements_normalise_comments_order_spelling_and_includes(tmp_path):
    write(tmp_path, "a.txt", "# pinned\nNumPy == 2.1.3\nrequests[Socks,security]>=2 ; python_version >= '3.9'\n")
    write(tmp_path, "shared/base.txt", "numpy==2.1.3  # again\n")
    write(tmp_path, "shared/pins.txt", "urllib3<3\n")
    write(
        tmp_path,
        "b.txt",
        "requests[security,socks] >= 2; python_version >= '3.9'\n-r shared/base.txt\n-c shared/pins.txt\n\\\n",
    )
    a, b = reader(tmp_path).read("a.txt"), reader(tmp_path).read("b.txt")
    assert a.lines == b.lines == ("numpy==2.1.3", "requests[security,socks]>=2; python_version >= '3.9'")
    assert b.constraints == ("urllib3<3",)
    assert b.sources == ("b.txt", "shared/base.txt", "shared/pins.txt")
    assert a.names == {"numpy", "requests"}


def test_line_continuations_and_hashes(tmp_path):
    write(tmp_path, "r.txt", "pandas\\\n  ==2.2.3 \\\n  --hash=sha256:bb \\\n  --hash sha256:aa\nnumpy==2.1.3\n")
    assert reader(tmp_path).read("r.txt").lines == (
        "numpy==2.1.3",
        "pandas==2.2.3 --hash=sha256:aa --hash=sha256:bb",
    )


@pytest.mark.parametrize(
    "line",
    [
        "git+https://example.org/x.git",
        "hg+https://example.org/x",
        "https://example.org/mylib-1.0-py3-none-any.whl",
        "mylib @ https://example.org/mylib-1.0-py3-none-any.whl",
        "mylib @ git+https://example.org/x.git@v1",
    ],
)
def test_vcs_and_url_requirements_are_refused_naming_file_and_line(tmp_path, line):
    write(tmp_path, "r.txt", f"numpy\n{line}\n")
    with pytest.raises(DependencyError, match=r"^r\.txt:2: .*(VCS or URL|direct URL) requirement"):
        reader(tmp_path).read("r.txt")


def test_a_requirements_file_linked_outside_the_repository_is_refused(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("numpy\n")
    (tmp_path / "r.txt").symlink_to(outside)
    with pytest.raises(DependencyError, match="r.txt:1: a symlink to .* outside the repository"):
        reader(tmp_path).read("r.txt")


def test_a_requirements_file_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "r.txt").write_bytes(b"numpy\npandas\xff==2\n")
    with pytest.raises(DependencyError, match=r"r\.txt:2: not UTF-8 text \(byte 0xff\)"):
        reader(tmp_path).read("r.txt")


@pytest.mark.parametrize(
    "text, message",
    [
        ("-e git+https://example.org/x.git\n", "r.txt:1: '-e' is not supported"),
        ("--extra-index-url=https://x\n", "'--extra-index-url' is not supported"),
        ("numpy\n../elsewhere/pkg\n", "r.txt:2: local path requirement"),
        ("-r ../../outside.txt\n", "leaves the repository"),
        ("-r r.txt\n", "include cycle"),
    ],
)
def test_requirements_errors(tmp_path, text, message):
    write(tmp_path, "r.txt", text)
    with pytest.raises(DependencyError) as error:
        reader(tmp_path).read("r.txt")
    assert message in str(error.value)


def test_identical_files_are_read_once(tmp_path):
    for name in ("a", "b", "c"):
        write(tmp_path, f"{name}.txt", "numpy==2.1.3\n")
    reads = []
    requirements = RequirementsReader(str(tmp_path), lambda relpath, abspath: reads.append(relpath) or "same-digest")
    assert {requirements.read(f"{name}.txt").lines for name in "abc"} == {("numpy==2.1.3",)}
    assert len(requirements._parsed) == 1


def _dist(name: str, version: str, sizes: list[int]) -> Distribution:
    files = [InstalledFile(f"{name}/f{i}.bin", size, f"{name}-{version}-{i}", size) for i, size in enumerate(sizes)]
    files.append(InstalledFile(f"{name}-{version}.dist-info/METADATA", 100, f"{name}-{version}-meta", 60))
    return Distribution(name, version, files)


def _world(seed: int) -> list[Distribution]:
    rng = random.Random(seed)
    return [_dist(f"pkg{i:02d}", "1.0", [rng.randint(1, 6) * MB]) for i in range(24)]


def _chunk_of(chunks, name):
    return [k for k, chunk in enumerate(chunks) if name in chunk.parts]


def test_bumping_one_distribution_changes_only_its_chunk():
    dists = _world(1)
    before = assign_chunks(dists, "r.txt")
    assert len(before) == 2
    assert all(chunk.zip_cost <= 50 * MB for chunk in before)
    for index in range(0, len(dists), 5):
        bumped = list(dists)
        old = dists[index]
        bumped[index] = _dist(old.name, "1.1", [old.files[0].size + 200_000])
        after = assign_chunks(bumped, "r.txt")
        changed = [k for k in range(2) if before[k].inputs() != after[k].inputs()]
        assert changed == _chunk_of(before, old.name) == _chunk_of(after, old.name)


def test_one_chunk_when_everything_fits_and_stable_order():
    small = [_dist(f"p{i}", "1", [MB]) for i in range(5)]
    chunks = assign_chunks(small, "r.txt")
    assert len(chunks) == 1 and sorted(chunks[0].parts) == [f"p{i}" for i in range(5)]
    assert [f.relpath for f in chunks[0].files] == sorted(f.relpath for f in chunks[0].files)
    assert assign_chunks(list(reversed(small)), "r.txt")[0].inputs() == chunks[0].inputs()


def test_only_a_distribution_too_big_for_a_chunk_is_split():
    giant = _dist("giant", "1", [20 * MB, 20 * MB, 20 * MB])
    others = [_dist(f"small{i}", "1", [2 * MB]) for i in range(4)]
    chunks = assign_chunks([giant, *others], "r.txt")
    assert len(chunks) == 2
    assert {name for chunk in chunks for name in chunk.split} == {"giant"}
    assert all(chunk.zip_cost <= 50 * MB for chunk in chunks)
    assert sum(len(chunk.files) for chunk in chunks) == sum(len(d.files) for d in [giant, *others])


def test_more_than_two_chunks_names_the_biggest():
    dists = [_dist("huge", "3.0", [45 * MB]), _dist("large", "2.0", [40 * MB]), _dist("mid", "1.0", [30 * MB])]
    with pytest.raises(LayerLimitError) as error:
        assign_chunks(dists, "src/lambda/x.requirements.txt")
    message = str(error.value)
    assert message.startswith("src/lambda/x.requirements.txt: the dependencies need")
    assert message.index("huge==3.0") < message.index("large==2.0") < message.index("mid==1.0")


def test_a_single_file_bigger_than_a_chunk_is_refused():
    with pytest.raises(LayerLimitError):
        assign_chunks([_dist("blob", "1", [51 * MB])], "r.txt")


def test_zip_cost_counts_entry_overhead():
    item = InstalledFile("a/b.py", 10, "d", 7)
    assert item.zip_cost == 7 + ENTRY_OVERHEAD + 2 * len("python/a/b.py")


@pytest.mark.parametrize(
    "runtime, arch, tags, fits",
    [
        ("python3.12", "x86_64", ["cp312-cp312-manylinux_2_17_x86_64"], True),
        ("python3.12", "x86_64", ["cp312-cp312-manylinux_2_34_x86_64"], True),
        ("python3.12", "x86_64", ["cp312-cp312-manylinux_2_35_x86_64"], False),
        ("python3.11", "x86_64", ["cp311-cp311-manylinux_2_28_x86_64"], False),
        ("python3.11", "x86_64", ["cp311-cp311-manylinux2014_x86_64"], True),
        ("python3.12", "arm64", ["cp312-cp312-manylinux_2_17_x86_64"], False),
        ("python3.12", "arm64", ["cp312-cp312-manylinux_2_28_aarch64"], True),
        ("python3.12", "x86_64", ["cp39-abi3-manylinux_2_17_x86_64"], True),
        ("python3.12", "x86_64", ["cp313-cp313-manylinux_2_17_x86_64"], False),
        ("python3.12", "x86_64", ["cp313-abi3-manylinux_2_17_x86_64"], False),
        ("python3.12", "x86_64", ["py2.py3-none-any"], True),
        ("python3.12", "x86_64", ["py313-none-any"], False),
        ("python3.12", "x86_64", ["py3-none-any"], True),
        ("python3.12", "x86_64", ["cp312-cp312-macosx_11_0_arm64"], False),
    ],
)
def test_wheel_tags_are_checked_against_the_runtime_table(runtime, arch, tags, fits):
    platform = Platform(LAMBDA_RUNTIMES[runtime], arch)
    assert (tag_problem(tags, platform) is None) == fits


def _tree(root: Path) -> list[Distribution]:
    files = {
        "pkg/__init__.py": b"VALUE = 1\n" * 5000,
        "pkg/empty.txt": b"",
        "pkg/data/table.csv": b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000)),
        "pkg/blob.bin": random.Random(7).randbytes(400_000),  # doesn't compress: stored
    }
    for relpath, data in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    return [Distribution("pkg", "1.0", [InstalledFile(relpath, len(data)) for relpath, data in files.items()])]


def _prepared(root: Path, dists: list[Distribution], streams: Path) -> list:
    from packager.builders.installed import stream_name
    from packager.builders.zips import STORED, PreparedEntry

    return [
        PreparedEntry(
            f"python/{f.relpath}",
            str(root / f.relpath),
            str(root / f.relpath) if f.level == STORED else str(streams / stream_name(f.digest, f.level)),
            f.size,
            f.zsize,
            f.crc,
            f.level,
        )
        for d in dists
        for f in d.files
    ]


def test_chunks_written_from_streams_are_the_zips_zipfile_would_write(tmp_path):
    import zipfile

    from packager.builders.installed import measure
    from packager.builders.zips import STORED, ZipEntry, write_deterministic_zip, write_prepared_zip

    root = tmp_path / "tree"
    dists = _tree(root)
    measure(str(root), dists, str(tmp_path / "streams"), file_budget=50 * MB)
    levels = {f.relpath: f.level for f in dists[0].files}
    assert levels["pkg/blob.bin"] == STORED and levels["pkg/data/table.csv"] == 6
    write_prepared_zip(str(tmp_path / "prepared.zip"), _prepared(root, dists, tmp_path / "streams"))
    with zipfile.ZipFile(tmp_path / "prepared.zip") as archive:
        assert archive.testzip() is None
        for f in dists[0].files:
            assert archive.read(f"python/{f.relpath}") == (root / f.relpath).read_bytes()
            assert archive.getinfo(f"python/{f.relpath}").compress_size == f.zsize
    # Without the stored file, the bytes are exactly those of the streaming writer.
    dists[0].files = [f for f in dists[0].files if f.level != STORED]
    write_prepared_zip(str(tmp_path / "a.zip"), _prepared(root, dists, tmp_path / "streams"))
    write_deterministic_zip(
        str(tmp_path / "b.zip"), [ZipEntry(f"python/{f.relpath}", str(root / f.relpath)) for f in dists[0].files]
    )
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_a_file_too_big_for_a_chunk_is_deflated_harder(tmp_path):
    import zipfile

    from packager.builders.installed import BEST_LEVEL, measure
    from packager.builders.zips import write_prepared_zip

    root = tmp_path / "tree"
    dists = _tree(root)
    measure(str(root), dists, str(tmp_path / "streams"), file_budget=1000)  # every file is "too big"
    for item in dists[0].files:
        if item.level in (6, BEST_LEVEL):  # whichever level deflates it smaller
            data = (root / item.relpath).read_bytes()
            sizes = {}
            for level in (6, BEST_LEVEL):
                compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
                sizes[level] = len(compressor.compress(data)) + len(compressor.flush())
            assert item.zsize == min(sizes.values()) and sizes[item.level] == item.zsize
    write_prepared_zip(str(tmp_path / "best.zip"), _prepared(root, dists, tmp_path / "streams"))
    with zipfile.ZipFile(tmp_path / "best.zip") as archive:
        assert archive.read("python/pkg/data/table.csv") == (root / "pkg/data/table.csv").read_bytes()
