"""Installs are hermetic: pip and uv read no pip.conf, uv.toml or PIP_*/UV_* variable, so one set hash is
one set of bytes on every machine. A hostile environment (bogus indexes, a rogue find-links folder with
newer versions) changes nothing in Lambda layers or a Glue job's dependencies, for both installers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from jobs_fixtures import make_jobs_repo, make_wheel, make_wheelhouse

BOGUS = "http://127.0.0.1:9/simple"  # the discard port: nothing answers there


def rogue_wheelhouse(folder: Path) -> Path:
    """Newer versions of every package the repo asks for: picked if any machine setting leaks in."""
    for name in ("helper", "tinylib", "tinydep", "helperdep"):
        make_wheel(folder, name, "9.0", "py3-none-any", {f"{name}/__init__.py": "ROGUE = True\n"})
    return folder


def hostile_env(base: Path, rogue: Path) -> dict[str, str | None]:
    """Every way a machine could steer pip or uv: variables, PIP_CONFIG_FILE, and files in a fresh HOME."""
    home = base / "home"
    pip_conf = f"[global]\nindex-url = {BOGUS}\nextra-index-url = {BOGUS}\nfind-links = {rogue}\n"
    (home / ".config/pip").mkdir(parents=True)
    (home / ".config/pip/pip.conf").write_text(pip_conf)
    (home / ".config/uv").mkdir(parents=True)
    (home / ".config/uv/uv.toml").write_text(f'index-url = "{BOGUS}"\nfind-links = ["{rogue}"]\n')
    (base / "pip.conf").write_text(pip_conf)
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": None,
        "PIP_CONFIG_FILE": str(base / "pip.conf"),
        "PIP_INDEX_URL": BOGUS,
        "PIP_EXTRA_INDEX_URL": BOGUS,
        "PIP_FIND_LINKS": str(rogue),
        "UV_INDEX_URL": BOGUS,
        "UV_EXTRA_INDEX_URL": BOGUS,
        "UV_FIND_LINKS": str(rogue),
    }


def clean_env() -> dict[str, str | None]:
    """The baseline: no PIP_* or UV_* variable of this machine (but uv's cache folder)."""
    return {name: None for name in os.environ if name.startswith(("PIP_", "UV_")) and name != "UV_CACHE_DIR"}


def fingerprints(report: dict) -> dict[str, tuple[str, str]]:
    """artifact id -> (its input hash, the sha256 of its file) for every dependency set."""
    found = {}
    for artifact in report["artifacts"]:
        if "deps" in artifact["id"]:
            with open(artifact["path"], "rb") as stream:
                found[artifact["id"]] = (artifact["input_hash"], hashlib.file_digest(stream, "sha256").hexdigest())
    return found


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_machine_configuration_never_reaches_an_install(tmp_path, wheelhouse, installer):
    jobs_wheels = make_wheelhouse(tmp_path / "jobs-wheels")
    index = f'no_index = true\nfind_links = ["{wheelhouse}", "{jobs_wheels}"]\ninstaller = "{installer}"\n'
    repo = make_jobs_repo(tmp_path, extra_config=f"\n[tool.pkg.dependencies]\n{index}")
    repo.write("src/lambda/internal_libs/requirements.txt", "helper\n")
    repo.write("src/lambda/ingest.requirements.txt", "nativelib==1.0\n")
    repo.write("src/glue_spark/internal_libs/requirements.txt", "tinydep\n")

    clean = fingerprints(repo.pkg_json("build", env={**clean_env(), "PKG_CACHE_DIR": str(tmp_path / "clean")}))
    assert set(clean) == {"lambda/internal_libs_deps/0", "lambda/function_deps/ingest/0", "glue_spark/deps"}

    hostile = {**clean_env(), **hostile_env(tmp_path, rogue_wheelhouse(tmp_path / "rogue"))}
    report = repo.pkg_json("build", env={**hostile, "PKG_CACHE_DIR": str(tmp_path / "hostile")})
    assert {a["status"] for a in report["artifacts"]} == {"built"}  # a fresh cache: every set installed again
    assert fingerprints(report) == clean
