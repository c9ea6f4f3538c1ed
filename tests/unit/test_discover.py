"""Discovery and every source check, one table row per service: names, parse checks, cached verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache.hashing import FileDigests
from packager.discover import (
    SOURCE_RULES,
    Entry,
    check_job_script,
    check_lambda_handler,
    check_name,
    check_sources,
    discover,
    discover_service,
)
from packager.errors import DiscoveryError
from packager.model import Service


class MemoryVerdicts:
    """The two index calls source checks make, in memory; records each save (what was parsed and passed)."""

    def __init__(self) -> None:
        self.passed: dict[str, set[str]] = {}
        self.saves: list[list[str]] = []

    def checked_sources(self, checker: str) -> set[str]:
        return set(self.passed.get(checker, set()))

    def save_checked_sources(self, digests, checker: str) -> None:
        self.saves.append(list(digests))
        self.passed.setdefault(checker, set()).update(digests)


def entry(service: Service, name: str) -> Entry:
    return Entry(name, f"src/{service}/{name}.py", None)


def test_every_service_has_source_rules():
    assert set(SOURCE_RULES) == set(Service)
    assert SOURCE_RULES[Service.LAMBDA].check_source is check_lambda_handler
    assert {SOURCE_RULES[service].check_source for service in Service if service.is_job} == {check_job_script}


@pytest.mark.parametrize(
    "name, problem",
    [
        ("report", None),
        ("9lives", "'9lives' can't be a Lambda function name: use letters, digits and underscores"),
        ("my-func", "'my-func' can't be a Lambda function name"),
        ("lambda", "'lambda' is a Python keyword and can't be imported as a handler module"),
        ("x" * 65, f"'{'x' * 65}' is 65 characters; Lambda function names take at most 64"),
        ("internal_libs", "'internal_libs' is the shared package's name and can't name a function"),
        ("json", "'json' shadows the standard-library module 'json': the runtime or a library may import it first"),
    ],
)
def test_lambda_name_rules(name, problem):
    found = check_name(entry(Service.LAMBDA, name), SOURCE_RULES[Service.LAMBDA].names)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"src/lambda/{name}.py:1: {problem}")


@pytest.mark.parametrize("service", [service for service in Service if service.is_job])
@pytest.mark.parametrize(
    "name, problem",
    [
        ("daily-totals", None),
        ("9lives", None),
        ("lambda", None),  # a job is never imported by name
        ("bad name", "'bad name' can't be a job name: use letters, digits, '_' and '-'"),
        ("_private", "'_private' can't be a job name"),
        ("json", "'json' shadows the standard-library module 'json': the script's folder comes first on sys.path"),
    ],
)
def test_job_name_rules(service, name, problem):
    found = check_name(entry(service, name), SOURCE_RULES[service].names)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"src/{service}/{name}.py:1: {problem}")


def test_parse_checks_share_the_syntax_error_message():
    broken = b"def handler(event, context)\n    return 1\n"
    assert check_job_script(broken, "src/emr/x.py") == check_lambda_handler(broken, "src/emr/x.py")
    assert check_job_script(broken, "src/emr/x.py").startswith("src/emr/x.py:1: syntax error:")
    assert check_job_script(b"a = 1\x00", "j.py").startswith("j.py:1: syntax error: source code string cannot")
    assert check_job_script(b"print('no handler needed')\n", "j.py") is None
    assert check_lambda_handler(b"print('x')\n", "f.py") == (
        "f.py:1: no top-level 'handler' function; Lambda calls <module>.handler(event, context)"
    )


def write(root: Path, relpath: str, text: str) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_one_pass_reports_every_service_and_caches_what_passed(tmp_path):
    write(tmp_path, "src/lambda/report.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "src/lambda/broken.py", "def handler(:\n")
    write(tmp_path, "src/emr/bad name.py", "print(1)\n")
    write(tmp_path, "src/glue_spark/clean.py", "print(1)\n")
    write(tmp_path, "src/glue_spark/orphan.requirements.txt", "tinydep\n")
    verdicts = MemoryVerdicts()
    with pytest.raises(DiscoveryError) as error:
        discover(str(tmp_path), verdicts, FileDigests({}))
    assert error.value.problems == [
        "src/lambda/broken.py:1: syntax error: invalid syntax",
        "src/glue_spark/orphan.requirements.txt:1: no orphan.py beside these requirements",
        "src/emr/bad name.py:1: 'bad name' can't be a job name: use letters, digits, '_' and '-'",
    ]
    assert len(verdicts.passed["lambda-handler-3"]) == 1 and len(verdicts.passed["job-script-2"]) == 1


def test_a_source_that_passed_is_not_read_again(tmp_path):
    write(tmp_path, "src/glue_python_shell/totals.py", "print(1)\n")
    folder = discover_service(str(tmp_path), "glue_python_shell")
    assert folder.name is Service.GLUE_PYTHON_SHELL
    verdicts = MemoryVerdicts()
    digests = FileDigests({})
    assert check_sources(verdicts, folder, str(tmp_path), digests) == []
    assert check_sources(verdicts, folder, str(tmp_path), digests) == []
    assert [len(saved) for saved in verdicts.saves] == [1]  # parsed once; the second pass trusted the verdict


@pytest.mark.parametrize("service", list(Service))
def test_a_service_folder_requirements_file_is_refused_with_where_its_lines_belong(tmp_path, service):
    write(tmp_path, f"src/{service}/requirements.txt", "tinylib\n")
    write(tmp_path, f"src/{service}/x.py", "def handler(event, context):\n    return 1\n")
    with pytest.raises(DiscoveryError) as error:
        discover(str(tmp_path), MemoryVerdicts(), FileDigests({}))
    what = "function" if service is Service.LAMBDA else "job"
    assert error.value.problems == [
        f"src/{service}/requirements.txt:1: a service folder's requirements.txt is not read; move its lines to"
        f" src/{service}/internal_libs/requirements.txt (dependencies every {what} shares) or to"
        f" src/{service}/<name>.requirements.txt (one {what}'s own)"
    ]
    # Where the lines belong is read as before: internal_libs' file, and a function's own.
    (tmp_path / f"src/{service}/requirements.txt").unlink()
    write(tmp_path, f"src/{service}/internal_libs/requirements.txt", "tinylib\n")
    folder = discover_service(str(tmp_path), service)
    assert folder.problems == [] and folder.internal_libs is not None
    assert folder.internal_libs.requirements == f"src/{service}/internal_libs/requirements.txt"


def test_the_handler_check_follows_the_handler_name(tmp_path):
    main = b"def main(event, context):\n    return 1\n"
    assert check_lambda_handler(main, "f.py", "main") is None
    assert check_lambda_handler(main, "f.py") == (
        "f.py:1: no top-level 'handler' function; Lambda calls <module>.handler(event, context)"
    )
    assert check_lambda_handler(b"async def main(event, context):\n    pass\n", "f.py", "main") == (
        "f.py:1: 'async def main' is not supported by Lambda's Python runtime; use def"
    )
    assert check_lambda_handler(b"def main(event):\n    pass\n", "f.py", "main") == (
        "f.py:1: main takes 1 argument; Lambda calls main(event, context)"
    )
    assert check_lambda_handler(b"from app import run as main\n", "f.py", "main") is None

    # A verdict holds for one handler name: the same file is checked again for another.
    write(tmp_path, "src/lambda/x.py", main.decode())
    folder = discover_service(str(tmp_path), "lambda")
    verdicts, digests = MemoryVerdicts(), FileDigests({})
    assert check_sources(verdicts, folder, str(tmp_path), digests, lambda name: "main") == []
    assert check_sources(verdicts, folder, str(tmp_path), digests) == [
        "src/lambda/x.py:1: no top-level 'handler' function; Lambda calls <module>.handler(event, context)"
    ]
    assert set(verdicts.passed) == {"lambda-handler-3/main"}


def test_every_internal_libs_module_must_compile_and_passing_ones_are_not_read_again(tmp_path):
    write(tmp_path, "src/lambda/report.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "src/lambda/internal_libs/__init__.py", "")
    write(tmp_path, "src/lambda/internal_libs/orders/parse.py", "def parse(:\n    pass\n")
    write(tmp_path, "src/lambda/internal_libs/notes.txt", "def not python(:\n")  # only .py files are modules
    write(tmp_path, "src/glue_spark/clean.py", "print(1)\n")
    write(tmp_path, "src/glue_spark/internal_libs/cleaning.py", "x = 1\n\ny = (\n")
    verdicts = MemoryVerdicts()
    with pytest.raises(DiscoveryError) as error:
        discover(str(tmp_path), verdicts, FileDigests({}))
    assert error.value.problems == [
        "src/lambda/internal_libs/orders/parse.py:1: syntax error: invalid syntax",
        "src/glue_spark/internal_libs/cleaning.py:3: syntax error: '(' was never closed",
    ]
    assert len(verdicts.passed["internal-libs-module-1"]) == 1  # __init__.py

    write(tmp_path, "src/lambda/internal_libs/orders/parse.py", "def parse(record):\n    return record\n")
    write(tmp_path, "src/glue_spark/internal_libs/cleaning.py", "x = 1\n")
    discover(str(tmp_path), verdicts, FileDigests({}))
    assert len(verdicts.passed["internal-libs-module-1"]) == 3
    saves = len(verdicts.saves)
    discover(str(tmp_path), verdicts, FileDigests({}))
    assert all(saved == [] for saved in verdicts.saves[saves:])  # every verdict trusted: nothing parsed again
