"""Lambda dependency layers, built offline from a local wheelhouse of small (and some large) real wheels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import Repo, make_repo
from packager.builders.builder import collect, open_workspace
from packager.runtimes import LAMBDA_LIMITS
from wheelhouse import WHEELS, write_wheel

CHUNK = LAMBDA_LIMITS.layer_chunk_zip


def deps_repo(base: Path, wheelhouse: Path, extra: str = "", functions=("ingest", "report")) -> Repo:
    """The two-function repo, installing only from the local wheelhouse."""
    repo = make_repo(base, functions=functions)
    text = (repo.root / "pyproject.toml").read_text()
    text += f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{wheelhouse}"]\n{extra}'
    (repo.root / "pyproject.toml").write_text(text)
    return repo


@pytest.fixture
def repo(tmp_path, wheelhouse) -> Repo:
    return deps_repo(tmp_path, wheelhouse)


def by_id(report: dict) -> dict[str, dict]:
    return {artifact["id"]: artifact for artifact in report["artifacts"]}


def names_in(path: str) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def distributions_in(path: str) -> set[str]:
    return {name.split("/")[1][: -len(".dist-info")] for name in names_in(path) if ".dist-info/" in name}


def uses(repo: Repo) -> dict[str, list[str]]:
    """function id -> the layer ids it uses, in order (what publish attaches)."""
    os.environ["PKG_CACHE_DIR"] = str(repo.cache_dir)
    ws = open_workspace(str(repo.root))
    try:
        return {spec.id: spec.uses for spec in collect(ws).specs if spec.kind == "lambda-function"}
    finally:
        del os.environ["PKG_CACHE_DIR"]
        ws.close()


def test_layers_are_built_for_each_group_and_used_in_order(repo):
    repo.write("src/lambda/internal_libs/requirements.txt", "# shared by every function\nhelper==2.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    report = repo.pkg_json("build")
    artifacts = by_id(report)
    assert set(artifacts) == {
        "lambda/internal_libs",
        "lambda/internal_libs_deps/0",
        "lambda/function_deps/ingest/0",
        "lambda/function/ingest",
        "lambda/function/report",
    }
    base, own = artifacts["lambda/internal_libs_deps/0"], artifacts["lambda/function_deps/ingest/0"]
    assert base["kind"] == own["kind"] == "lambda-layer"
    assert distributions_in(base["path"]) == {"helper-2.0", "tinylib-1.1"}
    assert distributions_in(own["path"]) == {"nativelib-1.0"}
    assert "python/nativelib/_speed.cpython-312-x86_64-linux-gnu.so" in names_in(own["path"])
    assert all(name.startswith("python/") for name in names_in(base["path"]))
    for artifact in (base, own):
        assert 0 < artifact["size"] <= CHUNK and artifact["unzipped_size"] > 0
    assert uses(repo) == {
        "lambda/function/ingest": [
            "lambda/internal_libs",
            "lambda/internal_libs_deps/0",
            "lambda/function_deps/ingest/0",
        ],
        "lambda/function/report": ["lambda/internal_libs", "lambda/internal_libs_deps/0"],
    }


def test_identical_sets_install_once_and_a_no_op_installs_nothing(tmp_path, wheelhouse):
    repo = deps_repo(tmp_path, wheelhouse, functions=("a", "b", "c"))
    repo.write("src/lambda/a.requirements.txt", "nativelib==1.0\ntinylib==1.0\n")
    repo.write(
        "src/lambda/b.requirements.txt", "# the same set, other spelling\nTinyLib == 1.0\nnativelib==1.0  # fast\n"
    )
    repo.write("src/lambda/common.txt", "tinylib==1.0\n")
    repo.write("src/lambda/c.requirements.txt", "-r common.txt\nnativelib==1.0\n")
    first = repo.pkg("build", "--json")
    assert first.exit_code == 0, first.stderr
    assert first.stderr.count("installing") == 1
    chunks = {a["id"]: a for a in first.json["artifacts"] if "function_deps" in a["id"]}
    assert set(chunks) == {f"lambda/function_deps/{name}/0" for name in "abc"}
    assert len({a["input_hash"] for a in chunks.values()}) == 1
    assert len({a["path"] for a in chunks.values()}) == 1

    second = repo.pkg("build", "--json")
    assert "installing" not in second.stderr
    assert second.json["summary"]["built"] == 0
    sha256 = {a["id"]: a["sha256"] for a in first.json["artifacts"]}
    assert {a["id"]: a["sha256"] for a in second.json["artifacts"]} == sha256


def test_runtime_provided_packages_are_left_out_unless_pinned(tmp_path, wheelhouse):
    repo = deps_repo(tmp_path, wheelhouse)
    repo.write("src/lambda/internal_libs/requirements.txt", "awsthing==1.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "boto3==1.35.0\n")
    artifacts = by_id(repo.pkg_json("build"))
    assert distributions_in(artifacts["lambda/internal_libs_deps/0"]["path"]) == {"awsthing-1.0"}
    # Pinned directly: kept; its botocore still comes only transitively.
    assert distributions_in(artifacts["lambda/function_deps/ingest/0"]["path"]) == {"boto3-1.35.0"}

    keep = deps_repo(tmp_path / "keep", wheelhouse, extra="skip_runtime_provided = false\n")
    keep.write("src/lambda/internal_libs/requirements.txt", "awsthing==1.0\n")
    artifacts = by_id(keep.pkg_json("build"))
    assert distributions_in(artifacts["lambda/internal_libs_deps/0"]["path"]) == {
        "awsthing-1.0",
        "boto3-1.35.0",
        "botocore-1.35.0",
    }


def test_function_layers_never_repeat_what_internal_libs_deps_provide(repo):
    repo.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")  # brings tinylib 1.1
    repo.write("src/lambda/ingest.requirements.txt", "tinylib\nnativelib==1.0\n")
    repo.write("src/lambda/report.requirements.txt", "tinylib\n")
    artifacts = by_id(repo.pkg_json("build"))
    assert distributions_in(artifacts["lambda/function_deps/ingest/0"]["path"]) == {"nativelib-1.0"}
    assert not any(name.startswith("lambda/function_deps/report") for name in artifacts)
    # A pin that contradicts the shared layers can't be satisfied: both would sit on one sys.path.
    repo.write("src/lambda/report.requirements.txt", "tinylib==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda/report.requirements.txt: the requirements can't be resolved together" in result.stderr
    assert "internal_libs dependency layers" in result.stderr


def test_lean_layers_drop_caches_and_keep_metadata(repo):
    repo.write("src/lambda/ingest.requirements.txt", "withcache==1.0\n")
    layer = by_id(repo.pkg_json("build"))["lambda/function_deps/ingest/0"]
    names = names_in(layer["path"])
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "python/withcache-1.0.dist-info/METADATA" in names
    assert not [n for n in names if n.endswith(("uv_cache.json", "/.lock")) or n == "python/.lock"]
    with zipfile.ZipFile(layer["path"]) as archive:
        record = archive.read("python/withcache-1.0.dist-info/RECORD").decode()
    assert ".pyc" not in record and "uv_cache.json" not in record


def test_no_compatible_wheel_names_the_package_and_the_platform(repo):
    repo.write("src/lambda/ingest.requirements.txt", "armonly==1.0\n")
    result = repo.pkg("build", "--json")
    assert result.exit_code == 1
    assert result.json["type"] == "DependencyError"  # --json answers on failure too
    assert "no wheel of 'armonly' installs on python3.12 x86_64" in result.stderr
    assert "manylinux_2_34" in result.stderr
    assert "hint:" in result.stderr
    assert not list((repo.cache_dir / "store").rglob("*.zip")) if (repo.cache_dir / "store").exists() else True


def test_amazon_linux_2_runtimes_refuse_newer_manylinux_wheels(repo):
    repo.write("pyproject.toml", (repo.root / "pyproject.toml").read_text().replace("python3.12", "python3.11"))
    repo.write("src/lambda/ingest.requirements.txt", "newglibc==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "no wheel of 'newglibc' installs on python3.11 x86_64 (cp311, manylinux_2_17 and older)" in result.stderr
    repo.write("pyproject.toml", (repo.root / "pyproject.toml").read_text().replace("python3.11", "python3.12"))
    layer = by_id(repo.pkg_json("build"))["lambda/function_deps/ingest/0"]
    assert distributions_in(layer["path"]) == {"newglibc-1.0"}


def test_per_function_architecture_gets_its_own_wheels_and_internal_libs_deps(repo):
    text = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", text + '\n[tool.pkg.lambda.functions.report]\narchitecture = "arm64"\n')
    repo.write("src/lambda/internal_libs/requirements.txt", "nativelib==1.0\n")
    artifacts = by_id(repo.pkg_json("build"))
    x86 = artifacts["lambda/internal_libs_deps/0"]["path"]
    arm = artifacts["lambda/internal_libs_deps/python3.12-arm64/0"]["path"]
    assert "python/nativelib/_speed.cpython-312-x86_64-linux-gnu.so" in names_in(x86)
    assert "python/nativelib/_speed.cpython-312-aarch64-linux-gnu.so" in names_in(arm)
    assert uses(repo)["lambda/function/report"] == [
        "lambda/internal_libs",
        "lambda/internal_libs_deps/python3.12-arm64/0",
    ]


def test_pip_is_the_fallback_installer(tmp_path, wheelhouse):
    repo = deps_repo(tmp_path, wheelhouse, extra='installer = "pip"\n')
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\nhelper==2.0\n")
    layer = by_id(repo.pkg_json("build"))["lambda/function_deps/ingest/0"]
    assert distributions_in(layer["path"]) == {"nativelib-1.0", "helper-2.0", "tinylib-1.1"}
    assert "python/nativelib/_speed.cpython-312-x86_64-linux-gnu.so" in names_in(layer["path"])
    repo.write("src/lambda/ingest.requirements.txt", "armonly==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1 and "no wheel of 'armonly'" in result.stderr


def test_two_chunks_and_a_bump_rebuilds_only_the_chunk_holding_it(repo):
    repo.write("src/lambda/ingest.requirements.txt", "bigone==1.0\nbigtwo==1.0\ntinylib==1.0\n")
    first = by_id(repo.pkg_json("build"))
    chunks = {k: first[f"lambda/function_deps/ingest/{k}"] for k in (0, 1)}
    assert "lambda/function_deps/ingest/2" not in first
    for chunk in chunks.values():
        assert chunk["size"] <= CHUNK
        assert os.path.getsize(chunk["path"]) == chunk["size"]
    holding = {dist: k for k, chunk in chunks.items() for dist in distributions_in(chunk["path"])}
    assert set(holding) == {"bigone-1.0", "bigtwo-1.0", "tinylib-1.0"}
    assert holding["bigone-1.0"] != holding["bigtwo-1.0"]

    repo.write("src/lambda/ingest.requirements.txt", "bigone==1.0\nbigtwo==1.1\ntinylib==1.0\n")
    plan = {a["id"]: a for a in repo.pkg_json("plan")["artifacts"]}
    bumped = holding["bigtwo-1.0"]
    assert plan[f"lambda/function_deps/ingest/{bumped}"]["action"] == "build"
    assert "bigtwo" in plan[f"lambda/function_deps/ingest/{bumped}"]["reason"]
    assert plan[f"lambda/function_deps/ingest/{1 - bumped}"]["action"] == "cached"
    second = repo.pkg_json("build")
    assert {a["id"] for a in second["artifacts"] if a["status"] == "built"} == {f"lambda/function_deps/ingest/{bumped}"}
    assert by_id(second)[f"lambda/function_deps/ingest/{1 - bumped}"]["sha256"] == chunks[1 - bumped]["sha256"]


def test_a_distribution_bigger_than_a_chunk_is_split_by_file(repo):
    repo.write("src/lambda/ingest.requirements.txt", "giant==1.0\n")
    artifacts = by_id(repo.pkg_json("build"))
    paths = [artifacts[f"lambda/function_deps/ingest/{k}"]["path"] for k in (0, 1)]
    files = [set(names_in(path)) for path in paths]
    assert not files[0] & files[1]
    blobs = {f"python/giant/data{i}.bin" for i in range(3)}
    assert blobs <= files[0] | files[1]
    assert all(files[k] & blobs for k in (0, 1))
    assert all(os.path.getsize(path) <= CHUNK for path in paths)


def test_more_than_two_chunks_is_refused_naming_the_biggest(repo):
    repo.write("src/lambda/internal_libs/requirements.txt", "giant==1.0\nbulky==1.0\nbigone==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    message = result.stderr
    assert "src/lambda/internal_libs/requirements.txt: the dependencies need" in message
    assert "more than 2 layers of 50.0 MiB" in message
    assert (
        message.index("giant==1.0 (60.0 MiB unzipped") < message.index("bulky==1.0 (40.0 MiB") < message.index("bigone")
    )
    assert "hint:" in message
    assert not (repo.cache_dir / "store").exists() or not list((repo.cache_dir / "store").rglob("*.zip"))


def test_250_mb_unzipped_is_refused_for_a_group_and_for_a_function(repo):
    repo.write("src/lambda/ingest.requirements.txt", "zeros-a==1.0\nzeros-b==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "262,144,000 bytes" in result.stderr and "zeros-a==1.0 (140.0 MiB unzipped" in result.stderr

    # Each group fits; together they don't: refused for the function, before anything is built.
    repo.write("src/lambda/internal_libs/requirements.txt", "zeros-a==1.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "zeros-b==1.0\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "function 'ingest' needs" in result.stderr and "Lambda allows 262,144,000" in result.stderr
    assert "zeros-a==1.0" in result.stderr and "zeros-b==1.0" in result.stderr
    assert not list((repo.cache_dir / "store").rglob("*.zip"))


def test_refresh_deps_re_resolves_unpinned_requirements(tmp_path, wheelhouse):
    private = tmp_path / "mirror"
    private.mkdir()
    shutil.copy(wheelhouse / "tinylib-1.0-py3-none-any.whl", private)
    repo = deps_repo(tmp_path, private)
    repo.write("src/lambda/ingest.requirements.txt", "tinylib\n")
    layer = by_id(repo.pkg_json("build"))["lambda/function_deps/ingest/0"]
    assert distributions_in(layer["path"]) == {"tinylib-1.0"}
    write_wheel(private, next(w for w in WHEELS if w.name == "tinylib" and w.version == "1.1"))
    same = repo.pkg("build", "--json")
    assert "installing" not in same.stderr and same.json["summary"]["built"] == 0
    refreshed = by_id(repo.pkg_json("build", "--refresh-deps"))["lambda/function_deps/ingest/0"]
    assert refreshed["status"] == "built"
    assert distributions_in(refreshed["path"]) == {"tinylib-1.1"}


def test_a_deleted_install_is_reinstalled_and_gives_the_same_chunks(repo):
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    first = repo.pkg_json("build")
    shutil.rmtree(repo.cache_dir / "deps")
    second = repo.pkg("build", "--json")
    assert "installing" in second.stderr
    assert second.json["summary"]["built"] == 0
    assert [a["input_hash"] for a in second.json["artifacts"]] == [a["input_hash"] for a in first["artifacts"]]
    assert repo.pkg_json("cache", "verify")["ok"]


def test_plan_lists_dependency_chunks_with_sizes(repo):
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    plan = by_id(repo.pkg_json("plan"))
    chunk = plan["lambda/function_deps/ingest/0"]
    assert chunk["action"] == "build" and chunk["reason"] == "new"
    assert chunk["unzipped_size"] > 0
    repo.pkg_json("build")
    chunk = by_id(repo.pkg_json("plan"))["lambda/function_deps/ingest/0"]
    assert chunk["action"] == "cached" and chunk["size"] > 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("--index-url https://example.org/simple", "'--index-url' is not supported in requirements files"),
        ("./vendored/pkg", "local path requirement './vendored/pkg' is not supported"),
        ("-r missing.txt", "requirements file src/lambda/missing.txt not found"),
    ],
)
def test_bad_requirements_lines_are_one_clear_error(repo, line, message):
    repo.write("src/lambda/ingest.requirements.txt", f"tinylib==1.0\n{line}\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_builds_at_once_share_one_install_without_corrupting_it(repo):
    repo.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "bigone==1.0\nbigtwo==1.0\nnativelib==1.0\n")
    env = {**os.environ, "PKG_CACHE_DIR": str(repo.cache_dir)}
    command = [sys.executable, "-m", "packager", "build", "--json"]
    procs = [
        subprocess.Popen(command, cwd=repo.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        reports.append({a["id"]: a["sha256"] for a in json.loads(out)["artifacts"]})
    assert reports[0] == reports[1] == reports[2]
    verify = repo.pkg_json("cache", "verify")
    assert verify["ok"] and verify["problems"] == []
    assert repo.pkg_json("build")["summary"]["built"] == 0
    assert [p.name for p in (repo.cache_dir / "deps").iterdir() if p.name.startswith(".")] == []


def test_find_links_relative_to_the_repo_root_and_config_errors(tmp_path, wheelhouse):
    repo = make_repo(tmp_path)
    (repo.root / "wheels").mkdir()
    shutil.copy(wheelhouse / "tinylib-1.0-py3-none-any.whl", repo.root / "wheels")
    text = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", text + '\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["wheels"]\n')
    repo.write("src/lambda/ingest.requirements.txt", "tinylib\n")
    layer = by_id(repo.pkg_json("build", cwd=repo.root / "src"))["lambda/function_deps/ingest/0"]
    assert distributions_in(layer["path"]) == {"tinylib-1.0"}

    repo.write("pyproject.toml", text + '\n[tool.pkg.dependencies]\ninstaller = "conda"\n')
    result = repo.pkg("build")
    assert result.exit_code == 1 and "tool.pkg.dependencies.installer: unknown installer 'conda'" in result.stderr
    repo.write("pyproject.toml", text + "\n[tool.pkg.dependencies]\nfind_links = [1]\n")
    result = repo.pkg("build")
    assert result.exit_code == 1 and "tool.pkg.dependencies.find_links must be an array of strings" in result.stderr
    repo.write("pyproject.toml", text + "\n[tool.pkg.dependencies]\nindex = 'x'\n")
    result = repo.pkg("build")
    assert result.exit_code == 1 and "tool.pkg.dependencies: unknown key 'index'" in result.stderr


def test_build_names_installs_only_the_named_functions_layers(repo):
    repo.write("src/lambda/internal_libs/requirements.txt", "helper==2.0\n")
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    repo.write("src/lambda/report.requirements.txt", "withcache==1.0\n")
    result = repo.pkg("build", "ingest", "--json")
    assert result.exit_code == 0, result.stderr
    assert "ingest.requirements.txt" in result.stderr and "report.requirements.txt" not in result.stderr
    assert set(by_id(result.json)) == {
        "lambda/internal_libs",
        "lambda/internal_libs_deps/0",
        "lambda/function_deps/ingest/0",
        "lambda/function/ingest",
    }
    chunk = repo.pkg_json("build", "lambda/function_deps/report/0")
    assert set(by_id(chunk)) == {"lambda/function_deps/report/0"}
    assert repo.pkg_json("build")["summary"] == {"built": 1, "cached": 5}  # only report's code zip is left


def test_chunks_built_without_their_installed_tree_are_reused_and_force_reinstalls(repo):
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    first = by_id(repo.pkg_json("build"))
    (tree,) = (repo.cache_dir / "deps").glob("*/python")
    shutil.rmtree(tree)  # as after fetching the chunks from the shared cache
    again = repo.pkg("build", "--json")
    assert "installing" not in again.stderr and again.json["summary"]["built"] == 0
    forced = repo.pkg("build", "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert "installing" in forced.stderr
    chunk = by_id(forced.json)["lambda/function_deps/ingest/0"]
    assert chunk["status"] == "built" and chunk["sha256"] == first["lambda/function_deps/ingest/0"]["sha256"]
