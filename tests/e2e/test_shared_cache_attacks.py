"""Whoever can write the shared cache's prefix must not own the machines that read it (issue 11).

Each test plays one attack of the issue against the local S3 endpoint (moto server): a hand-made
shared index or object, put with a plain PutObject as an attacker with write access would. Each
shows the attack fail safely: nothing written outside the cache folder (the file tree is compared),
no traceback (pkg runs in-process with exceptions propagating), and the honest rows still used.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT, Repo, make_repo
from test_shared_cache import CACHE_URI, PREFIX, clone, s3, shared_repo, statuses

INDEX_KEY = f"{PREFIX}/index.sqlite"
EVIL = b"import os; os.system('echo owned')\n"


def tree(base: Path, skip: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `base` but `skip` (the cache folder pkg may write): path -> (size, sha256)."""
    found = {}
    for path in sorted(base.rglob("*")):
        if path.is_file() and skip not in path.parents:
            found[str(path)] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).digest())
    return found


def tamper_index(tmp_path: Path, *statements: str, params: tuple = ()) -> None:
    """Download the shared index, run SQL on it as an attacker would, and put it back (no condition)."""
    path = tmp_path / "attacker-index.sqlite"
    s3().download_file(ARTIFACT_BUCKET, INDEX_KEY, str(path))
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement, params if "?" in statement else ())
    conn.commit()
    conn.close()
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=INDEX_KEY, Body=path.read_bytes())
    path.unlink()


def shared_rows(tmp_path: Path, sql: str) -> list[tuple]:
    path = tmp_path / "reader-index.sqlite"
    s3().download_file(ARTIFACT_BUCKET, INDEX_KEY, str(path))
    with sqlite3.connect(path) as conn:
        rows = conn.execute(sql).fetchall()
    path.unlink()
    return rows


def built_hashes(report: dict) -> dict[str, str]:
    return {a["id"]: a["input_hash"] for a in report["artifacts"]}


def plant(key_path: str, body: bytes = EVIL) -> str:
    """Put an object under the shared prefix at `key_path` (as a row would name it); its sha256."""
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=f"{PREFIX}/{key_path}".replace("//", "/"), Body=body)
    return hashlib.sha256(body).hexdigest()


# -- 1. nothing from S3 names a local path ------------------------------------------------------


def test_path_traversal_absolute_paths_and_a_pth_drop_write_nothing_outside_the_cache(tmp_path, aws):
    first = shared_repo(tmp_path)
    hashes = built_hashes(first.pkg_json("build"))
    second = clone(first, tmp_path, "second")
    (second.root / ".venv/lib/python3.12/site-packages").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    forged = {
        # A source file of the repository, a file outside it, and a .pth that runs at the next Python start.
        hashes["lambda/function/report"]: "../second/src/lambda/report.py",
        hashes["lambda/function/ingest"]: str(outside),
    }
    digest = ""
    for input_hash, path in forged.items():
        digest = plant(path)
        tamper_index(
            tmp_path,
            "UPDATE artifacts SET path = ?, sha256 = ?, size = ? WHERE input_hash = ?",
            params=(path, digest, len(EVIL), input_hash),
        )
    # Rows in every path-like field: a traversing input hash, a .pth into the venv, a known suffix swapped.
    pth = "../second/.venv/lib/python3.12/site-packages/evil.pth"
    plant(pth)
    bad_hash = "../../second/.venv/lib/python3.12/site-packages/x"
    for row in (
        ("a" * 32, "lambda-layer", pth),
        (bad_hash, "lambda-layer", f"store/../{bad_hash}.zip"),
        ("b" * 32, "lambda-layer", f"store/bb/{'b' * 32}.pth"),
    ):
        tamper_index(
            tmp_path,
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, 0, '2026-01-01T00:00:00+00:00', '{}')",
            params=(*row, digest, len(EVIL)),
        )
    before = tree(tmp_path, second.cache_dir)

    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert statuses(result.json) == {
        "lambda/internal_libs": "cached",  # the honest row is still used
        "lambda/function/ingest": "built",
        "lambda/function/report": "built",
    }
    assert "row(s) refused" in result.stderr and "../second/src/lambda/report.py" in result.stderr
    assert tree(tmp_path, second.cache_dir) == before
    assert not outside.exists()
    assert not list(second.cache_dir.rglob("*.pth"))
    assert second.pkg_json("cache", "verify")["ok"]
    # The next push wrote a clean index: the forged rows are gone, the honest ones are there.
    paths = dict(shared_rows(tmp_path, "SELECT input_hash, path FROM artifacts"))
    assert all(path.startswith("store/") for path in paths.values())
    assert set(hashes.values()) <= set(paths)


