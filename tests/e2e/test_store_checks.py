"""A store file overwritten with other bytes of the same size (issue 12).

`pkg build` trusts a cached file of the recorded size (its no-op path opens nothing); every use
checks the bytes first: `pkg invoke` builds the file again with one warning line, `pkg publish`
sends nothing and names the file (tests/e2e/test_publish_safety.py), a push shares nothing of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import Repo


def overwrite_same_size(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as stream:
        stream.write(b"\xff" * size)


@pytest.mark.parametrize("artifact", ["lambda/function/ingest", "lambda/internal_libs"])
def test_invoke_builds_a_corrupt_store_file_again_and_says_so(repo: Repo, no_conda, artifact):
    built = repo.pkg_json("build")
    path = next(a["path"] for a in built["artifacts"] if a["id"] == artifact)
    overwrite_same_size(path)
    assert repo.pkg_json("build")["summary"]["built"] == 0  # the no-op path reads no file
    event = repo.root / "event.json"
    event.write_text(json.dumps({"records": [{"id": 1, "amount": "2"}]}))

    result = repo.pkg("invoke", "lambda/ingest", "--event", str(event), "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["result"] == [{"id": 1, "amount": 2.0}]
    relpath = Path(path).relative_to(repo.cache_dir).as_posix()
    assert [line for line in result.stderr.splitlines() if "corrupt" in line] == [
        f"warning: {relpath} was corrupt (not the bytes the index records for {artifact}): built again"
    ]
    assert "Traceback" not in result.stderr and "BadZipFile" not in result.stderr
    assert repo.pkg_json("cache", "verify")["problems"] == []
