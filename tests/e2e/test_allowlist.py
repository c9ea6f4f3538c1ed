"""The opt-in packaging allowlist (issue 12): `[tool.pkg.<service>] include = [...]` packages only the
internal_libs files it matches; the secrets denylist still applies on top; a bad value is one error line."""

from __future__ import annotations

import zipfile

import pytest

from conftest import PYPROJECT, Repo


def layer_names(repo: Repo, report: dict) -> list[str]:
    path = next(a["path"] for a in report["artifacts"] if a["id"] == "lambda/internal_libs")
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


def with_include(patterns: str) -> str:
    return PYPROJECT.replace("[tool.pkg.lambda]\n", f"[tool.pkg.lambda]\ninclude = {patterns}\n")


def test_only_the_files_the_allowlist_matches_are_packaged_and_never_a_secret(repo: Repo):
    repo.write("src/lambda/internal_libs/rates.json", "{}\n")
    repo.write("src/lambda/internal_libs/NOTES.md", "internal notes\n")
    repo.write("src/lambda/internal_libs/queries/daily.sql", "select 1\n")
    repo.write("src/lambda/internal_libs/.env", "TOKEN=secret\n")
    repo.write("pyproject.toml", with_include('["*.py", "*.json", ".env"]'))

    first = repo.pkg_json("build")

    assert layer_names(repo, first) == [
        "python/internal_libs/__init__.py",
        "python/internal_libs/orders.py",
        "python/internal_libs/rates.json",
    ]
    # The handlers themselves are always packaged: the allowlist is about what internal_libs ships.
    assert all(a["status"] == "built" for a in first["artifacts"] if a["id"].startswith("lambda/function/"))

    repo.write("pyproject.toml", with_include('["*.py", "*.json", "queries/*.sql"]'))
    second = repo.pkg_json("build")

    assert "python/internal_libs/queries/daily.sql" in layer_names(repo, second)
    assert [a["id"] for a in second["artifacts"] if a["status"] == "built"] == ["lambda/internal_libs"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tool.pkg.lambda]\ninclude = []\n", "error: tool.pkg.lambda.include is empty: nothing would be packaged"),
        ('[tool.pkg.lambda]\ninclude = ["../*.py"]\n', "error: tool.pkg.lambda.include: '../*.py' is not a pattern"),
        ("[tool.pkg.lambda]\ninclude = [3]\n", "error: tool.pkg.lambda.include must be an array of glob patterns"),
        ('[tool.pkg.lambda]\ninclude = "*.py"\n', "error: tool.pkg.lambda.include must be an array"),
        (
            '[tool.pkg.stages.dev.lambda]\ninclude = ["*.py"]\n',
            "error: tool.pkg.stages.dev.lambda: unknown key 'include'",
        ),
    ],
)
def test_a_bad_allowlist_is_one_error_line(repo: Repo, table: str, message: str):
    repo.write("pyproject.toml", PYPROJECT.replace("[tool.pkg.lambda]\n", table, 1) if "stages" not in table
               else PYPROJECT + table)  # fmt: skip

    result = repo.pkg("build")

    assert result.exit_code != 0
    assert result.stderr.splitlines()[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr
