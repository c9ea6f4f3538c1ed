"""`pkg invoke lambda/<name>`: the handler runs from its built zip and layers, as Lambda would run it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Repo, run_console
from jobs_fixtures import make_jobs_repo, make_wheelhouse

ORDERS = {
    "orders": [
        {"order_id": 1, "customer": "acme", "amount": "2.50"},
        {"order_id": 2, "customer": "acme", "amount": "1.25"},
        {"order_id": 3, "customer": "zeta", "amount": "4"},
    ]
}


@pytest.fixture
def examples(tmp_path: Path) -> Repo:
    """A copy of this repository's example pipelines (src/ and its [tool.pkg])."""
    root = tmp_path / "examples"
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", ".vscode"))
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return Repo(root, tmp_path / "examples-cache")


def event_file(repo: Repo, event: object, name: str = "event.json") -> str:
    path = repo.root / name
    path.write_text(json.dumps(event))
    return str(path)


def test_runs_the_example_functions_from_their_built_artifacts(examples: Repo, no_conda):
    event = event_file(examples, ORDERS)

    report = examples.pkg_json("invoke", "lambda/daily_report", "--event", event)
    assert report["result"] == {"orders": 3, "totals": {"acme": "3.75", "zeta": "4"}}
    assert sorted(report["built"]) == ["lambda/function/daily_report", "lambda/internal_libs"]
    assert report["interpreter"]["source"] == "current interpreter"

    # Plain output is the return value alone, as JSON; a second run builds nothing.
    result = examples.pkg("invoke", "lambda/ingest_orders", "--event", event)
    assert result.exit_code == 0, result.stderr
    accepted = json.loads(result.stdout)["accepted"]
    assert [order["order_id"] for order in accepted] == ["1", "2", "3"]
    again = examples.pkg_json("invoke", "lambda/ingest_orders", "--event", event)
    assert again["built"] == []


def test_an_edit_is_rebuilt_before_the_run(repo: Repo, no_conda):
    event = event_file(repo, {"records": [{"id": 1, "amount": "2"}]})
    assert repo.pkg_json("invoke", "lambda/ingest", "--event", event)["result"] == [{"id": 1, "amount": 2.0}]
    repo.write("src/lambda/internal_libs/orders.py", "def parse(record):\n    return {'id': record['id']}\n")
    report = repo.pkg_json("invoke", "lambda/ingest", "--event", event)
    assert report["result"] == [{"id": 1}]
    assert report["built"] == ["lambda/internal_libs"]


def test_the_handler_sees_only_its_zip_its_layers_and_the_runtime(repo: Repo, no_conda):
    # `report` is another function: on Lambda its file is not in ingest's zip, so it can't be imported.
    repo.write(
        "src/lambda/probe.py",
        """\
        import importlib
        import os
        import sys


        def importable(name):
            try:
                importlib.import_module(name)
                return True
            except ImportError:
                return False


        def handler(event, context):
            return {
                "modules": {name: importable(name) for name in event["modules"]},
                "cwd": os.path.basename(os.getcwd()),
                "path_head": [os.path.basename(p) for p in sys.path[:3]],
            }
        """,
    )
    modules = ["internal_libs.orders", "report", "packager", "click", "boto3"]
    report = repo.pkg_json("invoke", "lambda/probe", "--event", event_file(repo, {"modules": modules}))
    assert report["result"]["modules"] == {
        "internal_libs.orders": True,  # from the internal_libs layer
        "report": False,  # another function's file
        "packager": False,  # the tool itself, installed in this interpreter
        "click": False,  # installed here, but not shipped by the Lambda runtime
        "boto3": True,  # shipped by every Lambda Python runtime
    }
    assert report["result"]["cwd"] == "task"
    assert report["result"]["path_head"] == ["task", "site-packages", "python"]


