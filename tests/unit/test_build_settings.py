"""What shapes a build, read once for Lambda and jobs: Config.resolve, IndexOptions, wheel tag ranking."""

from __future__ import annotations

import pytest

from packager.builders.installer import IndexOptions, Platform, index_options
from packager.builders.wheels import best_wheel, supported_tags
from packager.config import Config, job_settings
from packager.errors import ConfigError
from packager.model import Service
from packager.runtimes import LAMBDA_RUNTIMES, job_runtime

RAW = {
    "lambda": {
        "timeout": 30,
        "tags": {"team": "data"},
        "functions": {"report": {"memory": 1024, "tags": {"owner": "ana"}}},
    },
    "glue_spark": {
        "glue_version": "5.0",
        "default_arguments": {"--a": "1"},
        "jobs": {"clean": {"number_of_workers": 5, "default_arguments": {"--b": "2"}}},
    },
    "stages": {
        "dev": {
            "lambda": {"environment": {"STAGE": "dev"}, "functions": {"report": {"timeout": 60}}},
            "glue_spark": {"jobs": {"clean": {"default_arguments": {"--a": "dev"}}}},
        }
    },
    "dependencies": {"find_links": ["wheels"], "no_index": True, "installer": "pip"},
}


def test_resolve_layers_lambda_settings():
    config = Config("/repo", RAW)
    report = config.resolve(Service.LAMBDA, "report", "dev")
    assert report["runtime"] == "python3.12" and report["memory"] == 1024 and report["timeout"] == 60
    assert report["tags"] == {"team": "data", "owner": "ana"} and report["environment"] == {"STAGE": "dev"}
    assert "functions" not in report
    assert config.lambda_settings("report", "dev") == report
    assert config.resolve("lambda", "other")["timeout"] == 30


def test_resolve_layers_job_settings_the_same_way():
    config = Config("/repo", RAW)
    clean = config.resolve(Service.GLUE_SPARK, "clean", "dev")
    assert clean["number_of_workers"] == 5 and clean["worker_type"] == "G.1X"
    assert clean["default_arguments"] == {"--a": "dev", "--b": "2"}
    assert "jobs" not in clean
    assert job_settings(config, "glue_spark", "clean", "dev") == clean
    assert config.resolve("glue_spark", "other")["default_arguments"] == {"--a": "1"}


def test_resolved_settings_are_the_callers_own():
    config = Config("/repo", RAW)
    first = config.resolve(Service.EMR, "a")
    first["arguments"].append("--changed")
    first["tags"]["x"] = "y"
    again = config.resolve(Service.EMR, "a")
    assert again["arguments"] == [] and again["tags"] == {}


def test_resolve_checks_the_python_a_runtime_offers():
    config = Config("/repo", {"glue_spark": {"glue_version": "5.0", "jobs": {"x": {"python_version": "3.9"}}}})
    with pytest.raises(ConfigError, match=r"python_version 3.9 is not offered by 5.0"):
        config.resolve(Service.GLUE_SPARK, "x")


def test_one_index_options_reader_for_lambda_and_jobs():
    config = Config("/repo", RAW)
    repo = index_options(config)
    assert repo == IndexOptions(find_links=("wheels",), no_index=True, installer="pip")
    job = index_options(config, {"index_url": "https://mirror/simple", "no_index": False, "tags": {}})
    assert job == IndexOptions("https://mirror/simple", (), ("wheels",), False, "pip")
    assert repo.hashed() == {"index_url": None, "extra_index_urls": [], "find_links": ["wheels"], "no_index": True}
    assert repo.index_args("/repo") == ["--find-links", "/repo/wheels", "--no-index"]


def test_index_options_refuse_an_unknown_installer():
    with pytest.raises(ConfigError, match="unknown installer 'conda'"):
        index_options(Config("/repo", {"dependencies": {"installer": "conda"}}))


def test_supported_tags_put_the_interpreter_first_and_pure_wheels_last():
    runtime = job_runtime("glue_spark", "5.0")
    assert runtime is not None
    tags = supported_tags(Platform(runtime.python_runtime(), "x86_64"))
    assert tags[0] == ("cp311", "cp311", "manylinux_2_34_x86_64")
    assert tags[-1][1:] == ("none", "any")
    assert tags.index(("cp311", "abi3", "manylinux2014_x86_64")) < tags.index(("py3", "none", "any"))
    assert ("cp312", "cp312", "manylinux_2_17_x86_64") not in tags


def test_lambda_and_job_platforms_are_one_type():
    lambda_platform = Platform(LAMBDA_RUNTIMES["python3.11"], "x86_64")
    runtime = job_runtime("glue_spark", "5.0")
    assert runtime is not None
    job_platform = Platform(runtime.python_runtime(), "x86_64")
    assert lambda_platform.runtime.python == job_platform.runtime.python
    assert job_platform.uv_platform == "x86_64-manylinux_2_34"


def test_the_most_specific_fitting_wheel_is_picked_as_pip_would():
    runtime = job_runtime("glue_spark", "5.0")  # CPython 3.11 on AL2023
    assert runtime is not None
    platform = Platform(runtime.python_runtime(), "x86_64")
    names = [
        "fast-1.0-py3-none-any.whl",
        "fast-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "fast-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "fast-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "fast-1.0-cp311-cp311-manylinux_2_28_aarch64.whl",
    ]
    assert best_wheel(names, platform) == 2
    assert best_wheel([names[0], "fast-1.0-cp38-abi3-manylinux2014_x86_64.whl"], platform) == 1
    assert best_wheel([names[0]], platform) == 0
    assert best_wheel(names[3:], platform) is None
