"""`pkg build` and `pkg plan` end to end on a small repo: only what changed is rebuilt."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from pathlib import Path

from conftest import make_repo


def by_id(report: dict) -> dict[str, dict]:
    return {artifact["id"]: artifact for artifact in report["artifacts"]}


def built_ids(report: dict) -> set[str]:
    return {a["id"] for a in report["artifacts"] if a["status"] == "built"}


def test_first_build_reports_every_artifact(repo):
    report = repo.pkg_json("build")
    assert report["summary"] == {"built": 3, "cached": 0}
    artifacts = by_id(report)
    assert set(artifacts) == {"lambda/internal_libs", "lambda/function/ingest", "lambda/function/report"}
    layer = artifacts["lambda/internal_libs"]
    assert layer["kind"] == "lambda-layer"
    assert artifacts["lambda/function/ingest"]["kind"] == "lambda-function"
    for artifact in artifacts.values():
        assert set(artifact) == {"id", "kind", "input_hash", "status", "path", "sha256", "size", "unzipped_size"}
        data = Path(artifact["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert len(data) == artifact["size"]
        assert len(artifact["input_hash"]) == 32
    with zipfile.ZipFile(layer["path"]) as archive:
        assert archive.namelist() == ["python/internal_libs/__init__.py", "python/internal_libs/orders.py"]
        assert sum(info.file_size for info in archive.infolist()) == layer["unzipped_size"]
    with zipfile.ZipFile(artifacts["lambda/function/ingest"]["path"]) as archive:
        assert archive.namelist() == ["ingest.py"]


def test_second_build_builds_nothing_and_touches_no_artifact(repo):
    first = repo.pkg_json("build")
    mtimes = {a["id"]: os.stat(a["path"]).st_mtime_ns for a in first["artifacts"]}
    second = repo.pkg_json("build")
    assert second["summary"] == {"built": 0, "cached": 3}
    assert {a["id"]: a["sha256"] for a in second["artifacts"]} == {a["id"]: a["sha256"] for a in first["artifacts"]}
    assert {a["id"]: os.stat(a["path"]).st_mtime_ns for a in second["artifacts"]} == mtimes


def test_editing_one_handler_rebuilds_exactly_that_function(repo):
    repo.pkg_json("build")
    repo.write("src/lambda/report.py", "def handler(event, context):\n    return 'edited'\n")
    report = repo.pkg_json("build")
    assert built_ids(report) == {"lambda/function/report"}
    assert report["summary"] == {"built": 1, "cached": 2}


def test_editing_internal_libs_rebuilds_exactly_the_layer(repo):
    repo.pkg_json("build")
    repo.write("src/lambda/internal_libs/orders.py", "def parse(record):\n    return record\n")
    assert built_ids(repo.pkg_json("build")) == {"lambda/internal_libs"}
    repo.write("src/lambda/internal_libs/extra/__init__.py", "")
    assert built_ids(repo.pkg_json("build")) == {"lambda/internal_libs"}


def test_same_size_edit_within_the_same_second_is_seen(repo):
    repo.pkg_json("build")
    path = repo.root / "src/lambda/report.py"
    before = path.stat()
    path.write_text(path.read_text().replace("parse(r)", "parse(x)").replace("for r in", "for x in"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only content differs
    assert built_ids(repo.pkg_json("build")) == {"lambda/function/report"}


def test_clone_at_another_path_gives_same_hashes_and_identical_zips(tmp_path):
    first = make_repo(tmp_path, name="one")
    report_one = first.pkg_json("build")
    shutil.copytree(first.root, tmp_path / "elsewhere" / "two", copy_function=shutil.copy)
    for path in (tmp_path / "elsewhere" / "two").rglob("*.py"):
        os.utime(path, (1_500_000_000, 1_500_000_000))  # another checkout time
        os.chmod(path, 0o600)  # another umask
    second = make_repo(tmp_path / "elsewhere", name="two")  # own cache: reuses nothing
    report_two = second.pkg_json("build")
    assert report_two["summary"]["built"] == 3
    one, two = by_id(report_one), by_id(report_two)
    for artifact_id in one:
        assert one[artifact_id]["input_hash"] == two[artifact_id]["input_hash"]
        assert one[artifact_id]["sha256"] == two[artifact_id]["sha256"]
        assert Path(one[artifact_id]["path"]).read_bytes() == Path(two[artifact_id]["path"]).read_bytes()
        assert one[artifact_id]["path"] != two[artifact_id]["path"]


def test_zips_are_normalised(repo):
    script = repo.write("src/lambda/internal_libs/tool.sh", "#!/bin/sh\necho hi\n")
    os.chmod(script, 0o700)
    os.chmod(repo.root / "src/lambda/internal_libs/orders.py", 0o600)
    layer = by_id(repo.pkg_json("build"))["lambda/internal_libs"]
    with zipfile.ZipFile(layer["path"]) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    modes = {info.filename: info.external_attr >> 16 & 0o777 for info in infos}
    assert modes["python/internal_libs/orders.py"] == 0o644
    assert modes["python/internal_libs/tool.sh"] == 0o755
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_secrets_and_caches_are_never_packaged_nor_hashed(repo):
    clean = by_id(repo.pkg_json("build"))["lambda/internal_libs"]
    libs = repo.root / "src/lambda/internal_libs"
    secrets = (".env", ".env.local", "id_rsa", "deploy.pem", "tls.key")
    for name in (*secrets, "__pycache__/orders.cpython-312.pyc", "x.pyc"):
        path = libs / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("secret")
    result = repo.pkg("build", "--json")
    assert result.exit_code == 0
    assert "left out of the artifact" in result.stderr and ".env" in result.stderr
    layer = by_id(result.json)["lambda/internal_libs"]
    assert layer["input_hash"] == clean["input_hash"] and layer["status"] == "cached"
    with zipfile.ZipFile(layer["path"]) as archive:
        assert all("secret" not in archive.read(name).decode() for name in archive.namelist())


def test_symlink_leaving_the_tree_is_refused_and_nothing_is_built(repo, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    (repo.root / "src/lambda/internal_libs/leak.py").symlink_to(outside)
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda/internal_libs/leak.py:1: symlink to" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (repo.cache_dir / "store").exists()


def test_symlink_inside_the_tree_is_packaged_as_a_file(repo):
    (repo.root / "src/lambda/internal_libs/alias.py").symlink_to("orders.py")
    layer = by_id(repo.pkg_json("build"))["lambda/internal_libs"]
    with zipfile.ZipFile(layer["path"]) as archive:
        assert archive.read("python/internal_libs/alias.py") == archive.read("python/internal_libs/orders.py")


def test_handler_problems_are_one_line_each_and_nothing_is_built(repo):
    repo.write("src/lambda/no_handler.py", "def main(event, context):\n    pass\n")
    repo.write("src/lambda/broken.py", "def handler(event, context):\n    return (\n")
    repo.write("src/lambda/bad-name.py", "def handler(event, context):\n    pass\n")
    repo.write("src/lambda/json.py", "def handler(event, context):\n    pass\n")
    repo.write("src/lambda/one_arg.py", "\n\ndef handler(event):\n    pass\n")
    repo.write("src/lambda/coro.py", "async def handler(event, context):\n    pass\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("src/")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "src/lambda/bad-name.py",
        "src/lambda/broken.py",
        "src/lambda/coro.py",
        "src/lambda/json.py",
        "src/lambda/no_handler.py",
        "src/lambda/one_arg.py",
    ]
    text = "\n".join(lines)
    assert "src/lambda/broken.py:2: syntax error" in text
    assert "src/lambda/one_arg.py:3: handler takes 1 argument" in text
    assert "src/lambda/no_handler.py:1: no top-level 'handler'" in text
    assert "src/lambda/coro.py:1: 'async def handler'" in text
    assert "Traceback" not in result.stderr
    assert not (repo.cache_dir / "store").exists()


def test_handler_bound_by_assignment_or_import_is_accepted(repo):
    repo.write("src/lambda/wrapped.py", "def make():\n    return lambda e, c: e\n\nhandler = make()\n")
    repo.write("src/lambda/reexported.py", "from internal_libs.orders import parse as handler\n")
    assert repo.pkg_json("build")["summary"]["built"] == 5


def test_orphan_requirements_file_is_reported(repo):
    repo.write("src/lambda/ingset.requirements.txt", "requests==2.32.3\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/lambda/ingset.requirements.txt:1: no ingset.py beside these requirements" in result.stderr


def test_root_is_found_from_any_folder_inside_and_root_overrides(repo, tmp_path):
    inside = repo.pkg_json("build", cwd=repo.root / "src/lambda/internal_libs")
    assert inside["summary"]["built"] == 3
    elsewhere = repo.pkg("--root", str(repo.root), "build", "--json", cwd=tmp_path)
    assert elsewhere.exit_code == 0 and elsewhere.json["summary"] == {"built": 0, "cached": 3}
    lost = repo.pkg("build", cwd=tmp_path)
    assert lost.exit_code == 1 and "no pkg repository found" in lost.stderr and "--root" in lost.stderr


def test_config_errors_name_the_key(repo):
    pyproject = repo.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "memroy = 512\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "tool.pkg.lambda: unknown key 'memroy'" in result.stderr
    pyproject.write_text(pyproject.read_text().replace("memroy = 512", 'memory = "lots"'))
    result = repo.pkg("build")
    assert "tool.pkg.lambda.memory must be an integer" in result.stderr
    pyproject.write_text(
        pyproject.read_text().replace('memory = "lots"', '[tool.pkg.lambda.functions.ingest]\nruntime = "python2.7"')
    )
    assert "tool.pkg.lambda.functions.ingest.runtime: unsupported runtime 'python2.7'" in repo.pkg("build").stderr


def test_plan_says_why(repo):
    plan = repo.pkg_json("plan")
    assert {a["reason"] for a in plan["artifacts"]} == {"new"}
    assert plan["summary"] == {"build": 3, "cached": 0}
    repo.pkg_json("build")
    assert {(a["action"], a["reason"]) for a in repo.pkg_json("plan")["artifacts"]} == {("cached", "up to date")}

    repo.write("src/lambda/ingest.py", "def handler(event, context):\n    return 1\n")
    repo.write("src/lambda/internal_libs/new_module.py", "X = 1\n")
    pyproject = repo.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.pkg.lambda.functions.report]\nruntime = "python3.11"\n')
    reasons = {a["id"]: (a["action"], a["reason"]) for a in repo.pkg_json("plan")["artifacts"]}
    assert reasons["lambda/function/ingest"] == ("build", "src/lambda/ingest.py changed")
    assert reasons["lambda/function/report"] == ("build", "runtime changed: python3.12 -> python3.11")
    assert reasons["lambda/internal_libs"] == ("build", "src/lambda/internal_libs/new_module.py added")


def test_plan_and_build_of_reverted_change_reuse_the_earlier_artifact(repo):
    original = (repo.root / "src/lambda/ingest.py").read_text()
    repo.pkg_json("build")
    repo.write("src/lambda/ingest.py", "def handler(event, context):\n    return 1\n")
    repo.pkg_json("build")
    repo.write("src/lambda/ingest.py", original)
    plan = {a["id"]: a for a in repo.pkg_json("plan")["artifacts"]}
    assert plan["lambda/function/ingest"]["action"] == "cached"
    assert plan["lambda/function/ingest"]["reason"] == "built before (cached)"
    assert repo.pkg_json("build")["summary"]["built"] == 0


def test_build_names_selects_functions_and_their_layers(repo):
    report = repo.pkg_json("build", "ingest")
    assert set(by_id(report)) == {"lambda/internal_libs", "lambda/function/ingest"}
    assert set(by_id(repo.pkg_json("build", "lambda/function/report"))) == {
        "lambda/internal_libs",
        "lambda/function/report",
    }
    missing = repo.pkg("build", "nope")
    assert missing.exit_code == 1 and "no artifact or function named 'nope'" in missing.stderr


def test_force_rebuilds_everything_to_the_same_bytes(repo):
    first = by_id(repo.pkg_json("build"))
    forced = repo.pkg_json("build", "--force")
    assert forced["summary"] == {"built": 3, "cached": 0}
    assert {k: v["sha256"] for k, v in by_id(forced).items()} == {k: v["sha256"] for k, v in first.items()}


def test_deleted_artifact_file_is_rebuilt(repo):
    layer = by_id(repo.pkg_json("build"))["lambda/internal_libs"]
    os.unlink(layer["path"])
    plan = by_id(repo.pkg_json("plan"))
    assert plan["lambda/internal_libs"]["reason"] == "artifact file missing from the cache"
    assert built_ids(repo.pkg_json("build")) == {"lambda/internal_libs"}


def test_text_output(repo):
    result = repo.pkg("build")
    assert result.exit_code == 0
    assert "built   lambda/function/ingest" in result.stdout
    assert re.search(r"built   lambda/function/ingest +\d+(\.\d)? (B|KiB|MiB)  \(", result.stdout)  # units.format_size
    assert "3 built, 0 cached" in result.stdout
    assert "0 built, 3 cached" in repo.pkg("build").stdout