def test_context_environment_and_stdout(repo: Repo, no_conda):
    repo.write(
        "pyproject.toml",
        """\
        [tool.pkg]
        project = "datamart"

        [tool.pkg.lambda]
        runtime = "python3.12"
        timeout = 30

        [tool.pkg.lambda.functions.ctx]
        memory = 1024
        environment = { TABLE = "orders" }
        """,
    )
    repo.write(
        "src/lambda/ctx.py",
        """\
        import os


        def handler(event, context):
            print("a log line")
            remaining = context.get_remaining_time_in_millis()
            return {
                "name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "request_id": len(context.aws_request_id),
                "remaining_ok": 0 < remaining <= 30_000,
                "table": os.environ["TABLE"],
                "env_name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            }
        """,
    )
    result = repo.pkg("invoke", "lambda/ctx")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": "ctx",
        "memory": "1024",
        "request_id": 36,
        "remaining_ok": True,
        "table": "orders",
        "env_name": "ctx",
    }
    assert "a log line" in result.stderr


def test_a_handler_exception_fails_with_the_users_traceback(examples: Repo, no_conda):
    event = event_file(examples, {"orders": [{"order_id": 1, "customer": "acme"}]})
    result = examples.pkg("invoke", "lambda/daily_report", "--event", event)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert 'File "/var/task/daily_report.py", line 7, in handler' in result.stderr
    assert 'File "/opt/python/internal_libs/orders.py"' in result.stderr
    assert "ValueError: order record is missing 'amount'" in result.stderr
    assert "error: lambda/daily_report failed: ValueError: order record is missing 'amount'" in result.stderr
    assert "bootstrap" not in result.stderr  # only the user's frames


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import not_packaged\n\ndef handler(event, context):\n    return 1\n", "Runtime.ImportModuleError"),
        ("def handler(event, context):\n    return object()\n", "Runtime.MarshalError"),
        ("import time\n\ndef handler(event, context):\n    time.sleep(30)\n", "Task timed out after 1.00 seconds"),
    ],
    ids=["import", "marshal", "timeout"],
)
def test_runtime_failures_are_reported_like_lambda(repo: Repo, no_conda, source, expected):
    repo.write("src/lambda/broken.py", source)
    result = repo.pkg("invoke", "lambda/broken", "--timeout", "1")
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "hint:" in result.stderr


def test_bad_event_files_fail_cleanly(repo: Repo, no_conda):
    missing = repo.pkg("invoke", "lambda/ingest", "--event", "nope.json")
    assert missing.exit_code == 1
    assert "error: event file nope.json not found" in missing.stderr

    (repo.root / "bad.json").write_text('{"records": [\n  {"id": 1,}\n]}')
    invalid = repo.pkg("invoke", "lambda/ingest", "--event", "bad.json")
    assert invalid.exit_code == 1
    assert "error: bad.json:2:12: not valid JSON" in invalid.stderr
    assert "Traceback" not in invalid.stderr + invalid.stdout


def test_unknown_targets_fail_cleanly(repo: Repo, no_conda):
    unknown = repo.pkg("invoke", "lambda/nope")
    assert unknown.exit_code == 1
    assert "no artifact or function named" in unknown.stderr

    for target in ("emr/sessionize", "glue_spark/orders_by_day", "ingest"):
        result = repo.pkg("invoke", target)
        assert result.exit_code == 1
        assert "pkg invoke runs lambda/<function> and glue_python_shell/<job>" in result.stderr

    assert "takes an event, not arguments" in repo.pkg("invoke", "lambda/ingest", "--", "--x", "1").stderr


def test_uses_the_lambda_env_python_when_it_exists(repo: Repo, no_conda):
    python = no_conda.create_env("lambda")
    report = repo.pkg_json("invoke", "lambda/ingest", "--event", event_file(repo, {"records": []}))
    assert report["interpreter"] == {
        "path": python,
        "source": "env lambda",
        "python": "%d.%d" % sys.version_info[:2],
    }
    assert report["result"] == []