def test_verify_and_repair_never_read_or_delete_outside_the_store(tmp_path):
    repo = make_repo(tmp_path)
    repo.pkg_json("build")
    readme = repo.write("README.md", "# keep me\n")
    conn = sqlite3.connect(repo.cache_dir / "index.sqlite")
    for input_hash, path in (("c" * 32, "../repo/README.md"), ("d" * 32, str(readme))):
        conn.execute(
            "INSERT INTO artifacts VALUES (?, 'lambda-layer', ?, ?, 11, 0, '2026-01-01T00:00:00+00:00', '{}')",
            (input_hash, path, "0" * 64),
        )
    conn.commit()
    conn.close()

    found = repo.pkg("cache", "verify", "--json")
    assert found.exit_code == 1, found.stderr  # problems found: an exit code, not a traceback
    report = found.json
    assert not report["ok"]
    assert sum("outside the store" in problem for problem in report["problems"]) == 2
    repaired = repo.pkg("cache", "verify", "--repair", "--json")
    assert repaired.json["ok"] and len(repaired.json["repaired"]) == 2
    assert readme.read_text() == "# keep me\n"
    assert repo.pkg_json("cache", "verify")["ok"]  # the bad rows are gone, the honest ones stay
    assert repo.pkg_json("build")["summary"] == {"built": 0, "cached": 3}


# -- 2. the shared index is data, not a program ---------------------------------------------------


def test_planted_triggers_views_and_tables_never_run_and_do_not_survive_a_push(tmp_path, aws):
    first = shared_repo(tmp_path)
    first.pkg_json("build")
    tamper_index(
        tmp_path,
        "CREATE TABLE loot (x)",
        # Would rewrite every later honest row to point at the attacker's object.
        "CREATE TRIGGER poison AFTER INSERT ON artifacts BEGIN"
        " UPDATE artifacts SET sha256 = 'f' || substr(sha256, 2) WHERE rowid = new.rowid; END",
        "CREATE TRIGGER poison_publish AFTER INSERT ON published BEGIN INSERT INTO loot VALUES (1); END",
        "CREATE VIEW everything AS SELECT * FROM artifacts",
    )
    second = clone(first, tmp_path, "second")
    second.write("src/lambda/report.py", "def handler(event, context):\n    return 'new'\n")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "schema objects pkg does not make" in result.stderr
    new_hash = built_hashes(result.json)["lambda/function/report"]
    objects = shared_rows(tmp_path, "SELECT type, name FROM sqlite_master WHERE type IN ('trigger', 'view')")
    assert objects == []
    assert shared_rows(tmp_path, "SELECT name FROM sqlite_master WHERE name = 'loot'") == []
    (sha,) = shared_rows(tmp_path, f"SELECT sha256 FROM artifacts WHERE input_hash = '{new_hash}'")[0]
    report_path = {a["id"]: a for a in result.json["artifacts"]}["lambda/function/report"]["path"]
    assert sha == hashlib.sha256(Path(report_path).read_bytes()).hexdigest()  # the trigger did not rewrite it
    third = clone(first, tmp_path, "third")
    third.write("src/lambda/report.py", "def handler(event, context):\n    return 'new'\n")
    assert third.pkg_json("build")["summary"] == {"built": 0, "cached": 3}  # the honest rows, fetched and verified


def test_bad_json_nulls_and_wrong_types_are_skipped_with_one_warning_and_healed_by_a_push(tmp_path, aws):
    first = shared_repo(tmp_path)
    hashes = built_hashes(first.pkg_json("build"))
    tamper_index(
        tmp_path,
        f"UPDATE artifacts SET meta = '{{not json' WHERE input_hash = '{hashes['lambda/function/report']}'",
        f"UPDATE artifacts SET sha256 = NULL WHERE input_hash = '{hashes['lambda/function/ingest']}'",
        "INSERT INTO published VALUES ('123456789012', 'us-east-1', 'dev', 'lambda/function/x', 'e', '[1', 'x')",
        "INSERT INTO artifacts VALUES (NULL, NULL, NULL, NULL, -1, 'many', NULL, NULL)",
    )
    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("row(s) refused") == 1 and "4 row(s) refused" in result.stderr
    assert statuses(result.json)["lambda/internal_libs"] == "cached"
    assert result.json["summary"] == {"built": 2, "cached": 1}
    # The push after the build wrote a clean index; the publish path works offline too.
    assert shared_rows(tmp_path, "SELECT count(*) FROM artifacts WHERE sha256 IS NULL OR meta = '{not json'") == [(0,)]
    assert shared_rows(tmp_path, "SELECT count(*) FROM published") == [(0,)]
    assert second.pkg("build", "--no-shared-cache").exit_code == 0
    assert clone(first, tmp_path, "third").pkg_json("build")["summary"] == {"built": 0, "cached": 3}


