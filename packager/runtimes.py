"""The runtime table: every Python runtime pkg targets, its OS, glibc, wheel tags and limits.

Discovery, dependency installation, the env files and the tests all read this one table
(RUNTIMES.md is the source of the facts).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Runtime:
    """One service runtime: the Python it runs and the newest manylinux glibc its OS accepts."""

    name: str
    python: str  # "3.12"
    os: str
    glibc: str  # what the OS ships
    manylinux_max: tuple[int, int]  # newest manylinux_2_X wheel that is safe to import there

    @property
    def python_tag(self) -> str:
        """The CPython ABI tag, e.g. "cp312"."""
        return "cp" + self.python.replace(".", "")

    def platform_tags(self, architecture: str) -> list[str]:
        """Every wheel platform tag accepted here, newest first (pip does not expand them itself)."""
        machine = MACHINES[architecture]
        major, newest = self.manylinux_max
        tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, 16, -1)]
        tags.append(f"manylinux2014_{machine}")
        if machine == "x86_64":
            # aarch64 wheels start at manylinux2014; x86_64 ones go back to manylinux1.
            tags += [f"manylinux_2_{minor}_{machine}" for minor in range(16, 4, -1)]
            tags += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
        return tags


# Lambda architecture name -> wheel machine name.
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}

_AL2 = ("Amazon Linux 2", "2.26", (2, 17))
_AL2023 = ("Amazon Linux 2023", "2.34", (2, 34))

LAMBDA_RUNTIMES: dict[str, Runtime] = {
    name: Runtime(name, python, *os_facts)
    for name, python, os_facts in [
        ("python3.9", "3.9", _AL2),
        ("python3.10", "3.10", _AL2),
        ("python3.11", "3.11", _AL2),
        ("python3.12", "3.12", _AL2023),
        ("python3.13", "3.13", _AL2023),
        ("python3.14", "3.14", _AL2023),
    ]
}
LAMBDA_ARCHITECTURES = tuple(MACHINES)


@dataclass(frozen=True)
class LambdaLimits:
    """Lambda's hard limits (RUNTIMES.md); moto enforces none of them, so pkg does."""

    direct_upload_zip: int = 50 * MB  # larger code zips go through S3
    layer_chunk_zip: int = 50 * MB  # pkg's own cap per dependency layer chunk
    unzipped_total: int = 262_144_000  # function code plus all its layers
    layers_per_function: int = 5
    chunks_per_group: int = 2
    function_name_length: int = 64
    layer_name_length: int = 64  # bare name; ARNs are longer


LAMBDA_LIMITS = LambdaLimits()

# Shipped by every Lambda Python runtime: left out of layers when they only come in transitively.
LAMBDA_PROVIDED_DISTRIBUTIONS = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
