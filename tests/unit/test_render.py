"""packager.render on its own: NO_COLOR (https://no-color.org) and the error as JSON."""

from __future__ import annotations

import json

import click
import pytest

from packager import render
from packager.errors import Interrupted, PkgError

ESCAPE = "\x1b["


def _error_output(capsys, failure: PkgError, as_json: bool = False) -> tuple[str, str]:
    # Colour forced, as on a terminal: only NO_COLOR may take it away.
    with click.Context(click.Command("pkg"), color=True):
        render.error(failure, as_json=as_json)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_error_line_is_red_when_colour_is_on(capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    _, err = _error_output(capsys, PkgError("broken", hint="fix it"))
    assert ESCAPE in err


@pytest.mark.parametrize("value", ["1", "true", "0"])
def test_no_color_set_and_not_empty_means_no_escape_code(capsys, monkeypatch, value):
    monkeypatch.setenv("NO_COLOR", value)
    _, err = _error_output(capsys, PkgError("broken", hint="fix it"))
    assert ESCAPE not in err
    assert err == "error: broken\nhint: fix it\n"


def test_an_empty_no_color_is_not_set(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "")
    _, err = _error_output(capsys, PkgError("broken"))
    assert ESCAPE in err


def test_interrupted_is_one_line_and_exit_code_130(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = _error_output(capsys, Interrupted(), as_json=True)
    assert err == "error: interrupted\n"
    assert json.loads(out) == {"error": "interrupted", "hint": None, "type": "Interrupted"}
    assert Interrupted.exit_code == 130


def test_the_error_as_json_carries_what_completed(capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    failure = PkgError("half done", hint="run it again")
    failure.completed = {"actions": [{"name": "a", "status": "done"}]}
    out, err = _error_output(capsys, failure, as_json=True)
    assert json.loads(out) == {
        "error": "half done",
        "hint": "run it again",
        "type": "PkgError",
        "actions": [{"name": "a", "status": "done"}],
    }
    assert err.startswith("error: half done\n")


def test_a_plan_lists_what_changes_is_recorded_or_left_to_the_user_and_counts_the_rest(capsys):
    from packager.deploy.actions import SKIP, Action, ActionKind, PublishPlan, Target
    from packager.deploy.stage import StagePlan

    def step(kind, name, reason, **extra):
        return Action(f"lambda/function/{name}", kind, reason, f"p-dev-{name}", **extra)

    actions = [
        step(ActionKind.UPDATE_FUNCTION_CODE, "a", "code changed"),
        step(SKIP, "b", "up to date"),
        step(SKIP, "c", "already live as wanted: recording it", record={"x": 1}),
        step(SKIP, "d", "d removed, but p-dev-d is not tagged: left in place", notice=True),
        step(SKIP, "e", "up to date"),
    ]
    plan = PublishPlan(Target("123456789012", "us-east-1", "dev"), actions)
    render.publish_plan(StagePlan(plan, None, {}, {}))  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "publish to stage dev (account 123456789012, us-east-1):"
    assert [line.split()[1] for line in lines[1:4]] == ["p-dev-a", "p-dev-c", "p-dev-d"]
    assert "left in place" in lines[3] and lines[4].strip().startswith("2 up to date")
    assert lines[5] == "1 mutating AWS call"
