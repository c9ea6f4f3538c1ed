"""`pkg status` and `pkg logs` without AWS: drift by key, run summaries, time parsing, merging and the follow loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from packager import render
from packager.deploy.logs import LATE_MS, LogEvent, follow, merge, parse_since, parse_target
from packager.deploy.records import FunctionState, GlueJobRow
from cache.index import PublishedRecord
from packager.deploy.status import (
    emr_statuses,
    iso,
    function_drift,
    glue_drift,
    glue_last_run,
    serverless_last_run,
    step_last_run,
)
from packager.errors import PkgError
from packager.reports import Drifted, LastRun, ResourceState, ResourceStatus, StatusReport

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


# -- time parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), ("0s", 0), ("1w", 604800), ("1.5h", 5400)],
)
def test_since_as_a_duration_counts_back_from_now(text, seconds):
    assert parse_since(text, NOW) == NOW_MS - seconds * 1000


@pytest.mark.parametrize(
    "text", ["2026-03-01T11:00:00Z", "2026-03-01T11:00:00+00:00", "2026-03-01T11:00:00", "2026-03-01T13:00:00+02:00"]
)
def test_since_as_an_iso_time_is_utc_unless_it_says_otherwise(text):
    assert parse_since(text, NOW) == NOW_MS - 3600_000


@pytest.mark.parametrize("text", ["yesterday", "-1h", "1y", "h", ""])
def test_since_that_is_neither_says_what_it_takes(text):
    with pytest.raises(PkgError) as caught:
        parse_since(text, NOW)
    assert "30s, 15m, 1h, 2d" in (caught.value.hint or "")


# -- targets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "artifact_id"),
    [
        ("lambda/ingest", "lambda/function/ingest"),
        ("lambda/function/ingest", "lambda/function/ingest"),
        ("glue_spark/orders", "glue_spark/job/orders"),
        ("glue_python_shell/job/totals", "glue_python_shell/job/totals"),
    ],
)
def test_a_target_is_a_function_or_a_glue_job(text, artifact_id):
    assert str(parse_target(text)) == artifact_id


def test_emr_is_refused_with_where_its_logs_are():
    with pytest.raises(PkgError, match="does not read EMR runs") as caught:
        parse_target("emr/clean")
    assert "get-dashboard-for-job-run" in (caught.value.hint or "")


@pytest.mark.parametrize("text", ["lambda", "lambda/a/b", "lambda/../x", "batch/job", "glue_spark/"])
def test_anything_else_is_refused(text):
    with pytest.raises(PkgError, match="does not name a function or a Glue job"):
        parse_target(text)


# -- events ----------------------------------------------------------------------------------------


def event(stamp: int, message: str, group: str = "/out", event_id: str | None = None) -> LogEvent:
    return LogEvent(stamp, group, "jr_1", message, event_id or f"{group}:{stamp}:{message}")


def test_an_event_prints_as_time_stream_message_and_as_one_json_object():
    line = LogEvent(NOW_MS + 5, "/aws/lambda/f", "2026/03/01/[$LATEST]a", "hello\n", "36")
    assert line.text() == "2026-03-01T12:00:00.005Z 2026/03/01/[$LATEST]a hello"
    assert line.to_json() == {
        "timestamp": "2026-03-01T12:00:00.005Z",
        "group": "/aws/lambda/f",
        "stream": "2026/03/01/[$LATEST]a",
        "message": "hello",
        "id": "36",
    }


def test_groups_merge_by_time_and_equal_times_keep_their_group_order():
    output = [event(1, "a"), event(3, "c"), event(3, "c2")]
    errors = [event(4, "d", "/err"), event(2, "b", "/err"), event(3, "x", "/err")]  # unsorted within its group
    merged = merge([output, errors])
    assert [e.message for e in merged] == ["a", "b", "c", "c2", "x", "d"]
    assert merge([]) == []


def test_follow_shows_each_event_once_and_polls_from_a_little_before_the_newest_until_interrupted():
    answers = [
        [event(1000, "first"), event(2000, "second")],
        [event(2000, "second"), event(3000, "third")],  # the look-back finds "second" again
        [event(1500, "late, but in the window"), event(3000, "third")],
    ]
    starts: list[int | None] = []
    shown: list[str] = []

    def fetch(start: int | None) -> list[LogEvent]:
        starts.append(start)
        return answers[len(starts) - 1]

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == len(answers):
            raise KeyboardInterrupt  # Ctrl-C while waiting for the next poll

    with pytest.raises(KeyboardInterrupt):
        follow(fetch, lambda e: shown.append(e.message), 500, sleep=sleep, interval=2.0)

    assert shown == ["first", "second", "third", "late, but in the window"]
    assert starts == [500, max(500, 2000 - LATE_MS), max(500, 3000 - LATE_MS)]
    assert sleeps == [2.0, 2.0, 2.0]


def test_follow_forgets_shown_events_once_they_are_older_than_its_window():
    late = LATE_MS + 10_000
    answers = [
        [event(1, "old", event_id="1")],
        [event(late, "new", event_id="2")],
        [event(late + 1, "x", event_id="1")],
    ]
    starts: list[int | None] = []
    shown: list[str] = []

    def fetch(start: int | None) -> list[LogEvent]:
        starts.append(start)
        return answers[len(starts) - 1]

    def sleep(seconds: float) -> None:
        if len(starts) == len(answers):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(fetch, lambda e: shown.append(e.message), None, sleep=sleep)

    assert starts == [None, 0, late - LATE_MS]  # never before the epoch
    # Event id 1 left the window with "old": a new event that reuses the id is shown.
    assert shown == ["old", "new", "x"]


# -- drift ---------------------------------------------------------------------------------------


def function_state(**changes) -> FunctionState:
    fields = {
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:datamart-dev-f",
        "code_sha256": "abc=",
        "architecture": "x86_64",
        "configuration": {
            "Role": "arn:aws:iam::123456789012:role/r",
            "Handler": "f.handler",
            "Runtime": "python3.12",
            "MemorySize": 128,
            "Timeout": 3,
            "Description": "",
            "Environment": {"Variables": {"TOKEN": "secret-1", "STAGE": "dev"}},
        },
        "layers": ("arn:aws:lambda:us-east-1:123456789012:layer:datamart-dev-internal_libs:1",),
        "tags": {"team": "data"},
    }
    return FunctionState(**{**fields, **changes})


def test_a_function_as_recorded_has_no_drift():
    assert function_drift(function_state(), function_state()) == []


def test_function_drift_names_fields_and_keys_never_values():
    live_configuration = {
        **function_state().configuration,
        "MemorySize": 512,
        "Environment": {"Variables": {"TOKEN": "secret-2", "STAGE": "dev", "EXTRA": "secret-3"}},
    }
    live = function_state(
        code_sha256="xyz=", configuration=live_configuration, layers=(), tags={"team": "ops", "owner": "me"}
    )

    drift = function_drift(function_state(), live)

    assert drift == [
        Drifted("code_sha256"),
        Drifted("configuration", ("MemorySize", "Environment.EXTRA", "Environment.TOKEN")),
        Drifted("layers"),
        Drifted("tags", ("owner", "team")),
    ]
    assert "secret" not in repr(drift) and "512" not in repr(drift)


GLUE_DEFINITION = {
    "Role": "arn:aws:iam::123456789012:role/glue",
    "Command": {"Name": "pythonshell", "ScriptLocation": "s3://b/pkg/glue_python_shell/job-t/" + "a" * 64 + "/t.py",
                "PythonVersion": "3.9"},  # fmt: skip
    "DefaultArguments": {"--extra-py-files": "s3://b/x.whl", "library-set": "analytics"},
    "GlueVersion": "3.0",
    "MaxCapacity": 0.0625,
    "MaxRetries": 0,
    "Description": "",
}


def test_glue_drift_names_definition_keys_inside_tables_and_tags():
    live_job = {
        **GLUE_DEFINITION,
        "Command": {**GLUE_DEFINITION["Command"], "ScriptLocation": "s3://elsewhere/t.py"},
        "DefaultArguments": {**GLUE_DEFINITION["DefaultArguments"], "--password": "hunter2"},
        "MaxRetries": 2,
        "Timeout": 2880,  # AWS's default: not a key pkg sets, so not drift
        "CreatedOn": NOW,
    }
    row = GlueJobRow("datamart-dev-t", GLUE_DEFINITION, {"team": "data"})

    drift = glue_drift(row, live_job, {"team": "data", "owner": "me"})

    assert drift == [
        Drifted("definition", ("Command.ScriptLocation", "DefaultArguments.--password", "MaxRetries")),
        Drifted("tags", ("owner",)),
    ]
    assert "hunter2" not in repr(drift)
    assert glue_drift(GlueJobRow("n", GLUE_DEFINITION), {**GLUE_DEFINITION, "CreatedOn": NOW}, {"x": "y"}) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2026-03-01T11:02:40.123+0000", "2026-03-01T11:02:40Z"),  # Lambda's LastModified
        (datetime(2026, 3, 1, 13, 2, 40, tzinfo=timezone(timedelta(hours=2))), "2026-03-01T11:02:40Z"),
        (datetime(2026, 3, 1, 11, 2, 40), "2026-03-01T11:02:40Z"),  # naive: botocore's are UTC
        ("not a time", "not a time"),
        (None, None),
    ],
)
def test_times_read_as_iso_utc(value, text):
    assert iso(value) == text


# -- runs ------------------------------------------------------------------------------------------


def test_a_finished_glue_run_lasts_from_its_start_to_its_end():
    started = NOW - timedelta(minutes=5)
    run = {"Id": "jr_1", "JobRunState": "SUCCEEDED", "StartedOn": started, "CompletedOn": NOW - timedelta(minutes=1)}
    assert glue_last_run(run, NOW) == LastRun("jr_1", "SUCCEEDED", "2026-03-01T11:55:00Z", 240.0, True)


def test_a_running_glue_run_lasts_so_far_and_execution_time_stands_in_for_a_missing_end():
    running = {"Id": "jr_2", "JobRunState": "RUNNING", "StartedOn": NOW - timedelta(seconds=30)}
    assert glue_last_run(running, NOW) == LastRun("jr_2", "RUNNING", "2026-03-01T11:59:30Z", 30.0, False)
    failed = {"Id": "jr_3", "JobRunState": "FAILED", "StartedOn": NOW, "ExecutionTime": 42}
    assert glue_last_run(failed, NOW).duration_seconds == 42.0


def test_emr_runs_and_steps_summarised():
    summary = {"id": "00f1", "state": "SUCCESS", "createdAt": NOW - timedelta(seconds=90), "updatedAt": NOW}
    assert serverless_last_run(summary, NOW) == LastRun("00f1", "SUCCESS", "2026-03-01T11:58:30Z", 90.0, True)
    step = {"Id": "s-1", "Status": {"State": "RUNNING", "Timeline": {"StartDateTime": NOW - timedelta(seconds=10)}}}
    assert step_last_run(step, NOW) == LastRun("s-1", "RUNNING", "2026-03-01T11:59:50Z", 10.0, False)


class EmrRuns:
    """The two EMR reads of AwsStatusReader, answered from memory; each call is counted."""

    def __init__(self, runs: dict[str, dict], steps: dict[str, dict]):
        self.runs, self.steps = runs, steps
        self.calls: list[tuple[str, str, set[str]]] = []

    def serverless_runs(self, application_id: str, names: set[str]) -> dict[str, dict]:
        self.calls.append(("ListJobRuns", application_id, names))
        return {name: run for name, run in self.runs.items() if name in names}

    def cluster_steps(self, cluster_id: str, names: set[str]) -> dict[str, dict]:
        self.calls.append(("ListSteps", cluster_id, names))
        return {name: step for name, step in self.steps.items() if name in names}


def test_emr_jobs_sharing_an_application_are_read_in_one_pass_and_an_unpublished_one_not_at_all():
    def row(artifact_id: str, **place) -> PublishedRecord:
        spec = {"entry_point": f"s3://b/pkg/emr/job-{artifact_id[8:]}/{'a' * 64}/x.py", **place}
        return PublishedRecord(artifact_id, "h", {"name": "p-dev-" + artifact_id[8:], "spec": spec}, "2026-03-01T10:00")

    recorded = {
        "emr/job/a": row("emr/job/a", application_id="app1"),
        "emr/job/b": row("emr/job/b", application_id="app1"),
        "emr/job/c": row("emr/job/c", cluster_id="j-1"),
    }
    ids = ["emr/job/a", "emr/job/b", "emr/job/c", "emr/job/new"]
    names = {artifact_id: "p-dev-" + artifact_id[8:] for artifact_id in ids}
    summary = {"id": "r1", "state": "RUNNING", "createdAt": NOW - timedelta(seconds=5), "updatedAt": NOW}
    step = {"Id": "s-1", "Status": {"State": "COMPLETED", "Timeline": {}}}
    reader = EmrRuns({"p-dev-a": summary}, {"p-dev-c": step})

    statuses = emr_statuses(ids, names, recorded, reader, NOW)  # type: ignore[arg-type]

    assert reader.calls == [("ListJobRuns", "app1", {"p-dev-a", "p-dev-b"}), ("ListSteps", "j-1", {"p-dev-c"})]
    assert [(s.id, str(s.state), s.last_run.run_id if s.last_run else None) for s in statuses] == [
        ("emr/job/a", "recorded", "r1"),
        ("emr/job/b", "recorded", None),
        ("emr/job/c", "recorded", "s-1"),
        ("emr/job/new", "not published", None),
    ]
    assert statuses[0].recorded_code.endswith("/x.py") and statuses[0].last_modified == "2026-03-01T10:00"
    assert not any(s.drifted for s in statuses)


# -- rendering -------------------------------------------------------------------------------------


def test_status_text_says_state_code_drift_and_last_run(capsys):
    resources = [
        ResourceStatus("lambda/function/a", "p-dev-a", ResourceState.LIVE, "abcdefghijklmnop=", "abcdefghijklmnop=",
                       "2026-03-01T11:00:00.000+0000", []),  # fmt: skip  (Lambda's LastModified)
        ResourceStatus("lambda/function/b", "p-dev-b", ResourceState.LIVE, "x=", "y=", None,
                       [Drifted("code_sha256"), Drifted("configuration", ("Environment.TOKEN",))]),  # fmt: skip
        ResourceStatus("lambda/function/c", "p-dev-c", ResourceState.MISSING, "x=", None, None, []),
        ResourceStatus("glue_spark/job/j", "p-dev-j", ResourceState.LIVE, None,
                       "s3://b/pkg/glue_spark/job-j/" + "f" * 64 + "/j.py", None, [],
                       last_run=LastRun("jr_1", "SUCCEEDED", "2026-03-01T11:55:00Z", 245.0, True)),  # fmt: skip
    ]
    render.status(StatusReport("dev", "123456789012", "us-east-1", resources), as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "stage dev (account 123456789012, us-east-1):"
    assert "abcdefghijkl…" in lines[1] and "in sync" in lines[1] and "modified 2026-03-01T11:00:00Z" in lines[1]
    assert "drift: code_sha256, configuration (Environment.TOKEN)" in lines[2]
    assert "missing" in lines[3] and "drift: deleted out of band" in lines[3]
    assert "ffffffffffff…/j.py" in lines[4] and "last run SUCCEEDED (2026-03-01T11:55:00Z, 4m05s)" in lines[4]
    assert lines[5] == "4 functions and jobs, 2 drifted"
    assert len({line.index("modified") for line in lines[1:5]}) == 1  # the columns line up


def test_history_text_is_a_table_with_a_header(capsys):
    from dataclasses import replace

    from packager.deploy.actions import Target
    from packager.deploy.releases import Release
    from packager.reports import HistoryReport

    target = Target("123456789012", "us-east-1", "dev")
    first = Release(1, target, "p", "2026-03-01T11:00:00.123456+00:00", None, "a" * 40, True, "publish")
    second = replace(first, id=12, command="rollback", rolled_back_to=1, time="2026-03-02T09:30:00Z")
    render.history(HistoryReport("dev", "s3://b/pkg-releases/", [first, second]), as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["release", "time", "command", "commit", "runs", "by"]
    assert lines[1].split()[:4] == ["1", "2026-03-01T11:00:00Z", "publish", "aaaaaaaaaaaa+dirty"]
    assert lines[2].split()[:5] == ["12", "2026-03-02T09:30:00Z", "rollback", "to", "1"]
    assert lines[1].index("2026") == lines[2].index("2026") == lines[0].index("time")


@pytest.mark.parametrize(("seconds", "text"), [(0.25, "0.2 s"), (59.9, "59.9 s"), (61, "1m01s"), (7380, "2h03m")])
def test_durations_read_at_a_glance(seconds, text):
    assert render.duration(seconds) == text