def test_the_console_script_runs_from_any_folder_and_exits_non_zero_on_failure(examples: Repo, no_conda):
    event = event_file(examples, {"orders": [{"customer": "acme", "amount": "1"}]})
    env = {"PKG_CACHE_DIR": str(examples.cache_dir), **no_conda.environ}
    rejected = run_console(["invoke", "lambda/ingest_orders", "--event", event], cwd=examples.root / "src", env=env)
    assert rejected.returncode == 0, rejected.stderr  # ingest_orders rejects the record instead of raising
    assert json.loads(rejected.stdout)["rejected"][0]["error"] == "order record is missing 'order_id'"
    crashed = run_console(["invoke", "lambda/daily_report", "--event", event], cwd=examples.root, env=env)
    assert crashed.returncode == 1
    assert crashed.stdout == ""
    assert "ValueError: order record is missing 'order_id'" in crashed.stderr


# -- Glue Python shell jobs --------------------------------------------------------------------------

SHELL_PROBE = """\
import importlib
import json
import sys

import helperdep
import tinydep
from internal_libs.totals import total


def importable(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    print("starting", file=sys.stderr)
    print(json.dumps({
        "total": total([1, 2, 3]),
        "deps": tinydep.VALUE + helperdep.HELP,
        "args": sys.argv[1:],
        "modules": {name: importable(name) for name in ("boto3", "click", "packager", "daily")},
    }))
"""


def test_a_glue_python_shell_job_runs_with_its_wheel_and_dependency_wheels(tmp_path, no_conda):
    wheelhouse = make_wheelhouse(tmp_path / "wheelhouse")
    repo = make_jobs_repo(
        tmp_path,
        extra_config=(
            f'\n[tool.pkg.glue_python_shell.jobs.totals]\nfind_links = ["{wheelhouse}"]\nno_index = true\n'
            'default_arguments = { "--stage" = "dev" }\n'
        ),
    )
    repo.write("src/glue_python_shell/internal_libs/requirements.txt", "tinydep\n")
    repo.write("src/glue_python_shell/totals.py", SHELL_PROBE)
    repo.write("src/glue_python_shell/daily.py", "print('another job')\n")

    result = repo.pkg("invoke", "glue_python_shell/totals", "--", "--day", "2024-01-01")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "total": 6,  # internal_libs, from its wheel
        "deps": 3,  # tinydep and what it needs, from the dependency wheels
        "args": ["--stage", "dev", "--day", "2024-01-01"],  # DefaultArguments, then the run's
        "modules": {"boto3": True, "click": False, "packager": False, "daily": False},
    }
    assert "starting" in result.stderr and "starting" not in result.stdout

    report = repo.pkg_json("invoke", "glue_python_shell/job/totals")
    assert report["target"] == "glue_python_shell/totals"
    assert report["built"] == []


def test_a_failing_glue_job_exits_non_zero_with_its_traceback(tmp_path, no_conda):
    repo = make_jobs_repo(tmp_path)
    repo.write(
        "src/glue_python_shell/totals.py",
        "import sys\nfrom internal_libs.totals import total\n\nif sys.argv[1:] == ['--exit']:\n"
        "    sys.exit(3)\ntotal(None)\n",
    )
    raised = repo.pkg("invoke", "glue_python_shell/totals")
    assert raised.exit_code == 1
    assert 'File "/tmp/glue-job/totals.py", line 6, in <module>' in raised.stderr
    assert "TypeError" in raised.stderr
    assert "error: glue_python_shell/totals failed: TypeError" in raised.stderr

    exited = repo.pkg("invoke", "glue_python_shell/totals", "--", "--exit")
    assert exited.exit_code == 1
    assert "the script exited with code 3" in exited.stderr
    assert "a Glue job takes arguments" in repo.pkg("invoke", "glue_python_shell/totals", "--event", "e.json").stderr


# -- dependency layers ---------------------------------------------------------------------------------


@pytest.fixture
def small_wheelhouse(tmp_path: Path) -> Path:
    """The small pure wheels of tests/wheelhouse.py (tinylib 1.0 and 1.1, helper needing tinylib)."""
    from wheelhouse import WHEELS, write_wheel

    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    for spec in WHEELS:
        if spec.name in ("tinylib", "helper"):
            write_wheel(folder, spec)
    return folder


