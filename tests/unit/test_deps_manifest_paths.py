"""A dependency install's manifest may come from the shared cache: no entry of it names a file
outside the install (packager/builders/lambda_deps.py, cache/rows.py `is_plain_relpath`)."""

from __future__ import annotations

import json

import pytest

from cache.rows import is_plain_relpath
from packager.builders.lambda_deps import InstalledSet, _chunk_writer
from packager.errors import DependencyError


@pytest.mark.parametrize("relpath", ["pkg/__init__.py", "numpy.libs/libgfortran.so.5", "a/.hidden/b"])
def test_plain_relative_paths_are_accepted(relpath):
    assert is_plain_relpath(relpath)


@pytest.mark.parametrize(
    "relpath", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\..\\b", "a\x00b", None, 3]
)
def test_paths_that_could_leave_the_folder_are_refused(relpath):
    assert not is_plain_relpath(relpath)


def test_a_layer_chunk_is_not_written_from_a_manifest_naming_a_file_outside_the_install(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("aws_secret_access_key = ...\n")
    install = tmp_path / "deps" / ("a" * 32)
    (install / "python").mkdir(parents=True)
    manifest = install / "manifest.json"
    manifest.write_text(json.dumps({"chunks": [[["../../../secret.txt", "b" * 32, 28, 28, 0, 0]]]}))
    installed = InstalledSet("a" * 32, str(install / "python"), str(manifest), [], [])
    with pytest.raises(DependencyError, match="secret.txt"):
        _chunk_writer(installed, 0, 1 << 20)(str(tmp_path / "chunk.zip"))
    assert not (tmp_path / "chunk.zip").exists()
