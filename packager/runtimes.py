"""The runtime table: every Python runtime pkg targets, its OS, glibc, wheel tags and limits.

Discovery, dependency installation, the env files and the tests all read this one table
(RUNTIMES.md is the source of the facts).
"""

from __future__ import annotations

from dataclasses import dataclass

from packager.model import Service

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
    function_name_chars: str = "A-Za-z0-9_-"  # CreateFunction's FunctionName pattern
    # PublishLayerVersion: LayerName and LayerVersionArn both take at most 140 characters, so the
    # bare name must leave room for "arn:aws:lambda:<region>:<account>:layer:" and ":<version>".
    layer_name_length: int = 140
    layer_version_arn_length: int = 140
    description_length: int = 256
    environment_bytes: int = 4096  # all variables of one function together


LAMBDA_LIMITS = LambdaLimits()

# Shipped by every Lambda Python runtime: left out of layers when they only come in transitively.
LAMBDA_PROVIDED_DISTRIBUTIONS = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)


# ---------------------------------------------------------------------------------------------
# Glue Python shell, Glue Spark and EMR (issue 6). Facts from RUNTIMES.md; one row per version.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRuntime:
    """One Glue or EMR runtime version: its Spark, the Pythons it runs and the OS those run on."""

    service: Service  # a job service
    version: str  # GlueVersion ("3.0", "5.0") or EMR release family ("emr-7", "emr-spark-8.0.0")
    pythons: tuple[str, ...]  # the first is the default
    spark: str | None
    os: str
    glibc: str
    manylinux_max: tuple[int, int]
    confirmed: bool = True

    def python_runtime(self, python: str | None = None) -> Runtime:
        """The Python of this version (default: its first) as a Runtime, for wheel tags."""
        python = python or self.pythons[0]
        return Runtime(f"{self.service}-{self.version}-python{python}", python, self.os, self.glibc, self.manylinux_max)


_AL2_JOB = ("Amazon Linux 2", "2.26", (2, 17))
_AL2023_JOB = ("Amazon Linux 2023", "2.34", (2, 34))

# Python shell: PythonVersion "3.9" on GlueVersion "3.0"; binary deps are cp39 manylinux2014 x86_64.
GLUE_PYTHON_SHELL_RUNTIMES: dict[str, JobRuntime] = {
    "3.0": JobRuntime(Service.GLUE_PYTHON_SHELL, "3.0", ("3.9",), None, *_AL2_JOB),
}
GLUE_SPARK_RUNTIMES: dict[str, JobRuntime] = {
    "4.0": JobRuntime(Service.GLUE_SPARK, "4.0", ("3.10",), "3.3.0", *_AL2_JOB),
    "5.0": JobRuntime(Service.GLUE_SPARK, "5.0", ("3.11",), "3.5.4", *_AL2023_JOB),
    "5.1": JobRuntime(Service.GLUE_SPARK, "5.1", ("3.11",), "3.5.6", *_AL2023_JOB),
    "6.0": JobRuntime(Service.GLUE_SPARK, "6.0", ("3.13",), "4.1.1", *_AL2023_JOB, confirmed=False),
}
# EMR rows are release families: every emr-7.x.y label shares the first row.
EMR_RUNTIMES: dict[str, JobRuntime] = {
    "emr-7": JobRuntime(Service.EMR, "emr-7", ("3.11", "3.9"), "3.5", *_AL2023_JOB),
    "emr-spark-8.0.0": JobRuntime(Service.EMR, "emr-spark-8.0.0", ("3.11", "3.12", "3.13"), "4.0.2", *_AL2023_JOB),
}
JOB_ARCHITECTURES = {
    Service.GLUE_PYTHON_SHELL: ("x86_64",),
    Service.GLUE_SPARK: ("x86_64",),
    Service.EMR: ("x86_64", "arm64"),
}
# The setting that names a job's runtime version (a row of the tables above).
RUNTIME_VERSION_SETTING = {
    Service.GLUE_PYTHON_SHELL: "glue_version",
    Service.GLUE_SPARK: "glue_version",
    Service.EMR: "release_label",
}

GLUE_PYTHON_SHELL_CAPACITIES = (0.0625, 1.0)
GLUE_WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X", "G.12X", "G.16X", "R.1X", "R.2X", "R.4X", "R.8X", "Z.2X")
GLUE_LIBRARY_SETS = ("analytics", "none")
# All of a Glue job's arguments together (RUNTIMES.md: 260 KB); counted in bytes, conservatively.
GLUE_ARGUMENTS_MAX_BYTES = 260_000
GLUE_JOB_NAME_LENGTH = 255


