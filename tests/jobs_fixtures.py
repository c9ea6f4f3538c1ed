"""Small real fixtures for the Glue/EMR tests: a repo with one job per service, and a local wheelhouse."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from conftest import Repo, make_repo

JOBS_CONFIG = """
[tool.pkg.glue_python_shell]
role = "arn:aws:iam::123456789012:role/glue"

[tool.pkg.glue_spark]
role = "arn:aws:iam::123456789012:role/glue"
glue_version = "5.0"

[tool.pkg.emr]
release_label = "emr-7.9.0"
"""

SHELL_JOB = '''\
import sys

from internal_libs.totals import total

if __name__ == "__main__":
    print(total([1, 2, 3]))
'''

SPARK_JOB = '''\
from pyspark.sql import SparkSession

from internal_libs.cleaning import clean

if __name__ == "__main__":
    clean(SparkSession.builder.getOrCreate().range(3)).show()
'''


def make_jobs_repo(base: Path, name: str = "repo", extra_config: str = "") -> Repo:
    """A repo with the two Lambda functions of conftest plus one job (and internal_libs) per job service."""
    repo = make_repo(base, name=name)
    with open(repo.root / "pyproject.toml", "a") as stream:
        stream.write(JOBS_CONFIG + extra_config)
    repo.write("src/glue_python_shell/internal_libs/__init__.py", "")
    repo.write("src/glue_python_shell/internal_libs/totals.py", "def total(values):\n    return sum(values)\n")
    repo.write("src/glue_python_shell/internal_libs/requirements.txt", "# nothing yet\n")
    repo.write("src/glue_python_shell/totals.py", SHELL_JOB)
    for service in ("glue_spark", "emr"):
        repo.write(f"src/{service}/internal_libs/__init__.py", "")
        repo.write(f"src/{service}/internal_libs/cleaning.py", "def clean(frame):\n    return frame\n")
        repo.write(f"src/{service}/clean_{service}.py", SPARK_JOB)
    return repo


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(folder: Path, name: str, version: str, tag: str, files: dict[str, str], requires=()) -> Path:
    """A small real wheel `name-version-tag.whl` holding `files` (arcname -> text)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    entries = {
        **{arc: text.encode() for arc, text in files.items()},
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n".encode(),
    }
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries.items())
    entries[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for arc, data in entries.items():
            archive.writestr(arc, data)
    return path


def make_wheelhouse(folder: Path) -> Path:
    """tinydep (pure, needs helperdep), helperdep (pure), and fastdep with native wheels for cp311 and cp39 only."""
    make_wheel(folder, "tinydep", "1.0", "py3-none-any", {"tinydep/__init__.py": "VALUE = 1\n"}, ["helperdep"])
    make_wheel(folder, "helperdep", "2.0", "py3-none-any", {"helperdep/__init__.py": "HELP = 2\n"})
    make_wheel(
        folder,
        "fastdep",
        "3.0",
        "cp311-cp311-manylinux_2_28_x86_64",
        {"fastdep/__init__.py": "", "fastdep/_speed.cpython-311-x86_64-linux-gnu.so": "ELF"},
    )
    make_wheel(
        folder,
        "fastdep",
        "3.0",
        "cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64",
        {"fastdep/__init__.py": "", "fastdep/_speed.cpython-39-x86_64-linux-gnu.so": "ELF"},
    )
    return folder