def test_a_handler_imports_its_dependencies_from_the_dependency_layers(repo: Repo, no_conda, small_wheelhouse):
    with open(repo.root / "pyproject.toml", "a") as stream:
        stream.write(f'\n[tool.pkg.dependencies]\nno_index = true\nfind_links = ["{small_wheelhouse}"]\n')
    repo.write("src/lambda/internal_libs/requirements.txt", "tinylib==1.0\n")  # shared by every function
    repo.write("src/lambda/report.requirements.txt", "helper\n")  # report's own layer
    handler = """\
        import importlib.metadata

        from tinylib.core import answer


        def version(name):
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                return None


        def handler(event, context):
            return {"answer": answer(), "tinylib": version("tinylib"), "helper": version("helper")}
        """
    repo.write("src/lambda/ingest.py", handler)
    repo.write("src/lambda/report.py", handler)

    ingest = repo.pkg_json("invoke", "lambda/ingest")
    assert ingest["result"] == {"answer": 42, "tinylib": "1.0", "helper": None}  # helper is report's alone
    assert any(built.startswith("lambda/internal_libs_deps/") for built in ingest["built"])

    report = repo.pkg_json("invoke", "lambda/report")
    assert report["result"] == {"answer": 42, "tinylib": "1.0", "helper": "2.0"}
    assert any(built.startswith("lambda/function_deps/report/") for built in report["built"])


def test_a_fresh_machine_invokes_from_the_teams_shared_cache(tmp_path, aws, no_conda):
    from test_shared_cache import clone, shared_repo

    first = shared_repo(tmp_path)
    assert first.pkg_json("build")["summary"]["built"] == 3  # and pushed to the shared cache

    second = clone(first, tmp_path, "second")
    event = event_file(second, {"records": [{"id": 7, "amount": "1.5"}]})
    aws.reset_calls()
    report = second.pkg_json("invoke", "lambda/ingest", "--event", event)
    assert report["result"] == [{"id": 7, "amount": 1.5}]
    assert report["built"] == []  # fetched (sha256-verified), not rebuilt
    assert aws.mutating_calls() == []  # a local run pushes nothing


def _real_python(version: str) -> str | None:
    """A real CPython `version` on this machine (pyenv or PATH), to stand in for a created env."""
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    for candidate in [*map(str, pyenv), shutil.which(f"python{version}")]:
        if candidate and "/shims/" not in candidate and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


REAL_PYTHONS = {version: _real_python(version) for version in ("3.12", "3.9")}  # before HOME is faked


@pytest.mark.skipif(not all(REAL_PYTHONS.values()), reason="needs CPython 3.12 and 3.9")
def test_each_service_runs_in_its_own_envs_python(examples: Repo, no_conda):
    for env, version in (("lambda", "3.12"), ("glue_python_shell", "3.9")):
        python = Path(no_conda.create_env(env))
        python.unlink()
        python.symlink_to(REAL_PYTHONS[version])

    event = event_file(examples, ORDERS)
    result = examples.pkg("invoke", "lambda/daily_report", "--event", event, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["interpreter"]["python"] == "3.12"
    assert result.json["result"]["totals"] == {"acme": "3.75", "zeta": "4"}
    assert "warning: running with Python" not in result.stderr

    orders = json.dumps([{"day": "2024-01-01", "amount": "2"}, {"day": "2024-01-01", "amount": "0.5"}])
    job = examples.pkg("invoke", "glue_python_shell/daily_totals", "--", "--orders", orders)
    assert job.exit_code == 0, job.stderr
    assert json.loads(job.stdout) == {"2024-01-01": 2.5}
    assert "warning: running with Python" not in job.stderr


def test_an_architecture_this_machine_cannot_run_is_warned_about(repo: Repo, no_conda):
    import platform

    other = "arm64" if platform.machine() == "x86_64" else "x86_64"
    with open(repo.root / "pyproject.toml", "a") as stream:
        stream.write(f'\n[tool.pkg.lambda.functions.ingest]\narchitecture = "{other}"\n')
    result = repo.pkg("invoke", "lambda/ingest")
    assert result.exit_code == 0, result.stderr
    assert f"warning: the function runs on {other} but this machine is {platform.machine()}" in result.stderr
    assert "this machine is" not in repo.pkg("invoke", "lambda/report").stderr
