"""The GitHub Actions example can't run here; check that it parses and that every pkg command in it is valid."""

from __future__ import annotations

import shlex
import tomllib

import yaml
from click.testing import CliRunner
from conftest import REPO_ROOT

from packager.cli import cli


def pkg_commands() -> list[list[str]]:
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/deploy.yml").read_text())
    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if line.strip().startswith("pkg "):
                    commands.append(shlex.split(line.split(">")[0])[1:])
    return commands


def test_workflow_runs_valid_pkg_commands_against_a_configured_stage():
    stages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["pkg"]["stages"]
    commands = pkg_commands()
    assert [c[0] for c in commands] == ["plan", "publish", "gc"]
    for args in commands:
        # --help after the real arguments: click parses and validates them all, then stops.
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert args[args.index("--stage") + 1] in stages
