"""`pkg build` / `pkg plan` for Glue Python shell, Glue Spark and EMR jobs: same cache, same guarantees."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

from jobs_fixtures import make_jobs_repo, make_wheelhouse

JOB_IDS = {
    "glue_python_shell/internal_libs",
    "glue_python_shell/job/totals",
    "glue_spark/internal_libs",
    "glue_spark/job/clean_glue_spark",
    "emr/internal_libs",
    "emr/job/clean_emr",
}


def by_id(report: dict) -> dict[str, dict]:
    return {artifact["id"]: artifact for artifact in report["artifacts"]}


def built_ids(report: dict) -> set[str]:
    return {a["id"] for a in report["artifacts"] if a["status"] == "built"}


def test_jobs_are_built_beside_lambda_with_their_kinds(tmp_path):
    repo = make_jobs_repo(tmp_path)
    report = repo.pkg_json("build")
    artifacts = by_id(report)
    assert JOB_IDS <= set(artifacts)
    assert report["summary"] == {"built": 9, "cached": 0}
    assert artifacts["glue_python_shell/internal_libs"]["kind"] == "python-wheel"
    assert artifacts["glue_spark/internal_libs"]["kind"] == "py-files-zip"
    assert artifacts["glue_python_shell/job/totals"]["kind"] == "glue-python-shell-job"
    assert artifacts["glue_spark/job/clean_glue_spark"]["kind"] == "glue-spark-job"
    assert artifacts["emr/job/clean_emr"]["kind"] == "emr-job"
    script = artifacts["glue_python_shell/job/totals"]
    assert Path(script["path"]).read_bytes() == (repo.root / "src/glue_python_shell/totals.py").read_bytes()
    with zipfile.ZipFile(artifacts["emr/internal_libs"]["path"]) as archive:
        assert archive.namelist() == ["internal_libs/__init__.py", "internal_libs/cleaning.py"]
    assert repo.pkg_json("build")["summary"] == {"built": 0, "cached": 9}


def test_internal_libs_wheel_installs_with_pip_and_imports(tmp_path):
    repo = make_jobs_repo(tmp_path)
    wheel = by_id(repo.pkg_json("build"))["glue_python_shell/internal_libs"]["path"]
    named = tmp_path / "internal_libs-0.0.0-py3-none-any.whl"
    named.write_bytes(Path(wheel).read_bytes())
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(named),
        ],
        check=True,
    )
    out = subprocess.run(
        [sys.executable, "-c", "from internal_libs.totals import total; print(total([1, 2]))"],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "3"
    with zipfile.ZipFile(wheel) as archive:
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
        assert "Tag: py3-none-any" in archive.read("internal_libs-0.0.0.dist-info/WHEEL").decode()


def test_job_artifacts_are_byte_identical_across_clones(tmp_path):
    one = by_id(make_jobs_repo(tmp_path, name="one").pkg_json("build"))
    two = by_id(make_jobs_repo(tmp_path, name="two").pkg_json("build"))
    for artifact_id in JOB_IDS:
        assert one[artifact_id]["input_hash"] == two[artifact_id]["input_hash"]
        assert one[artifact_id]["sha256"] == two[artifact_id]["sha256"]


def test_edits_rebuild_exactly_what_they_touch(tmp_path):
    repo = make_jobs_repo(tmp_path)
    repo.pkg_json("build")
    repo.write("src/emr/clean_emr.py", "print('edited')\n")
    assert built_ids(repo.pkg_json("build")) == {"emr/job/clean_emr"}
    repo.write("src/glue_spark/internal_libs/cleaning.py", "def clean(frame):\n    return frame.limit(1)\n")
    assert built_ids(repo.pkg_json("build")) == {"glue_spark/internal_libs"}
    plan = repo.pkg_json("plan")
    assert plan["summary"]["build"] == 0
    repo.write("src/glue_python_shell/internal_libs/totals.py", "def total(values):\n    return 0\n")
    reasons = {a["id"]: a["reason"] for a in repo.pkg_json("plan")["artifacts"] if a["action"] == "build"}
    assert reasons == {"glue_python_shell/internal_libs": "src/glue_python_shell/internal_libs/totals.py changed"}


def test_names_select_a_job_and_what_it_uses(tmp_path):
    repo = make_jobs_repo(tmp_path)
    report = repo.pkg_json("build", "glue_spark/job/clean_glue_spark")
    assert set(by_id(report)) == {"glue_spark/job/clean_glue_spark", "glue_spark/internal_libs"}


def test_dependencies_are_platform_wheels_for_glue_and_an_installed_archive_for_emr(tmp_path):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    index = f'find_links = ["{wheelhouse}"]\nno_index = true\n'
    config = f"\n[tool.pkg.glue_spark.jobs.clean_glue_spark]\n{index}\n[tool.pkg.emr.jobs.clean_emr]\n{index}"
    repo = make_jobs_repo(tmp_path, extra_config=config)
    repo.write("src/glue_spark/internal_libs/requirements.txt", "# shared\nfastdep==3.0\ntinydep\n")
    repo.write("src/emr/internal_libs/requirements.txt", "tinydep\nfastdep\n")
    artifacts = by_id(repo.pkg_json("build"))

    # Glue 5.0 runs CPython 3.11 on AL2023: the cp311 manylinux_2_28 wheel, plus tinydep's own dependency.
    # The job's index settings differ from the service default, so it gets a dependency set of its own.
    glue = artifacts["glue_spark/job_deps/clean_glue_spark"]
    assert glue["kind"] == "wheelhouse"
    with zipfile.ZipFile(glue["path"]) as archive:
        assert archive.namelist() == [
            "fastdep-3.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            "helperdep-2.0-py3-none-any.whl",
            "tinydep-1.0-py3-none-any.whl",
        ]
    emr = artifacts["emr/job_deps/clean_emr"]
    assert emr["kind"] == "python-archive"
    with zipfile.ZipFile(emr["path"]) as archive:
        names = archive.namelist()
    assert "fastdep/_speed.cpython-311-x86_64-linux-gnu.so" in names
    assert "tinydep/__init__.py" in names and "helperdep/__init__.py" in names
    assert "tinydep-1.0.dist-info/METADATA" in names

    # Reordering and commenting the same set changes nothing.
    repo.write("src/emr/internal_libs/requirements.txt", "# same set\nfastdep\n\ntinydep  # pure\n")
    assert built_ids(repo.pkg_json("build")) == set()
    repo.write("src/emr/internal_libs/requirements.txt", "fastdep\n")
    assert built_ids(repo.pkg_json("build")) == {"emr/job_deps/clean_emr"}


def test_a_job_requirements_file_gets_its_own_set(tmp_path):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    config = f'\n[tool.pkg.glue_python_shell.jobs.totals]\nfind_links = ["{wheelhouse}"]\nno_index = true\n'
    repo = make_jobs_repo(tmp_path, extra_config=config)
    repo.write("src/glue_python_shell/totals.requirements.txt", "fastdep\n")
    artifacts = by_id(repo.pkg_json("build"))
    with zipfile.ZipFile(artifacts["glue_python_shell/job_deps/totals"]["path"]) as archive:
        # Python shell is CPython 3.9 on AL2: only the manylinux2014 cp39 wheel fits.
        assert archive.namelist() == ["fastdep-3.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]


def test_a_dependency_without_a_fitting_wheel_fails_naming_it(tmp_path):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    config = f'\n[tool.pkg.glue_spark]\nglue_version = "4.0"\nfind_links = ["{wheelhouse}"]\nno_index = true\n'
    repo = make_jobs_repo(tmp_path)
    text = (repo.root / "pyproject.toml").read_text().replace('glue_version = "5.0"\n', "")
    (repo.root / "pyproject.toml").write_text(text.replace("[tool.pkg.glue_spark]\n", config.lstrip("\n"), 1))
    repo.write("src/glue_spark/internal_libs/requirements.txt", "fastdep\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "no wheel of fastdep" in result.stderr and "Python 3.10" in result.stderr
    assert "manylinux" in result.stderr and "hint:" in result.stderr


def test_job_script_problems_are_one_line_each_and_nothing_is_built(tmp_path):
    repo = make_jobs_repo(tmp_path)
    repo.write("src/glue_spark/broken.py", "def main(:\n")
    repo.write("src/emr/bad name.py", "print(1)\n")
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "src/glue_spark/broken.py:1: syntax error" in result.stderr
    assert "src/emr/bad name.py:1: 'bad name' can't be a job name" in result.stderr
    assert not (repo.cache_dir / "store").exists()


def test_job_config_errors_name_the_key(tmp_path):
    cases = {
        "\n[tool.pkg.glue_spark.jobs.clean_glue_spark]\nworkers = 3\n": (
            "tool.pkg.glue_spark.jobs.clean_glue_spark: unknown key 'workers'"
        ),
        '\n[tool.pkg.emr.jobs.x]\nrelease_label = "emr-6.15.0"\n': (
            "tool.pkg.emr.jobs.x.release_label: unsupported release"
        ),
        "\n[tool.pkg.glue_python_shell.jobs.totals]\nmax_capacity = 2\n": "max_capacity: unsupported value 2",
        '\n[tool.pkg.stages.dev.glue_spark]\nglue_version = "4.0"\n': "'glue_version' can't differ per stage",
        "\n[tool.pkg.stages.dev.emr.jobs.a]\nnumber_of_workers = 2\n": (
            "tool.pkg.stages.dev.emr.jobs.a: unknown key 'number_of_workers'"
        ),
    }
    for extra, message in cases.items():
        repo = make_jobs_repo(tmp_path / str(abs(hash(extra))))
        text = (repo.root / "pyproject.toml").read_text()
        (repo.root / "pyproject.toml").write_text(text + extra)
        result = repo.pkg("build")
        assert result.exit_code == 1, extra
        assert message in result.stderr, (extra, result.stderr)


def test_a_python_the_release_does_not_offer_is_refused(tmp_path):
    repo = make_jobs_repo(tmp_path, extra_config='\n[tool.pkg.emr.jobs.clean_emr]\npython_version = "3.13"\n')
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "python_version 3.13 is not offered by emr-7.9.0" in result.stderr
    assert "3.11, 3.9" in result.stderr


def test_building_and_planning_jobs_never_imports_boto3(tmp_path, monkeypatch):
    from test_cli import probe

    repo = make_jobs_repo(tmp_path)
    monkeypatch.setenv("PKG_CACHE_DIR", str(repo.cache_dir))
    assert probe(["build"], cwd=repo.root) == "NO_BOTO3"
    assert probe(["build"], cwd=repo.root) == "NO_BOTO3"
    assert probe(["plan"], cwd=repo.root) == "NO_BOTO3"


def test_job_dependencies_use_the_repo_wide_index_settings(tmp_path):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    repo = make_jobs_repo(
        tmp_path, extra_config=f'\n[tool.pkg.dependencies]\nfind_links = ["{wheelhouse}"]\nno_index = true\n'
    )
    repo.write("src/emr/internal_libs/requirements.txt", "tinydep\n")
    artifacts = by_id(repo.pkg_json("build"))
    with zipfile.ZipFile(artifacts["emr/deps"]["path"]) as archive:
        assert "tinydep/__init__.py" in archive.namelist()


def test_an_unconfirmed_runtime_builds_with_a_warning(tmp_path):
    repo = make_jobs_repo(
        tmp_path, extra_config='\n[tool.pkg.glue_spark.jobs.clean_glue_spark]\nglue_version = "6.0"\n'
    )
    result = repo.pkg("build")
    assert result.exit_code == 0
    assert "src/glue_spark/clean_glue_spark.py: 6.0's Python and platform are unconfirmed facts" in result.stderr


def test_refresh_deps_resolves_unpinned_job_requirements_again(tmp_path):
    from jobs_fixtures import make_wheel

    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    config = f'\n[tool.pkg.glue_python_shell.jobs.totals]\nfind_links = ["{wheelhouse}"]\nno_index = true\n'
    repo = make_jobs_repo(tmp_path, extra_config=config)
    repo.write("src/glue_python_shell/totals.requirements.txt", "tinydep\n")
    first = by_id(repo.pkg_json("build"))["glue_python_shell/job_deps/totals"]
    make_wheel(wheelhouse, "tinydep", "1.1", "py3-none-any", {"tinydep/__init__.py": "VERSION = '1.1'\n"})
    assert built_ids(repo.pkg_json("build")) == set()  # the text did not change: nothing moves
    refreshed = repo.pkg_json("build", "--refresh-deps")
    assert built_ids(refreshed) == {"glue_python_shell/job_deps/totals"}
    deps = by_id(refreshed)["glue_python_shell/job_deps/totals"]
    assert deps["sha256"] != first["sha256"]
    with zipfile.ZipFile(deps["path"]) as archive:
        assert "tinydep-1.1-py3-none-any.whl" in archive.namelist()


def test_uv_and_pip_give_the_same_wheels(tmp_path):
    from wheelhouse import WHEELS, write_wheel

    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    for spec in WHEELS:
        if spec.name in ("tinylib", "helper", "nativelib", "newglibc"):
            write_wheel(wheelhouse, spec)
    built = {}
    for installer in ("pip", "uv"):
        index = f'find_links = ["{wheelhouse}"]\nno_index = true\ninstaller = "{installer}"\n'
        config = f"\n[tool.pkg.dependencies]\n{index}"
        repo = make_jobs_repo(tmp_path, name=installer, extra_config=config)
        repo.write("src/glue_python_shell/internal_libs/requirements.txt", "fastdep\ntinylib\n")
        repo.write("src/glue_spark/internal_libs/requirements.txt", "fastdep\nhelper\ntinydep\nnewglibc\n")
        repo.write("src/emr/internal_libs/requirements.txt", "tinydep\nhelper\nfastdep\n")
        built[installer] = {a["id"]: a for a in repo.pkg_json("build")["artifacts"] if "/deps" in a["id"]}
    assert set(built["pip"]) == {"glue_python_shell/deps", "glue_spark/deps", "emr/deps"}
    for artifact_id, artifact in built["pip"].items():
        assert built["uv"][artifact_id]["input_hash"] == artifact["input_hash"]
        assert built["uv"][artifact_id]["sha256"] == artifact["sha256"], artifact_id
    with zipfile.ZipFile(built["uv"]["glue_spark/deps"]["path"]) as archive:
        assert archive.namelist() == [
            "fastdep-3.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            "helper-2.0-py3-none-any.whl",
            "helperdep-2.0-py3-none-any.whl",
            "newglibc-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
            "tinydep-1.0-py3-none-any.whl",
            "tinylib-1.1-py3-none-any.whl",
        ]


class _WheelServer(http.server.SimpleHTTPRequestHandler):
    """A find_links page over HTTP that records who downloaded which wheel.

    With `refuse_urllib`, like a mirror wanting credentials, it refuses a download by a client that
    brings none (Python's urllib); uv and pip bring their own.
    """

    refuse_urllib = False
    downloads: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        agent = self.headers.get("User-Agent", "").split("/")[0]
        if self.path.endswith(".whl"):
            self.downloads.append((agent, self.path.lstrip("/")))
            if self.refuse_urllib and agent == "Python-urllib":
                self.send_error(401)
                return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


def test_job_wheels_come_over_http_and_pip_takes_over_when_a_download_is_refused(tmp_path):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    results = {}
    for name, refuse in (("open", False), ("guarded", True)):
        handler_class = type(name, (_WheelServer,), {"refuse_urllib": refuse, "downloads": []})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler_class, directory=str(wheelhouse))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            repo = make_jobs_repo(tmp_path, name=name)
            text = (repo.root / "pyproject.toml").read_text()
            text = text.replace(
                'release_label = "emr-7.9.0"\n', f'release_label = "emr-7.9.0"\nfind_links = ["{url}"]\n'
            )
            (repo.root / "pyproject.toml").write_text(
                text.replace("[tool.pkg.emr]\n", "[tool.pkg.emr]\nno_index = true\n")
            )
            repo.write("src/emr/internal_libs/requirements.txt", "tinydep\nfastdep\n")
            results[name] = (by_id(repo.pkg_json("build"))["emr/deps"], {agent for agent, _ in handler_class.downloads})
        finally:
            server.shutdown()
            server.server_close()
    (opened, open_agents), (guarded, guarded_agents) = results["open"], results["guarded"]
    assert "Python-urllib" in open_agents and "pip" not in open_agents  # uv resolved, pkg fetched the wheels
    assert {"Python-urllib", "pip"} <= guarded_agents  # refused, then pip downloaded the set
    assert opened["sha256"] == guarded["sha256"]
    with zipfile.ZipFile(opened["path"]) as archive:
        assert "fastdep/_speed.cpython-311-x86_64-linux-gnu.so" in archive.namelist()
