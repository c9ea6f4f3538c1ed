"""Zip-slip: every zip and wheel member name is checked before anything is extracted or re-archived."""

from __future__ import annotations

import os
import zipfile

import pytest
from wheelhouse import WheelSpec, write_unsafe_wheel, write_wheel

from packager.builders.wheels import check_wheel, write_installed_archive, write_wheelhouse
from packager.builders.zips import check_members, extract_checked, unsafe_member
from packager.errors import UnsafeArchiveError
from packager.invoke import _unpack_job_artifact

UNSAFE = (
    "../escape.py",
    "pkg/../../escape.py",
    "..",
    "/etc/escape.py",
    "C:/escape.py",
    "c:escape.py",
    "pkg\\..\\escape.py",
    "pkg\\module.py",
    "nul\x00.py",
)
SAFE = ("pkg/module.py", "pkg-1.0.dist-info/RECORD", "a..b/c.py", "pkg/.hidden", "x.data/purelib/x.py")


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_member_names_are_refused(name):
    assert unsafe_member(name) is not None
    with pytest.raises(UnsafeArchiveError) as caught:
        check_members("evil-1.0-py3-none-any.whl", ["ok.py", name])
    assert str(caught.value).startswith("evil-1.0-py3-none-any.whl: member ")
    assert caught.value.hint


@pytest.mark.parametrize("name", SAFE)
def test_ordinary_member_names_pass(name):
    assert unsafe_member(name) is None


@pytest.mark.parametrize("member", ["../escape.py", "/tmp/escape.py", "pkg\\..\\escape.py", "C:/escape.py"])
def test_a_crafted_wheel_is_refused_naming_wheel_and_member(tmp_path, member):
    wheel = write_unsafe_wheel(tmp_path, "evil", "1.0", member)
    with pytest.raises(UnsafeArchiveError, match=r"evil-1\.0-py3-none-any\.whl: member"):
        check_wheel(str(wheel))
    with pytest.raises(UnsafeArchiveError, match="evil-1.0-py3-none-any.whl"):
        write_installed_archive(str(tmp_path / "out.zip"), str(tmp_path), [wheel.name])


def test_a_damaged_wheel_is_one_error(tmp_path):
    (tmp_path / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(UnsafeArchiveError, match="broken-1.0-py3-none-any.whl: not a zip"):
        check_wheel(str(tmp_path / "broken-1.0-py3-none-any.whl"))


def test_a_sound_wheel_passes_and_is_archived(tmp_path):
    wheel = write_wheel(tmp_path, WheelSpec("good", "1.0", files={"good/core.py": b"X = 1\n"}))
    check_wheel(str(wheel))
    write_installed_archive(str(tmp_path / "out.zip"), str(tmp_path), [wheel.name])
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert "good/core.py" in archive.namelist()


def test_a_wheelhouse_member_name_is_checked_when_written(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="member '../x.whl'"):
        write_wheelhouse(str(tmp_path / "house.zip"), str(tmp_path), ["../x.whl"])


def test_invoke_unpacking_writes_nothing_outside_its_folder(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = write_unsafe_wheel(wheels, "evil", "1.0", "../../escape.py")
    site = tmp_path / "run/site-packages"
    site.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="glue_python_shell/deps: member"):
        _unpack_job_artifact(str(wheel), str(site), "glue_python_shell/deps")
    # a wheelhouse zip holding the crafted wheel: the error names the artifact and the wheel
    house = tmp_path / "house.zip"
    with zipfile.ZipFile(house, "w") as archive:
        archive.write(wheel, wheel.name)
    with pytest.raises(UnsafeArchiveError, match="glue_python_shell/deps: evil-1.0-py3-none-any.whl: member"):
        _unpack_job_artifact(str(house), str(site), "glue_python_shell/deps")
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "run/escape.py").exists()
    assert os.listdir(site) == []


def test_extracting_a_zip_with_an_escaping_member_is_refused_before_writing(tmp_path):
    path = tmp_path / "layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/ok.py", "")
        info = zipfile.ZipInfo("placeholder")
        info.filename = "python/../../escape.py"
        archive.writestr(info, "")
    target = tmp_path / "opt"
    with zipfile.ZipFile(path) as archive, pytest.raises(UnsafeArchiveError, match="lambda/internal_libs: member"):
        extract_checked(archive, str(target), "lambda/internal_libs")
    assert not target.exists()