def emr_runtime(release_label: str) -> JobRuntime | None:
    """The runtime row of an EMR release label (emr-7.x.y, emr-spark-8.0.0), or None if unknown."""
    if release_label in EMR_RUNTIMES:
        return EMR_RUNTIMES[release_label]
    major = release_label.split(".", 1)[0]
    return EMR_RUNTIMES.get(major) if release_label.count(".") == 2 else None


def job_runtime(service: Service | str, version: str) -> JobRuntime | None:
    """The row of `version` (GlueVersion or EMR release label) for a job service, or None."""
    if service == Service.EMR:
        return emr_runtime(version)
    table = GLUE_PYTHON_SHELL_RUNTIMES if service == Service.GLUE_PYTHON_SHELL else GLUE_SPARK_RUNTIMES
    return table.get(version)


# ---------------------------------------------------------------------------------------------
# What each job runtime already provides (issue 13): a job's dependency set leaves these out when they
# come in only as a dependency of something else (as Lambda's layers do with boto3 & co.), because
# `--additional-python-modules` / a PYTHONPATH archive would replace the runtime's own copy. One
# pinned in the job's requirements is kept: the user asked for that version. Canonical names.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvidedSet:
    """The distributions one job runtime ships, and the AWS page that lists them."""

    names: frozenset[str]
    source: str


_GLUE_MODULES_PAGE = "https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html#glue-modules-provided"
_PYTHON_SHELL_PAGE = "https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html#python-shell-supported-library"
_EMR_SERVERLESS_PAGE = "https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/release-versions.html"
# Spark's own Python package, part of every Spark runtime (the release's Spark version, above).
_SPARK_PYTHON = ("pyspark", "py4j")
# boto3 and what it cannot run without (its own requirements come with it wherever it is installed).
_BOTO3 = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
_GLUE_4_0 = (
    "aiobotocore", "aiohttp", "aioitertools", "aiosignal", "async-timeout", "asynctest", "attrs", "avro-python3",
    "boto3", "botocore", "certifi", "chardet", "charset-normalizer", "click", "cycler", "cython", "fsspec", "idna",
    "importlib-metadata", "jmespath", "joblib", "kaleido", "kiwisolver", "matplotlib", "mpmath", "multidict", "nltk",
    "numpy", "packaging", "pandas", "patsy", "pillow", "plotly", "pmdarima", "ptvsd", "pyarrow", "pydevd",
    "pyhocon", "pymysql", "pyparsing", "python-dateutil", "pytz", "pyyaml", "regex", "requests", "s3fs",
    "s3transfer", "scikit-learn", "scipy", "six", "statsmodels", "subprocess32", "sympy", "tbats",
    "threadpoolctl", "tqdm", "typing-extensions", "urllib3", "wrapt", "yarl", "zipp",
)  # fmt: skip
_GLUE_5_0 = (
    "aiobotocore", "aiohappyeyeballs", "aiohttp", "aioitertools", "aiosignal", "appdirs", "attrs", "boto3",
    "botocore", "certifi", "charset-normalizer", "contourpy", "cycler", "fonttools", "frozenlist", "fsspec", "idna",
    "jmespath", "kaleido", "kiwisolver", "matplotlib", "multidict", "numpy", "packaging", "pandas", "pillow",
    "plotly", "pyarrow", "pyparsing", "python-dateutil", "pytz", "requests", "s3fs", "s3transfer", "seaborn",
    "six", "tenacity", "tzdata", "urllib3", "wrapt", "yarl",
)  # fmt: skip
# Python shell 3.9's "analytics" library set, on top of what every library set has (boto3).
_PYTHON_SHELL_ANALYTICS = (
    "avro", "awscli", "awswrangler", "elasticsearch", "numpy", "pandas", "psycopg2", "pyathena", "pygresql",
    "pymysql", "pyodbc", "pyorc", "redshift-connector", "requests", "s3fs", "scikit-learn", "scipy", "sqlalchemy",
)  # fmt: skip

# (service, runtime version, Python shell library set or "") -> what that runtime provides. A runtime
# missing here (Glue 5.1 and 6.0: no list published yet) provides only Spark's own package, if any.
JOB_PROVIDED: dict[tuple[Service, str, str], ProvidedSet] = {
    (Service.GLUE_PYTHON_SHELL, "3.0", "none"): ProvidedSet(frozenset(_BOTO3), _PYTHON_SHELL_PAGE),
    (Service.GLUE_PYTHON_SHELL, "3.0", "analytics"): ProvidedSet(
        frozenset(_BOTO3 + _PYTHON_SHELL_ANALYTICS), _PYTHON_SHELL_PAGE
    ),
    (Service.GLUE_SPARK, "4.0", ""): ProvidedSet(frozenset(_GLUE_4_0 + _SPARK_PYTHON), _GLUE_MODULES_PAGE),
    (Service.GLUE_SPARK, "5.0", ""): ProvidedSet(frozenset(_GLUE_5_0 + _SPARK_PYTHON), _GLUE_MODULES_PAGE),
    (Service.GLUE_SPARK, "5.1", ""): ProvidedSet(frozenset(_SPARK_PYTHON), _GLUE_MODULES_PAGE),
    (Service.GLUE_SPARK, "6.0", ""): ProvidedSet(frozenset(_SPARK_PYTHON), _GLUE_MODULES_PAGE),
    (Service.EMR, "emr-7", ""): ProvidedSet(frozenset(_SPARK_PYTHON), _EMR_SERVERLESS_PAGE),
    (Service.EMR, "emr-spark-8.0.0", ""): ProvidedSet(frozenset(_SPARK_PYTHON), _EMR_SERVERLESS_PAGE),
}