def test_a_missing_column_ignores_the_index_and_the_next_push_replaces_it(tmp_path, aws):
    first = shared_repo(tmp_path)
    first.pkg_json("build")
    tamper_index(tmp_path, "ALTER TABLE artifacts DROP COLUMN meta")
    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "corrupt or not a pkg index" in result.stderr and "no such column" in result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
    assert len(shared_rows(tmp_path, "SELECT meta FROM artifacts")) == 3  # replaced by the push
    assert clone(first, tmp_path, "third").pkg_json("build")["summary"] == {"built": 0, "cached": 3}


def test_an_index_over_the_size_cap_is_a_warning_and_the_shared_cache_is_not_used(tmp_path, aws):
    first = shared_repo(tmp_path)
    first.pkg_json("build")
    second = clone(first, tmp_path, "second")
    config = (second.root / "pyproject.toml").read_text()
    second.write(
        "pyproject.toml",
        config.replace('project = "datamart"\n', 'project = "datamart"\ncache_max_index_bytes = 1000\n'),
    )
    before = tree(tmp_path, second.cache_dir)
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert "larger than cache_max_index_bytes" in result.stderr
    assert result.json["summary"] == {"built": 3, "cached": 0}
    assert tree(tmp_path, second.cache_dir) == before


# -- 4. publish records are claims -----------------------------------------------------------------


