"""`--json` answers a usage error too: click refuses the arguments before it reads the --json option itself."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    ("args", "error", "help_of"),
    [
        (("publish", "--json", "--bogus"), "No such option '--bogus'", "publish"),
        (("publish", "--bogus", "--json"), "No such option '--bogus'", "publish"),
        (("build", "-j", "0", "--json"), "Invalid value for '--jobs' / '-j'", "build"),
        (("publish", "--json"), "Missing option '--stage'", "publish"),
        (("--root", "/nowhere/at/all", "build", "--json"), "Directory '/nowhere/at/all' does not exist", ""),
        (("bogus", "--json"), "No such command 'bogus'", ""),
        (("cache", "status", "--bogus", "--json"), "No such option '--bogus'", "cache status"),
        (("env", "--bogus", "list", "--json"), "No such option '--bogus'", "env"),
        (("init", "--json", "--force"), "No such option '--force'", "init"),
    ],
)
def test_a_usage_error_is_one_json_object_on_stdout(repo, args, error, help_of):
    failed = repo.pkg(*args)

    assert failed.exit_code == 2  # click's code for a usage error
    report = json.loads(failed.stdout)  # exactly one JSON object
    assert set(report) == {"error", "hint", "type"}
    assert report["type"] == "UsageError" and error in report["error"]
    assert report["hint"] == f"see `{' '.join(['cli', help_of]).strip()} --help`"  # `cli`: the in-process name
    assert "Usage:" in failed.stderr  # click's own lines stay on stderr


def test_without_json_a_usage_error_prints_nothing_on_stdout(repo):
    failed = repo.pkg("publish", "--bogus")

    assert failed.exit_code == 2 and failed.stdout == ""


def test_json_after_a_double_dash_belongs_to_the_command_run(repo):
    failed = repo.pkg("env", "--bogus", "run", "lambda", "--", "tool", "--json")

    assert failed.exit_code == 2 and failed.stdout == ""