def job_provided(service: Service | str, version: str, library_set: str | None = None) -> ProvidedSet | None:
    """What the runtime of a job provides: `version` is its GlueVersion or EMR release label."""
    runtime = job_runtime(service, version)
    if runtime is None:
        return None
    return JOB_PROVIDED.get((runtime.service, runtime.version, library_set or ""))


# ---------------------------------------------------------------------------------------------
# Dev environments (issue 7): one conda env per service runtime, for development and local runs,
# never for deployment (deployable wheels come from pip/uv with --platform tags). envs/<name>.yml,
# the dev container and `pkg env` are all rendered from this table; tests fail when they disagree.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevEnv:
    """One conda environment: its Python, the service folders it serves, and its pinned packages."""

    name: str  # the conda env name, and envs/<name>.yml
    python: str  # "3.12"
    services: tuple[str, ...]  # src/<service> folders whose code runs here
    conda: tuple[str, ...] = ()  # conda-forge specs besides python and pip
    pip: tuple[str, ...] = ()  # fixed pip specs; the services' requirements files come on top
    about: str = ""


# Each env follows its service's default runtime row above (config.py's defaults: python3.12,
# Python shell on Glue 3.0, Glue 5.0, EMR 7.x). Every Lambda runtime ships boto3 (see
# LAMBDA_PROVIDED_DISTRIBUTIONS), so the lambda env has it too and `pkg invoke` offers it to handlers.
_SHELL = GLUE_PYTHON_SHELL_RUNTIMES["3.0"]

# Glue Python shell 3.9's "analytics" library set (library-set=analytics), preinstalled on every run;
# boto3 is there whatever the library set. `pkg invoke` offers jobs exactly these (and what they need).
GLUE_SHELL_ANALYTICS_PINS = {"pandas": "1.4.2", "numpy": "1.22.3", "awswrangler": "2.15.1"}
GLUE_SHELL_PROVIDED_DISTRIBUTIONS = frozenset({"boto3"})
_GLUE_SPARK = GLUE_SPARK_RUNTIMES["5.0"]
_EMR = EMR_RUNTIMES["emr-7"]

DEV_ENVS: dict[str, DevEnv] = {
    env.name: env
    for env in [
        DevEnv(
            "lambda",
            LAMBDA_RUNTIMES["python3.12"].python,
            ("lambda",),
            conda=("boto3", "pytest"),
            about="AWS Lambda, python3.12 (Amazon Linux 2023)",
        ),
        DevEnv(
            "glue_python_shell",
            _SHELL.pythons[0],
            ("glue_python_shell",),
            pip=(
                *(f"{name}=={version}" for name, version in GLUE_SHELL_ANALYTICS_PINS.items()),
                *sorted(GLUE_SHELL_PROVIDED_DISTRIBUTIONS),
                "pytest",
            ),
            about=f"AWS Glue Python shell (Glue {_SHELL.version}), Python {_SHELL.pythons[0]}, analytics library set",
        ),
        DevEnv(
            "glue_spark",
            _GLUE_SPARK.pythons[0],
            ("glue_spark",),
            conda=("openjdk=17", f"pyspark={_GLUE_SPARK.spark}", "pytest"),
            about=f"AWS Glue {_GLUE_SPARK.version} (glueetl): Spark {_GLUE_SPARK.spark},"
            f" Python {_GLUE_SPARK.pythons[0]}, Java 17",
        ),
        DevEnv(
            "emr",
            _EMR.pythons[0],
            ("emr",),
            # EMR 7.x releases ship Spark 3.5.0 to 3.5.6 (-amzn builds): any 3.5.x; Java 17 by default.
            conda=("openjdk=17", f"pyspark={_EMR.spark}", "pytest"),
            about=f"Amazon EMR 7.x (Serverless or on EC2): Spark {_EMR.spark}.x, Python {_EMR.pythons[0]}, Java 17",
        ),
        DevEnv(
            "pkg",
            "3.12",
            (),
            pip=("-e ${PKG_ROOT}[test]", "conda-lock"),  # pkg from this checkout, editable
            about="the pkg tool itself, its tests and conda-lock",
        ),
    ]
}
