"""Tiny real wheels for the dependency tests: a local wheelhouse that pip and uv install offline.

A wheel is a zip with the package files, `<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}`.
Big files are stored (not deflated) in the wheel, so writing them costs no compression; their
content is seeded random bytes (incompressible: they fill layer chunks) or zeros (they fill the
250 MB unzipped budget while zipping to almost nothing).
"""

from __future__ import annotations

import base64
import hashlib
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
X86_64_312 = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"
AARCH64_312 = "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"
PURE = "py3-none-any"


@dataclass(frozen=True)
class Blob:
    """A generated file: `size` bytes of seeded random data, or of zeros."""

    size: int
    seed: int | None = None  # None: zeros

    def data(self) -> bytes:
        if self.seed is None:
            return bytes(self.size)
        return random.Random(self.seed).randbytes(self.size)


@dataclass
class WheelSpec:
    name: str
    version: str
    tag: str = PURE
    files: dict[str, bytes | Blob] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        dist = self.name.replace("-", "_")
        return f"{dist}-{self.version}-{self.tag}.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(folder: Path, spec: WheelSpec) -> Path:
    """Write one wheel into `folder` and return its path."""
    dist = spec.name.replace("-", "_")
    info = f"{dist}-{spec.version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {spec.name}\nVersion: {spec.version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in spec.requires)
    tags = spec.tag.split("-")
    wheel = "Wheel-Version: 1.0\nGenerator: pkg-tests\n"
    wheel += f"Root-Is-Purelib: {'true' if spec.tag == PURE else 'false'}\n"
    for platform in tags[2].split("."):
        wheel += f"Tag: {tags[0]}-{tags[1]}-{platform}\n"
    files: dict[str, bytes | Blob] = {
        f"{dist}/__init__.py": f"__version__ = {spec.version!r}\n".encode(),
        **spec.files,
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": wheel.encode(),
    }
    path = folder / spec.filename
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            data = content.data() if isinstance(content, Blob) else content
            compress = (
                zipfile.ZIP_STORED if isinstance(content, Blob) and content.seed is not None else zipfile.ZIP_DEFLATED
            )
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data, compress_type=compress)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    return path


def big(name: str, version: str, megabytes: int, seed: int, parts: int = 1, tag: str = PURE) -> WheelSpec:
    """A wheel of `parts` incompressible files, `megabytes` in all."""
    size = megabytes * MB // parts
    files: dict[str, bytes | Blob] = {f"{name}/data{i}.bin": Blob(size, seed * 100 + i) for i in range(parts)}
    return WheelSpec(name, version, tag, files)


# The wheelhouse every dependency test installs from (built once per test session).
WHEELS = [
    WheelSpec("tinylib", "1.0", files={"tinylib/core.py": b"def answer():\n    return 42\n"}),
    WheelSpec("tinylib", "1.1", files={"tinylib/core.py": b"def answer():\n    return 43\n"}),
    WheelSpec("helper", "2.0", requires=["tinylib>=1.0"]),
    WheelSpec("nativelib", "1.0", X86_64_312, files={"nativelib/_speed.cpython-312-x86_64-linux-gnu.so": b"\x7fELF"}),
    WheelSpec("nativelib", "1.0", AARCH64_312, files={"nativelib/_speed.cpython-312-aarch64-linux-gnu.so": b"\x7fELF"}),
    WheelSpec("armonly", "1.0", AARCH64_312, files={"armonly/_x.cpython-312-aarch64-linux-gnu.so": b"\x7fELF"}),
    WheelSpec(
        "newglibc",
        "1.0",
        "cp311-cp311-manylinux_2_28_x86_64",
        files={"newglibc/_x.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
    ),
    WheelSpec(
        "newglibc",
        "1.0",
        "cp312-cp312-manylinux_2_28_x86_64",
        files={"newglibc/_x.cpython-312-x86_64-linux-gnu.so": b"\x7fELF"},
    ),
    WheelSpec("botocore", "1.35.0", files={"botocore/data/big.json": b"{}" * 1000}),
    WheelSpec("boto3", "1.35.0", requires=["botocore==1.35.0"]),
    WheelSpec("awsthing", "1.0", requires=["boto3>=1.0"]),
    WheelSpec("needsold", "1.0", requires=["tinylib<1.0"]),  # conflicts with any tinylib here
    WheelSpec("usesghost", "1.0", requires=["ghost>=1"]),  # needs a package no index has
    WheelSpec("pyspark", "3.5.0"),  # a stand-in: Spark runtimes provide their own
    WheelSpec("sparkext", "1.0", requires=["pyspark>=3"]),
    WheelSpec(
        "withcache", "1.0", files={"withcache/__pycache__/x.cpython-312.pyc": b"stale", "withcache/y.pyc": b"stale"}
    ),
    big("bigone", "1.0", 30, seed=1),
    big("bigtwo", "1.0", 30, seed=2),
    big("bigtwo", "1.1", 30, seed=3),
    big("giant", "1.0", 60, seed=4, parts=3),
    big("bulky", "1.0", 40, seed=5),
    # 140 MB unzipped each, a few hundred kB zipped: two of them overflow Lambda's 250 MB.
    WheelSpec("zeros-a", "1.0", files={f"zeros_a/block{i}.bin": Blob(70 * MB) for i in range(2)}),
    WheelSpec("zeros-b", "1.0", files={f"zeros_b/block{i}.bin": Blob(70 * MB) for i in range(2)}),
]


def build_wheelhouse(folder: Path) -> Path:
    """Write every wheel of WHEELS into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec in WHEELS:
        write_wheel(folder, spec)
    return folder


def write_unsafe_wheel(folder: Path, name: str, version: str, member: str, tag: str = PURE) -> Path:
    """A wheel that is valid but for one member named `member` (`../x.py`, `/etc/x`, `a\\b.py`, `C:/x`): zip-slip."""
    path = write_wheel(folder, WheelSpec(name, version, tag))
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo("placeholder", (2020, 1, 1, 0, 0, 0))
        info.filename = member  # set after construction: ZipInfo() would normalise the separators away
        archive.writestr(info, b"ESCAPED = True\n")
    return path
