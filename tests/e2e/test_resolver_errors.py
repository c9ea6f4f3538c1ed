"""A requirements set uv or pip can't resolve (issue 12): each cause its own message and hint, against
the user's file and line: unknown package, no such version, no wheel for the platform, a conflict."""

from __future__ import annotations

import pytest
from test_deps import deps_repo

FILE = "src/lambda/ingest.requirements.txt"
FOUND_NOWHERE = "in the find_links folders (no_index = true)"

CASES = [
    ("tinylib==1.0\nnosuchpkg==1.0\n", f"{FILE}:2: no package named 'nosuchpkg' {FOUND_NOWHERE}",
     "check the spelling"),
    ("# the newest\ntinylib==9.9\n", f"{FILE}:2: no version of tinylib matches ==9.9", "pin a version"),
    ("armonly==1.0\n", f"{FILE}:1: no wheel of 'armonly' installs on python3.12 x86_64", "manylinux wheels"),
    ("usesghost==1.0\n", f"{FILE}: no package named 'ghost' {FOUND_NOWHERE} (a dependency of",
     "check the spelling"),
    ("tinylib==1.1\nneedsold==1.0\n", f"{FILE}: the requirements can't be resolved together for python3.12 x86_64"
     f" (cp312, manylinux_2_34 and older): needsold ({FILE}:2), tinylib ({FILE}:1)", "conflicting pins"),
]  # fmt: skip


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize(
    ("requirements", "message", "hint"), CASES, ids=["unknown", "version", "wheel", "deep", "conflict"]
)
def test_each_resolver_failure_has_its_own_message_against_the_users_line(
    tmp_path, wheelhouse, installer, requirements, message, hint
):
    repo = deps_repo(tmp_path, wheelhouse, extra=f'installer = "{installer}"\n')
    repo.write(FILE, requirements)

    result = repo.pkg("build", "ingest")

    assert result.exit_code == 1
    assert f"error: {message}" in result.stderr, result.stderr
    hint_line = next(line for line in result.stderr.splitlines() if line.startswith("hint:"))
    assert hint in hint_line
    assert "Traceback" not in result.stderr and "/tmp" not in result.stderr.replace(str(tmp_path), "")


JOB_FILE = "src/glue_spark/internal_libs/requirements.txt"


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_job_dependency_failures_are_classified_too(tmp_path, wheelhouse, installer):
    from jobs_fixtures import make_jobs_repo

    index = f'\n[tool.pkg.dependencies]\nfind_links = ["{wheelhouse}"]\nno_index = true\ninstaller = "{installer}"\n'
    repo = make_jobs_repo(tmp_path, extra_config=index)
    for requirements, message in [
        ("tinylib\nnosuchpkg\n", f"{JOB_FILE}:2: no package named 'nosuchpkg' {FOUND_NOWHERE}"),
        ("tinylib==9.9\n", f"{JOB_FILE}:1: no version of tinylib matches ==9.9"),
        ("armonly==1.0\n", f"{JOB_FILE}:1: no wheel of armonly for Python 3.11"),
    ]:
        repo.write(JOB_FILE, requirements)
        result = repo.pkg("build", "glue_spark/job/clean_glue_spark")
        assert result.exit_code == 1
        assert f"error: {message}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
