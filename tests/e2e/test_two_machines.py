"""Two machines, one stage, different commits, publishing at once (issue 12, "Done when").

Two clones of a small repo, each with its own cache folder, share one shared cache and publish to
one stage of the local endpoint, as two CI runners would. Commit B changes a handler and
internal_libs. Each round starts both publishes at once; after every round the stage must be at
one commit: each function's code and internal_libs layer from the same commit (none mixed), one
layer version per input hash (no duplicate), and both runs succeeded (the second waits for the
stage lock, then plans again from what the first did).

The two publishers are threads calling `app.publish` (what the console script calls), each on its
own clone and cache folder: they share nothing but the endpoint, as two machines would, and the
test stays within its time budget (two processes per round cost seconds of start-up each; one
run of real processes is tests/e2e/test_stage_lock.py).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import threading
from pathlib import Path

import boto3
from conftest import ARTIFACT_BUCKET, AWS_REGION, PUBLISH_PYPROJECT, Repo

from packager import app

ROUNDS = 10
FUNCTIONS = ("datamart-dev-ingest", "datamart-dev-report")
LAYER = "datamart-dev-internal_libs"


def lam():
    return boto3.client("lambda", region_name=AWS_REGION)


def code_sha256(path: str) -> str:
    return base64.b64encode(hashlib.sha256(Path(path).read_bytes()).digest()).decode()


def machine(project: Repo, base: Path, name: str) -> Repo:
    """A clone at another path with its own cache folder (`.pkg/` inside it)."""
    shutil.copytree(project.root, base / name)
    return Repo(base / name, base / name / ".pkg")


def built(repo: Repo) -> dict[str, dict]:
    return {a["id"]: a for a in repo.pkg_json("build")["artifacts"]}


def publish_at_once(machines: list[Repo]) -> list[tuple[BaseException | None, list[str]]]:
    """Start `pkg publish --stage dev` on every machine at the same moment; each one's error and progress lines."""
    start = threading.Barrier(len(machines))
    results: list[tuple[BaseException | None, list[str]]] = [(None, []) for _ in machines]

    def run(n: int, repo: Repo) -> None:
        lines: list[str] = []
        start.wait()
        try:
            app.publish(str(repo.root), "dev", lock_timeout=120, progress=app.LineProgress(lines.append))
            results[n] = (None, lines)
        except BaseException as error:  # reported by the assertion below
            results[n] = (error, lines)

    threads = [threading.Thread(target=run, args=(n, repo)) for n, repo in enumerate(machines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    return results


def test_two_machines_at_different_commits_never_mix_a_stage(project, aws, tmp_path, monkeypatch):
    monkeypatch.delenv("PKG_CACHE_DIR", raising=False)  # each clone's own .pkg/
    project.write(
        "pyproject.toml",
        PUBLISH_PYPROJECT.replace("[tool.pkg]\n", f'[tool.pkg]\ncache_uri = "s3://{ARTIFACT_BUCKET}/team-cache"\n'),
    )
    a = machine(project, tmp_path, "machine-a")
    b = machine(project, tmp_path, "machine-b")
    b.write("src/lambda/ingest.py", "def handler(event, context):\n    return 'commit B'\n")
    b.write("src/lambda/internal_libs/version.py", "COMMIT = 'B'\n")
    commits = {"A": built(a), "B": built(b)}
    libs_input = {commit: arts["lambda/internal_libs"]["input_hash"] for commit, arts in commits.items()}
    ingest_code = {commit: code_sha256(arts["lambda/function/ingest"]["path"]) for commit, arts in commits.items()}
    assert len(set(libs_input.values())) == 2 and len(set(ingest_code.values())) == 2

    def stage_commits() -> set[str]:
        """The commits the live stage comes from: ingest's code and every function's layer (one if none mixed)."""
        versions = lam().list_layer_versions(LayerName=LAYER)["LayerVersions"]
        hashes = [v["Description"].rsplit("input:", 1)[-1] for v in versions]
        assert sorted(hashes) == sorted(set(hashes)), hashes  # one layer version per input hash, ever
        layer_commit = {
            v["LayerVersionArn"]: commit
            for v in versions
            for commit, input_hash in libs_input.items()
            if v["Description"].endswith(f"input:{input_hash}")
        }
        live = {name: lam().get_function(FunctionName=name)["Configuration"] for name in FUNCTIONS}
        seen = {layer_commit[layer["Arn"]] for config in live.values() for layer in config["Layers"]}
        return seen | {commit for commit, sha in ingest_code.items() if live[FUNCTIONS[0]]["CodeSha256"] == sha}

    waited = 0
    for round_number in range(ROUNDS):
        results = publish_at_once([a, b])

        assert [error for error, _ in results] == [None, None], round_number
        waited += sum(any("waiting for the dev lock" in line for line in lines) for _, lines in results)
        assert len(stage_commits()) == 1, round_number

    assert waited > 0  # the runs did overlap: at least one waited for the other's lock
    assert len(lam().list_layer_versions(LayerName=LAYER)["LayerVersions"]) == 2
    # A later publish on its own leaves every function at its commit.
    a.pkg_json("publish", "--stage", "dev")
    assert stage_commits() == {"A"}
