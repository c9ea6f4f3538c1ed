"""Shared index rows are checked one by one (cache/rows.py): a row names no local path pkg would
not compute, has the right types, parseable JSON and hex hashes; a bad row is refused, not fatal."""

from __future__ import annotations

import json

import pytest

from cache.index import ArtifactRecord
from cache.rows import RowRules, check_artifact_row, check_published_row, safe_relpath

H = "0123456789abcdef" * 2
RULES = RowRules({"code": ("store/{hh}/{hash}.zip",), "install": ("deps/{hash}/manifest.json",)})
GOOD = (H, "code", f"store/01/{H}.zip", "a" * 64, 10, 20, "2026-01-01T00:00:00+00:00", "{}")


def test_an_honest_row_passes():
    record = check_artifact_row(GOOD, RULES)
    assert isinstance(record, ArtifactRecord) and record.path == f"store/01/{H}.zip"
    install = (H, "install", f"deps/{H}/manifest.json", *GOOD[3:])
    assert isinstance(check_artifact_row(install, RULES), ArtifactRecord)


@pytest.mark.parametrize(
    "index, value",
    [
        (0, "../../etc/passwd"),  # input hash
        (0, H.upper()),
        (0, None),
        (1, "evil"),  # kind
        (2, "../src/lambda/report.py"),  # path
        (2, "/etc/passwd"),
        (2, f"store/01/{H}.pth"),
        (2, f"store/01/../../{H}.zip"),
        (2, f"deps/{H}/manifest.json"),  # a real layout, but not this kind's
        (3, "not hex"),  # sha256
        (3, None),
        (4, -1),  # sizes
        (4, "10"),
        (5, True),
        (6, "yesterday"),  # created
        (7, "{not json"),  # meta
        (7, "[1, 2]"),
        (7, None),
    ],
)
def test_a_bad_field_refuses_the_row(index, value):
    row = list(GOOD)
    row[index] = value
    assert isinstance(check_artifact_row(tuple(row), RULES), str)


def test_the_callers_checks_apply():
    rules = RowRules(
        RULES.layouts, check_meta=lambda kind, meta: "chunks" in meta, check_details=lambda r, d: "arn" in d
    )
    assert isinstance(check_artifact_row(GOOD, rules), str)
    published = ("1", "eu-west-1", "dev", "lambda/function/x", H, json.dumps({"arn": "a"}), "2026-01-01T00:00:00+00:00")
    assert isinstance(check_published_row(published, rules), dict)
    assert isinstance(check_published_row((*published[:5], "{}", published[6]), rules), str)


@pytest.mark.parametrize(
    "row",
    [
        ("1", "eu-west-1", "dev", "x", "e", "{}", "2026-01-01T00:00:00+00:00"),  # input hash
        ("1", "eu-west-1", "dev", "x", H, "[1", "2026-01-01T00:00:00+00:00"),  # details
        ("1", "eu-west-1", None, "x", H, "{}", "2026-01-01T00:00:00+00:00"),  # NULL
        ("1", "eu-west-1", "dev", "x", H, "{}", "soon"),  # published
    ],
)
def test_a_bad_publish_record_is_refused(row):
    assert isinstance(check_published_row(row, RULES), str)


def test_a_publish_record_without_code_has_an_empty_input_hash():
    assert isinstance(check_published_row(("1", "r", "dev", "x", "", "{}", "2026-01-01T00:00:00+00:00"), RULES), dict)


def test_safe_relpath_stays_inside_the_folder_and_names_the_hash(tmp_path):
    cache = tmp_path / "cache"
    assert safe_relpath(str(cache), f"store/01/{H}.zip", H)
    assert not safe_relpath(str(cache), "store/01/other.zip", H)
    assert not safe_relpath(str(cache), f"../{H}.zip", H)
    assert not safe_relpath(str(cache), f"/tmp/{H}.zip", H)
    assert not safe_relpath(str(cache), f"store/.{H}.zip", H)
    (cache / "store").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (cache / "store" / "01").symlink_to(tmp_path / "outside")  # a symlink out of the folder
    assert not safe_relpath(str(cache), f"store/01/{H}.zip", H)
