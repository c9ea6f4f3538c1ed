"""packager.app called as a library, without click: plain arguments in, typed reports out."""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext

import pytest

from packager import app, render
from packager.builders.builder import open_workspace
from packager.errors import PkgError

FUNCTION = "lambda/function/ingest"


class RecordingProgress:
    """A Progress that keeps what it was told."""

    def __init__(self):
        self.notes: list[str] = []
        self.builds: list[int] = []
        self.built: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def building(self, count: int):
        self.builds.append(count)
        return nullcontext(lambda item: self.built.append(item.spec.id))


@pytest.fixture
def root(repo, monkeypatch) -> str:
    monkeypatch.setenv("PKG_CACHE_DIR", str(repo.cache_dir))
    monkeypatch.delenv("PKG_CACHE_URI", raising=False)
    return str(repo.root)


def test_build_reports_what_it_built_then_finds_everything_cached(root):
    progress = RecordingProgress()
    first = app.build(root, progress=progress)
    assert sorted(item.spec.id for item in first.built) == sorted(progress.built)
    assert progress.builds == [3] and first.cached == 0
    assert {row["status"] for row in first.artifacts} == {"built"}
    assert all(os.path.isfile(row["path"]) for row in first.artifacts)

    warnings: list[str] = []
    second = app.build(root, warn=warnings.append, progress=RecordingProgress())
    assert second.built == [] and second.cached == 3 and warnings == []
    assert second.to_json()["summary"] == {"built": 0, "cached": 3}
    assert [row["path"] for row in second.artifacts] == [row["path"] for row in first.artifacts]


def test_build_of_a_named_function_takes_its_layers(root):
    report = app.build(root, [FUNCTION])
    assert {item.spec.id for item in report.built} == {FUNCTION, "lambda/internal_libs"}
    rest = app.build(root)
    assert [item.spec.id for item in rest.built] == ["lambda/function/report"] and rest.cached == 2


def test_plan_says_what_would_be_built_and_builds_nothing(root):
    before = app.plan(root)
    assert before.to_build == 3 and before.staged is None
    assert app.plan(root).to_build == 3
    app.build(root)
    assert app.plan(root).to_build == 0
    assert app.plan(root, force=True).to_build == 3


def test_plan_refresh_needs_a_stage(root):
    with pytest.raises(PkgError, match="--refresh") as caught:
        app.plan(root, refresh=True)
    assert caught.value.hint == "add --stage NAME"


def test_ensure_built_builds_an_artifact_and_its_layers_once(root):
    said: list[str] = []
    ws = open_workspace(root)
    try:
        local = app.ensure_built(ws, FUNCTION, said.append)
        assert local.spec.id == FUNCTION
        assert sorted(local.built) == ["lambda/function/ingest", "lambda/internal_libs"]
        assert set(local.files) == {FUNCTION, *local.spec.uses}
        assert all(os.path.isfile(path) for path in local.files.values())
        assert said == [f"building 2 artifacts of {FUNCTION}..."]
        assert app.ensure_built(ws, FUNCTION, said.append).built == []
        assert len(said) == 1
    finally:
        ws.close()


def test_cache_commands_without_a_shared_cache_say_how_to_set_one(root):
    for operation in (app.cache_pull, app.cache_push, app.cache_status):
        with pytest.raises(PkgError, match="no shared cache configured") as caught:
            operation(root)
        assert "cache_uri" in (caught.value.hint or "")


def test_cache_verify_finds_a_missing_file_and_repairs_it(root):
    report = app.build(root)
    assert app.cache_verify(root).ok
    os.unlink(report.artifacts[0]["path"])
    found = app.cache_verify(root)
    assert not found.ok and len(found.problems) == 1
    assert app.cache_verify(root, repair=True).ok
    assert app.cache_verify(root).ok


def test_the_build_line_shows_sizes_in_the_units_limits_use(root, capsys):
    report = app.build(root, [FUNCTION])
    for item in report.built:
        item.record = dataclasses.replace(item.record, size=50 * 1024 * 1024)  # Lambda's "50 MB" upload limit
    render.build(report, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"built   {FUNCTION} ") and "50.0 MiB  (" in line for line in lines)
    assert lines[-1].startswith("2 built, 0 cached in ")
