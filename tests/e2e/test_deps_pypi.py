"""Optional: a real PyPI set installed for python3.12 x86_64, every native library checked against its
wheel's platform tags. Skipped in a second when PyPI can't be reached (`-m "not network"` skips it too)."""

from __future__ import annotations

import socket
import zipfile

import pytest

from conftest import make_repo
from packager.runtimes import LAMBDA_RUNTIMES


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=1.5).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not _pypi_reachable(), reason="PyPI is not reachable"),
]

# Small sets with native code, pinned so the test stays reproducible.
REQUIREMENTS = "pyyaml==6.0.2\nmarkupsafe==3.0.2\ncharset-normalizer==3.4.1\n"


def test_real_wheels_are_for_the_lambda_platform(tmp_path):
    repo = make_repo(tmp_path, functions=("ingest",))
    repo.write("src/lambda/ingest.requirements.txt", REQUIREMENTS)
    layer = {a["id"]: a for a in repo.pkg_json("build")["artifacts"]}["lambda/function_deps/ingest/0"]
    accepted = set(LAMBDA_RUNTIMES["python3.12"].platform_tags("x86_64"))
    with zipfile.ZipFile(layer["path"]) as archive:
        names = archive.namelist()
        wheel_tags = {
            name.split("/")[1]: [
                line.split(":", 1)[1].strip()
                for line in archive.read(name).decode().splitlines()
                if line.startswith("Tag:")
            ]
            for name in names
            if name.endswith(".dist-info/WHEEL")
        }
        owners = {}
        for name in names:
            if name.endswith(".dist-info/RECORD"):
                for line in archive.read(name).decode().splitlines():
                    owners[line.split(",")[0]] = name.split("/")[1]
    native = [name for name in names if name.endswith(".so")]
    assert native, "the set was chosen for its native libraries"
    for name in native:
        assert "x86_64-linux-gnu" in name or ".abi3." in name, name
        dist_info = owners[name[len("python/") :]]
        platforms = {tag.split("-")[2] for tag in wheel_tags[dist_info]}
        assert platforms & accepted, f"{name}: {dist_info} tags {wheel_tags[dist_info]}"
        assert all("cp312" in tag or "abi3" in tag for tag in wheel_tags[dist_info]), wheel_tags[dist_info]
