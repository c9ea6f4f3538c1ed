"""The stage lock in S3: one publish or gc of a stage at a time, across machines (issue 12).

The lock is one object in the artifact bucket (packager/deploy/lease.py); the server's call log
shows its conditional writes, and a lock written here by hand stands for another machine's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from conftest import ARTIFACT_BUCKET, AWS_ACCOUNT, AWS_REGION, PUBLISH_PYPROJECT, interrupt_publish

LOCK_KEY = f"pkg-locks/{AWS_ACCOUNT}/{AWS_REGION}/dev.json"


def s3():
    return boto3.client("s3", region_name=AWS_REGION)


def lock_exists() -> bool:
    return "Contents" in s3().list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix=LOCK_KEY)


def hold_lock(expires_in: timedelta) -> None:
    """Another machine's lock: a CI runner that started an hour ago."""
    now = datetime.now(timezone.utc)
    document = {
        "holder": "ci@runner-7",
        "pid": 4242,
        "command": "pkg publish",
        "started": (now - timedelta(hours=1)).isoformat(),
        "expires": (now + expires_in).isoformat(),
    }
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=LOCK_KEY, Body=json.dumps(document).encode())


def lock_calls(aws) -> list[str]:
    return [call["operation"] for call in aws.calls(locks=True) if call["path"].endswith(LOCK_KEY)]


def conditions(aws) -> list[tuple[str, str | None, str | None]]:
    """Each call on the lock object with its If-None-Match and If-Match headers."""
    return [
        (call["operation"], call.get("If-None-Match"), call.get("If-Match") and "etag")
        for call in aws.calls(locks=True)
        if call["path"].endswith(LOCK_KEY)
    ]


def test_a_publish_takes_the_lock_before_its_first_change_and_releases_it_after_its_last(project, aws):
    project.pkg_json("publish", "--stage", "dev")

    operations = [call["operation"] for call in aws.calls(locks=True)]
    # Created only if absent, deleted only if still ours.
    assert conditions(aws) == [("PutObject", "*", None), ("DeleteObject", None, "etag")]
    changes = [i for i, call in enumerate(aws.calls(locks=True)) if call["mutating"]]
    assert operations[changes[0]] == "PutObject" and operations[changes[-1]] == "DeleteObject"
    assert not lock_exists()

    # A no-op publish writes nothing, not even the lock: it has nothing to change.
    aws.reset_calls()
    project.pkg_json("publish", "--stage", "dev")
    assert lock_calls(aws) == [] and aws.mutating_calls() == []
    assert not lock_exists()


def test_a_live_lock_held_elsewhere_makes_publish_give_up_naming_its_holder(project, aws):
    hold_lock(timedelta(hours=1))
    aws.reset_calls()

    result = project.pkg("publish", "--stage", "dev", "--lock-timeout", "1")

    assert result.exit_code == 1, result.stderr
    assert "waiting for the dev lock held by ci@runner-7" in result.stderr
    assert "error: the dev lock is held by ci@runner-7 (pid 4242, pkg publish)" in result.stderr
    assert "pkg unlock --stage dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert aws.mutating_calls() == []  # not one Lambda call
    assert "PutObject" in lock_calls(aws) and "DeleteObject" not in lock_calls(aws)
    assert json.loads(s3().get_object(Bucket=ARTIFACT_BUCKET, Key=LOCK_KEY)["Body"].read())["pid"] == 4242


def test_a_lock_whose_lease_ran_out_is_taken_over(project, aws):
    hold_lock(timedelta(minutes=-1))
    aws.reset_calls()

    result = project.pkg("publish", "--stage", "dev", "--lock-timeout", "1")

    assert result.exit_code == 0, result.stderr
    assert "took over the dev lock of ci@runner-7" in result.stderr
    # The create failed, the lock was read, then replaced only if still the dead holder's.
    assert conditions(aws)[:3] == [("PutObject", "*", None), ("GetObject", None, None), ("PutObject", None, "etag")]
    assert "CreateFunction" in aws.mutating_calls()
    assert not lock_exists()


def test_gc_takes_the_lock_and_waits_for_a_publish(project, aws):
    project.pkg_json("publish", "--stage", "dev")
    aws.reset_calls()
    project.pkg_json("gc", "--stage", "dev")
    assert lock_calls(aws) == ["PutObject", "DeleteObject"]

    hold_lock(timedelta(hours=1))
    result = project.pkg("gc", "--stage", "dev", "--lock-timeout", "0")
    assert result.exit_code == 1 and "held by ci@runner-7" in result.stderr


