"""Releases, versions and rollback without AWS: release objects checked as untrusted input, diffs,
the version step of the planner (its live reads counted), and jobs pointed back at older keys."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cache.index import PublishedRecord
from packager.config import load_config
from packager.deploy.actions import SKIP, Action, ActionKind, Target
from packager.deploy.lambda_plan import CodeArtifact, FunctionResource
from packager.deploy.records import AliasState, FunctionRow, FunctionState, version_digest
from packager.deploy.releases import (
    FunctionRelease,
    JobRelease,
    PromotedFrom,
    Release,
    diff_releases,
    release_from_json,
)
from packager.deploy.rollback import emr_spec_at, glue_definition_at
from packager.deploy.trust import StageScope
from packager.deploy.versions import plan_function_version
from packager.model import Service

ACCOUNT, REGION, BUCKET = "123456789012", "eu-west-1", "datamart-artifacts"
TARGET = Target(ACCOUNT, REGION, "dev")
SHA = "a" * 64
CODE = "q" * 43 + "="
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:datamart-dev-internal_libs:"


@pytest.fixture
def scope(tmp_path) -> StageScope:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pkg]\nproject = "datamart"\nartifact_bucket = "{BUCKET}"\n'
        f'[tool.pkg.stages.dev]\nregion = "{REGION}"\naccount = "{ACCOUNT}"\n'
    )
    return StageScope.of(load_config(str(tmp_path)), TARGET)


def uri(service: str, artifact: str, sha: str, name: str) -> str:
    return f"s3://{BUCKET}/pkg/{service}/{artifact}/{sha}/{name}"


def release(release_id=1, version="1", memory=128, layer=1, script_sha=SHA) -> Release:
    ingest = FunctionRelease(
        "datamart-dev-ingest", "live", version, CODE, "0" * 32, (f"{LAYER}{layer}",), {"MemorySize": memory}
    )
    job = JobRelease(
        "datamart-dev-totals",
        uri("glue_python_shell", "job-totals", script_sha, "totals.py"),
        (uri("glue_python_shell", "internal_libs", SHA, "internal_libs.zip"),),
        (),
        {"Role": "arn:aws:iam::123456789012:role/glue", "GlueVersion": "3.0"},
    )
    return Release(
        release_id, TARGET, "datamart", "2026-12-02T10:00:00Z", f"arn:aws:iam::{ACCOUNT}:user/ana", "f" * 40, False,
        "publish", {"lambda/function/ingest": ingest}, {"glue_python_shell/job/totals": job},
    )  # fmt: skip


def test_a_release_reads_back_as_written(scope):
    written = release()
    assert release_from_json(json.loads(json.dumps(written.to_json())), 1, scope) == written
    promoted = replace(written, command="promote", promoted_from=PromotedFrom("dev", "210987654321", REGION, 4))
    assert release_from_json(json.loads(json.dumps(promoted.to_json())), 1, scope) == promoted


def promoted(**change) -> dict:
    return {"stage": "dev", "account": ACCOUNT, "region": REGION, "release": 1, **change}


def tampered(change) -> dict:
    document = json.loads(json.dumps(release().to_json()))
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(account="210987654321"), "account '210987654321' is not 123456789012"),
        (lambda d: d.update(region="us-east-1"), "region 'us-east-1'"),
        (lambda d: d.update(stage="prod"), "stage 'prod'"),
        (lambda d: d.update(id=2), "id '2' is not the key's 1"),
        (lambda d: d.update(format=99), "format '99' is not 1"),
        (lambda d: d.update(who="arn:aws:iam::210987654321:user/x"), "who is not an ARN of the stage's account"),
        (lambda d: d["functions"]["lambda/function/ingest"].update(name="other-fn"), "'other-fn' is not"),
        (lambda d: d["functions"]["lambda/function/ingest"].update(version="$LATEST"), "bad version"),
        (lambda d: d["functions"]["lambda/function/ingest"].update(code_sha256="x"), "bad code_sha256"),
        (
            lambda d: d["functions"]["lambda/function/ingest"].update(
                layers=["arn:aws:lambda:eu-west-1:210987654321:layer:evil:1"]
            ),
            "layer 'arn:aws:lambda:eu-west-1:210987654321:layer:evil:1'",
        ),
        (lambda d: d["jobs"]["glue_python_shell/job/totals"].update(script="s3://evil/x.py"), "'s3://evil/x.py'"),
        (
            lambda d: d["jobs"]["glue_python_shell/job/totals"].update(
                libs=[f"s3://{BUCKET}/pkg/glue_python_shell/../../x/{SHA}/a.zip"]
            ),
            "is not under",
        ),
        (lambda d: d["functions"].update({"lambda/internal_libs": {}}), "is no function"),
        (lambda d: d.update(functions=[]), "functions and jobs must be tables"),
        (lambda d: d.update(promoted_from=promoted(account="1")), "bad promoted account"),
        (lambda d: d.update(promoted_from=promoted(stage="../x")), "bad promoted stage"),
        (lambda d: d.update(promoted_from=promoted(release=True)), "bad promoted release"),
    ],
)
def test_a_release_of_another_stage_or_naming_what_is_not_its_own_is_refused(scope, change, problem):
    with pytest.raises(ValueError) as refused:
        release_from_json(tampered(change), 1, scope)
    assert problem in str(refused.value)


def test_something_that_is_not_a_release_is_refused(scope):
    for document in ([], "x", None, {"format": 1}):
        with pytest.raises(ValueError):
            release_from_json(document, 1, scope)


def test_diff_names_what_changed_per_function_and_job():
    old, new = release(1), release(2, version="3", memory=256, layer=2, script_sha="b" * 64)
    changes = {change.name: change for change in diff_releases(old, new)}
    assert changes["datamart-dev-ingest"].details == (
        "version 1 -> 3",
        "layer datamart-dev-internal_libs 1 -> 2",
        "MemorySize 128 -> 256",
    )
    assert changes["datamart-dev-totals"].details == ("script aaaaaaaaaaaa -> bbbbbbbbbbbb",)
    assert diff_releases(old, replace(old, id=5)) == []
    gone = replace(new, functions={})
    assert [(c.name, c.change) for c in diff_releases(old, gone) if c.change != "changed"] == [
        ("datamart-dev-ingest", "removed")
    ]


# -- the version step of the planner --------------------------------------------------------------------


class AliasLive:
    """What GetAlias (and the version's configuration) would answer; counts the reads."""

    def __init__(self, found: AliasState | None = None):
        self.found = found
        self.reads = 0

    def function_alias(self, name, alias):
        self.reads += 1
        return self.found


def resource() -> FunctionResource:
    configuration = {"Role": "arn:aws:iam::123456789012:role/r", "Handler": "ingest.handler", "Runtime": "python3.12",
                     "MemorySize": 128, "Timeout": 3, "Description": "", "Environment": {"Variables": {}}}  # fmt: skip
    code = CodeArtifact("f1", SHA, "/tmp/ingest.zip", 500, 900)
    return FunctionResource("lambda/function/ingest", "datamart-dev-ingest", code, "x86_64", configuration, (), {})


def stored(alias: AliasState | None) -> PublishedRecord:
    function = resource()
    state = FunctionState("arn:x", function.code.code_sha256, "x86_64", function.configuration, (), {})
    details = replace(FunctionRow.confirmed(state), alias=alias).to_details()
    return PublishedRecord(function.artifact_id, "f1", details, "2026-01-01T00:00:00+00:00")


def state_digest() -> str:
    row = FunctionRow.from_details(stored(None).details)
    assert row.state is not None
    return version_digest(row.state)


def test_a_changed_function_gets_a_version_after_its_steps():
    update = Action("lambda/function/ingest", ActionKind.UPDATE_FUNCTION_CODE, "code changed", "datamart-dev-ingest")
    live = AliasLive()
    steps = plan_function_version(resource(), "live", [update], stored(AliasState("live", "1", "x" * 32)), live)
    assert [step.kind for step in steps] == [ActionKind.UPDATE_FUNCTION_CODE, ActionKind.PUBLISH_VERSION]
    assert steps[-1].params["AliasExists"] is True and steps[-1].params["CodeSha256"] == resource().code.code_sha256
    assert live.reads == 0


def test_a_new_function_publishes_version_1_with_its_create_unless_a_later_step_changes_it():
    create = Action("lambda/function/ingest", ActionKind.CREATE_FUNCTION, "new", "datamart-dev-ingest", {"Runtime": 1})
    live = AliasLive()
    steps = plan_function_version(resource(), "live", [create], None, live)
    assert [step.kind for step in steps] == [ActionKind.CREATE_FUNCTION, ActionKind.PUBLISH_VERSION]
    assert steps[0].params == {"Runtime": 1, "Publish": True} and steps[1].params["PublishedByCreate"] is True
    assert steps[1].params["AliasExists"] is False and steps[1].calls == 1  # CreateAlias only
    configure = Action("lambda/function/ingest", ActionKind.UPDATE_FUNCTION_CONFIGURATION, "x", "datamart-dev-ingest")
    steps = plan_function_version(resource(), "live", [create, configure], None, live)
    assert "Publish" not in steps[0].params and "PublishedByCreate" not in steps[-1].params
    assert steps[-1].calls == 2 and live.reads == 0  # PublishVersion of what the update left, then CreateAlias


def test_an_alias_at_what_runs_needs_no_step_and_no_read():
    live = AliasLive()
    skip = Action("lambda/function/ingest", SKIP, "up to date", "datamart-dev-ingest")
    assert plan_function_version(resource(), "live", [skip], stored(AliasState("live", "4", state_digest())), live) == [
        skip
    ]
    assert live.reads == 0


def test_a_stage_without_aliases_publishes_a_version_of_the_running_code_not_the_code_again():
    live = AliasLive(None)
    steps = plan_function_version(resource(), "live", [], stored(None), live)
    assert [(step.kind, step.params["AliasExists"]) for step in steps] == [(ActionKind.PUBLISH_VERSION, False)]
    assert live.reads == 1


def test_an_alias_found_live_at_what_runs_is_recorded_before_the_other_steps():
    tag = Action("lambda/function/ingest", ActionKind.TAG_RESOURCE, "tags", "datamart-dev-ingest", {"Tags": {"a": "b"}})
    live = AliasLive(AliasState("live", "7", state_digest()))
    steps = plan_function_version(resource(), "live", [tag], stored(None), live)
    assert [step.kind for step in steps] == [SKIP, ActionKind.TAG_RESOURCE]
    assert FunctionRow.from_details(steps[0].record or {}).alias == AliasState("live", "7", state_digest())


def test_another_alias_name_moves_the_new_one():
    live = AliasLive(None)
    steps = plan_function_version(resource(), "prod", [], stored(AliasState("live", "4", state_digest())), live)
    assert steps[-1].kind is ActionKind.PUBLISH_VERSION and steps[-1].params["Alias"] == "prod"


# -- jobs pointed back -------------------------------------------------------------------------------------


def test_a_glue_job_points_at_the_release_keys_and_keeps_the_users_own_entries(scope):
    old = release().jobs["glue_python_shell/job/totals"]
    current = {
        "Role": "arn:aws:iam::123456789012:role/glue",
        "Command": {"Name": "pythonshell", "ScriptLocation": uri("glue_python_shell", "job-totals", "b" * 64, "t.py")},
        "DefaultArguments": {
            "--extra-py-files": uri("glue_python_shell", "internal_libs", "c" * 64, "l.zip") + ",s3://shared/h.zip",
            "--additional-python-modules": uri("glue_python_shell", "deps", "d" * 64, "x-1-py3-none-any.whl"),
        },
    }
    pointed = glue_definition_at(current, old, scope, Service.GLUE_PYTHON_SHELL)
    assert pointed["Command"] == {"Name": "pythonshell", "ScriptLocation": old.script}
    assert pointed["DefaultArguments"] == {"--extra-py-files": f"{old.libs[0]},s3://shared/h.zip"}
    assert pointed["Role"] == current["Role"]


def test_an_emr_run_specification_points_at_the_release_keys():
    job = JobRelease(
        "datamart-dev-clean", uri("emr", "job-clean", SHA, "clean.py"), (), (uri("emr", "deps", SHA, "deps.zip"),), {}
    )
    spec = {"entry_point": "s3://x/new.py", "py_files": ["s3://x/libs.zip"], "conf": {"a": "1"}, "python": "3.11"}
    pointed = emr_spec_at(spec, job)
    assert pointed == {
        "entry_point": job.script,
        "py_files": [],
        "conf": {"a": "1", "spark.archives": f"{job.deps[0]}#deps"},
        "python": "3.11",
    }


def test_rollback_names_pick_functions_and_jobs_by_name_or_id():
    from packager.deploy.rollback import RollbackError, picked_ids

    old = release()
    assert picked_ids(old, ()) == (["lambda/function/ingest"], ["glue_python_shell/job/totals"])
    assert picked_ids(old, ("ingest",)) == (["lambda/function/ingest"], [])
    assert picked_ids(old, ("glue_python_shell/totals",)) == ([], ["glue_python_shell/job/totals"])
    assert picked_ids(old, ("lambda/function/ingest", "totals")) == (
        ["lambda/function/ingest"],
        ["glue_python_shell/job/totals"],
    )
    with pytest.raises(RollbackError, match="nope: not a function or job of release 1"):
        picked_ids(old, ("nope",))


# -- `pkg status`: which release deployed what runs now ------------------------------------------------


def test_status_names_the_release_that_deployed_what_runs_now_reading_back_only_as_far_as_needed(scope):
    from packager.deploy.status import deployed_by, running_pointers

    new_script = "b" * 64
    history = [
        release(1, version="1"),
        release(2, version="2"),
        release(3, version="2", script_sha=new_script),
        replace(release(4, version="1", script_sha=new_script), command="rollback", rolled_back_to=1),
    ]
    job = release(4, script_sha=new_script).jobs["glue_python_shell/job/totals"]
    details = {"name": job.name, "definition": {"Command": {"ScriptLocation": job.script}, "DefaultArguments": {
        "--extra-py-files": ",".join(job.libs)}}, "tags": {}}  # fmt: skip
    recorded = {
        "lambda/function/ingest": stored(AliasState("live", "1", "0" * 32)),
        "glue_python_shell/job/totals": PublishedRecord("glue_python_shell/job/totals", "j1", details, "2026"),
    }
    current = running_pointers(recorded, scope)
    assert current == {"lambda/function/ingest": ("live", "1"), "glue_python_shell/job/totals": job.keys}

    read: list[int] = []

    def newest_first():
        for item in reversed(history):
            read.append(item.id)
            yield item

    # ingest runs version 1 since the rollback (4); the job's script since release 3.
    assert deployed_by(current, newest_first()) == {"lambda/function/ingest": 4, "glue_python_shell/job/totals": 3}
    assert read == [4, 3, 2]  # release 1 is never read: both were placed by then
    assert deployed_by({"lambda/function/ingest": ("live", "9")}, reversed(history)) == {}  # changed since