def publish_repo(base: Path, name: str = "repo") -> Repo:
    repo = make_repo(base, name=name)
    repo.write("pyproject.toml", PUBLISH_PYPROJECT.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "{CACHE_URI}"\n'))
    return repo


def lambda_client():
    return boto3.client("lambda", region_name=AWS_REGION)


def test_a_foreign_layer_arn_in_the_shared_index_is_ignored_and_read_live(tmp_path, aws):
    first = publish_repo(tmp_path)
    first.pkg_json("publish", "--stage", "dev")
    foreign = "arn:aws:lambda:us-east-1:999999999999:layer:evil:1"
    rows = shared_rows(
        tmp_path, "SELECT resource_id, details FROM published WHERE resource_id LIKE 'lambda/internal_libs@%'"
    )
    ((resource_id, details),) = rows
    forged = json.dumps({**json.loads(details), "arn": foreign})
    tamper_index(
        tmp_path,
        "UPDATE published SET details = ?, published = '2999-01-01T00:00:00+00:00' WHERE resource_id = ?",
        params=(forged, resource_id),
    )
    runner = clone(first, tmp_path, "ci-runner")
    result = runner.pkg("publish", "--stage", "dev", "--json")
    assert result.exit_code == 0, result.stderr
    assert "recorded publish row ignored" in result.stderr and "999999999999" in result.stderr
    for function in ("ingest", "report"):
        layers = lambda_client().get_function_configuration(FunctionName=f"datamart-dev-{function}").get("Layers", [])
        assert foreign not in [layer["Arn"] for layer in layers]
        assert layers and all(":123456789012:layer:datamart-dev-" in layer["Arn"] for layer in layers)


def test_a_far_future_publish_record_does_not_survive_an_honest_publish(tmp_path, aws):
    first = publish_repo(tmp_path)
    first.pkg_json("publish", "--stage", "dev")
    tamper_index(
        tmp_path,
        "UPDATE published SET input_hash = ?, published = '2999-01-01T00:00:00+00:00'"
        " WHERE resource_id = 'lambda/function/report'",
        params=("e" * 32,),
    )
    first.write("src/lambda/report.py", "def handler(event, context):\n    return 'honest'\n")
    published = first.pkg_json("publish", "--stage", "dev")
    honest = built_hashes(published)["lambda/function/report"]
    assert shared_rows(tmp_path, "SELECT input_hash FROM published WHERE resource_id = 'lambda/function/report'") == [
        (honest,)
    ]
    runner = clone(first, tmp_path, "ci-runner")
    assert runner.pkg_json("publish", "--stage", "dev")["summary"]["mutating_calls"] == 0


def test_pkg_run_refuses_a_foreign_emr_entry_point_from_the_shared_index(tmp_path, aws):
    from test_jobs_publish import EMR_ROLE, jobs_project

    serverless = boto3.client("emr-serverless", region_name=AWS_REGION)
    application = serverless.create_application(name="datamart", releaseLabel="emr-7.9.0", type="SPARK")
    extra = (
        f'\n[tool.pkg.stages.dev.emr]\napplication_id = "{application["applicationId"]}"'
        f'\nexecution_role = "{EMR_ROLE}"\n'
    )
    first = jobs_project(tmp_path, extra)
    config = (first.root / "pyproject.toml").read_text()
    first.write("pyproject.toml", config.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "{CACHE_URI}"\n', 1))
    first.pkg_json("publish", "--stage", "dev")
    ((details,),) = shared_rows(tmp_path, "SELECT details FROM published WHERE resource_id = 'emr/job/clean_emr'")
    row = json.loads(details)
    row["spec"]["entry_point"] = "s3://another-bucket/evil.py"
    tamper_index(
        tmp_path, "UPDATE published SET details = ? WHERE resource_id = 'emr/job/clean_emr'", params=(json.dumps(row),)
    )
    runner = clone(first, tmp_path, "ci-runner")
    assert runner.pkg("cache", "pull", "--stage", "dev").exit_code == 0
    aws.reset_calls()
    result = runner.pkg("run", "emr/clean_emr", "--stage", "dev")
    assert result.exit_code != 0
    assert "another-bucket/evil.py" in result.stderr and "not started" in result.stderr and "hint:" in result.stderr
    assert aws.mutating_calls() == []
    # The planner does not trust it either: a publish records the honest specification again.
    published = runner.pkg("publish", "--stage", "dev", "--json")
    assert published.exit_code == 0 and "recorded publish row ignored" in published.stderr
    report = runner.pkg("run", "emr/clean_emr", "--stage", "dev", "--json")
    assert report.exit_code == 0, report.stderr
    run = serverless.get_job_run(applicationId=application["applicationId"], jobRunId=report.json["run_id"])["jobRun"]
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"].startswith(f"s3://{ARTIFACT_BUCKET}/pkg/emr/")


# -- 6. bytes are checked before they leave ---------------------------------------------------------


def test_a_same_size_corrupt_local_file_is_not_shared(tmp_path, aws):
    repo = shared_repo(tmp_path)
    report = repo.pkg_json("build", "--no-shared-cache")
    artifact = {a["id"]: a for a in report["artifacts"]}["lambda/function/report"]
    path = Path(artifact["path"])
    path.write_bytes(bytes(len(path.read_bytes())))  # same size, other bytes
    result = repo.pkg("cache", "push", "--json")
    assert result.exit_code == 0, result.stderr
    assert "does not match its index row; not shared" in result.stderr
    uploaded = result.json["uploaded"]
    assert len(uploaded) == 2 and not any(artifact["input_hash"] in key for key in uploaded)
    assert artifact["input_hash"] not in [row[0] for row in shared_rows(tmp_path, "SELECT input_hash FROM artifacts")]


def test_a_verified_rebuild_replaces_a_known_bad_shared_object(tmp_path, aws):
    first = shared_repo(tmp_path)
    hashes = built_hashes(first.pkg_json("build"))
    layer = hashes["lambda/internal_libs"]
    key = f"{PREFIX}/store/{layer[:2]}/{layer}.zip"
    s3().put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=b"not the layer you built")
    second = clone(first, tmp_path, "second")
    result = second.pkg("build", "--json")
    assert result.exit_code == 0, result.stderr
    assert statuses(result.json)["lambda/internal_libs"] == "built"
    good = Path({a["id"]: a for a in result.json["artifacts"]}["lambda/internal_libs"]["path"]).read_bytes()
    assert s3().get_object(Bucket=ARTIFACT_BUCKET, Key=key)["Body"].read() == good
    assert clone(first, tmp_path, "third").pkg_json("build")["summary"] == {"built": 0, "cached": 3}


def test_a_tampered_object_with_a_rewritten_row_stays_inside_the_store_until_signing_exists(tmp_path, aws):
    """The limit of `cache_trust = "any"`: a writer who replaces an object and rewrites its row's sha256
    and size is believed. What it can no longer do is choose where the bytes land: they go to the path
    pkg computes, inside the cache folder. (`cache_trust = "signed"` refuses it: test_shared_cache_signed.py.)"""
    first = shared_repo(tmp_path)
    hashes = built_hashes(first.pkg_json("build"))
    report_hash = hashes["lambda/function/report"]
    key_path = f"store/{report_hash[:2]}/{report_hash}.zip"
    digest = plant(key_path)
    tamper_index(
        tmp_path,
        "UPDATE artifacts SET sha256 = ?, size = ? WHERE input_hash = ?",
        params=(digest, len(EVIL), report_hash),
    )
    second = clone(first, tmp_path, "second")
    before = tree(tmp_path, second.cache_dir)
    report = second.pkg_json("build")
    assert statuses(report)["lambda/function/report"] == "cached"
    assert {a["id"]: a for a in report["artifacts"]}["lambda/function/report"]["path"] == str(
        second.cache_dir / key_path
    )
    assert tree(tmp_path, second.cache_dir) == before