def test_unlock_shows_the_holder_and_removes_the_lock(project, aws):
    hold_lock(timedelta(hours=1))

    asked = project.pkg("unlock", "--stage", "dev")  # not a terminal, no --yes: left in place
    assert asked.exit_code == 0 and "ci@runner-7" in asked.stderr and lock_exists()

    report = project.pkg_json("unlock", "--stage", "dev", "--yes")
    assert report["holder"].startswith("ci@runner-7 (pid 4242, pkg publish) since ")
    assert report["removed"] is True and report["lock"] == f"s3://{ARTIFACT_BUCKET}/{LOCK_KEY}"
    assert not lock_exists()

    assert project.pkg_json("unlock", "--stage", "dev", "--yes") == {
        "stage": "dev",
        "lock": f"s3://{ARTIFACT_BUCKET}/{LOCK_KEY}",
        "holder": None,
        "removed": False,
    }
    # A layer, two functions (each CreateFunction publishes its version 1), and their aliases (CreateAlias).
    assert project.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 5


def test_a_stage_without_an_artifact_bucket_is_locked_on_this_machine_only(project, aws):
    project.write("pyproject.toml", PUBLISH_PYPROJECT.replace(f'artifact_bucket = "{ARTIFACT_BUCKET}"\n', ""))

    result = project.pkg("publish", "--stage", "dev")

    assert result.exit_code == 0, result.stderr
    assert "warning: stage dev has no artifact bucket: it is locked on this machine only" in result.stderr
    assert not any("pkg-locks" in call["path"] for call in aws.calls(locks=True))


def test_two_publishes_from_two_machines_run_one_after_the_other(project, aws, tmp_path):
    # Two cache folders stand for two machines; the real console script, started at once.
    pkg = shutil.which("pkg", path=os.path.dirname(sys.executable)) or "pkg"
    runs = [
        subprocess.Popen(
            [pkg, "publish", "--stage", "dev", "--json"],
            cwd=project.root,
            env={**os.environ, "PKG_CACHE_DIR": str(tmp_path / f"machine-{n}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    results = [run.communicate(timeout=240) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], results
    lam = boto3.client("lambda", region_name=AWS_REGION)
    for layer in lam.list_layers()["Layers"]:
        assert len(lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]) == 1
    created = ["PublishLayerVersion", *["CreateFunction", "CreateAlias"] * 2]
    assert sorted(aws.mutating_calls()) == sorted(created)
    assert lock_calls(aws).count("DeleteObject") == 2
    assert not lock_exists()


@pytest.mark.parametrize("body", [b"", b"not json", b'{"holder": 1}', b"[]"])
def test_a_lock_object_that_is_not_a_lock_is_named_and_never_expires(project, aws, body):
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=LOCK_KEY, Body=body)

    result = project.pkg("publish", "--stage", "dev", "--lock-timeout", "0")

    assert result.exit_code == 1 and "held by an unreadable lock object" in result.stderr
    assert "Traceback" not in result.stderr and aws.mutating_calls() == []




def test_ctrl_c_releases_the_lock(project, aws):
    def lock_is_held() -> None:
        assert lock_exists()

    process = interrupt_publish(project, aws, before_interrupt=lock_is_held)
    stderr = process.stderr
    assert process.returncode == 130 and "Traceback" not in stderr
    assert lock_calls(aws)[-1] == "DeleteObject"
    assert not lock_exists()


def test_a_holder_whose_lock_was_broken_leaves_the_new_holders_lock_alone(project, aws):
    aws.inject("CreateFunction", "hang_after")
    process = subprocess.Popen(
        [sys.executable, "-m", "packager", "publish", "--stage", "dev", "-j", "1"],
        cwd=project.root,
        env={**os.environ, "PKG_CACHE_DIR": str(project.cache_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        aws.wait_held("CreateFunction")
        assert project.pkg_json("unlock", "--stage", "dev", "--yes")["removed"] is True
        hold_lock(timedelta(hours=1))  # another machine takes the stage meanwhile
        aws.release()
        _, stderr = process.communicate(timeout=60)
    finally:
        aws.release()
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, stderr
    assert "the dev lock was broken (pkg unlock) or taken over while pkg publish ran" in stderr
    # Its DeleteObject carried its own ETag: the other machine's lock is still there.
    assert json.loads(s3().get_object(Bucket=ARTIFACT_BUCKET, Key=LOCK_KEY)["Body"].read())["pid"] == 4242
