"""`handler = "main"`: the function Lambda calls is settable for the service and per function. The
handler check follows it, the function's Handler is `<name>.main`, and the zip (and its hash) is unchanged."""

from __future__ import annotations

import boto3
from conftest import AWS_REGION, PUBLISH_PYPROJECT

MAIN = "def main(event, context):\n    return 'main'\n"


def configuration(function: str) -> dict:
    return boto3.client("lambda", region_name=AWS_REGION).get_function(FunctionName=function)["Configuration"]


def input_hashes(report: dict) -> dict[str, str]:
    return {artifact["id"]: artifact["input_hash"] for artifact in report["artifacts"]}


def test_a_function_named_main_publishes_with_handler_main(project, aws, no_conda):
    before = input_hashes(project.pkg_json("publish", "--stage", "dev"))
    project.write("src/lambda/report.py", MAIN)
    pyproject = PUBLISH_PYPROJECT + '\n[tool.pkg.lambda.functions.report]\nhandler = "main"\n'
    project.write("pyproject.toml", pyproject)

    report = project.pkg_json("publish", "--stage", "dev")

    assert configuration("datamart-dev-report")["Handler"] == "report.main"
    assert configuration("datamart-dev-ingest")["Handler"] == "ingest.handler"
    hashes = input_hashes(report)
    assert hashes["lambda/function/ingest"] == before["lambda/function/ingest"]  # the setting is no build input
    # pkg invoke calls the same function Lambda would.
    project.write("event.json", "{}")
    assert project.pkg_json("invoke", "lambda/report", "--event", str(project.root / "event.json"))["result"] == "main"

    # Set for the whole service, a function that has no `main` is refused naming it, before anything is built.
    service_wide = PUBLISH_PYPROJECT.replace("[tool.pkg.lambda]\n", '[tool.pkg.lambda]\nhandler = "main"\n')
    project.write("pyproject.toml", service_wide)
    result = project.pkg("build")
    assert result.exit_code == 1
    assert (
        "src/lambda/ingest.py:1: no top-level 'main' function; Lambda calls <module>.main(event, context)"
        in result.stderr
    )
    assert "src/lambda/report.py" not in result.stderr


def test_the_handler_setting_is_checked_when_the_file_is_read(repo):
    text = (repo.root / "pyproject.toml").read_text()
    repo.write("pyproject.toml", text + '\n[tool.pkg.lambda.functions.report]\nhandler = "not valid"\n')
    result = repo.pkg("build")
    assert result.exit_code == 1
    assert "tool.pkg.lambda.functions.report.handler: 'not valid' can't name a Python function" in result.stderr
    # The build checks the handler and knows no stage: a stage can't change it.
    repo.write("pyproject.toml", text + '\n[tool.pkg.stages.dev.lambda]\nhandler = "main"\n')
    result = repo.pkg("build")
    assert result.exit_code == 1 and "tool.pkg.stages.dev.lambda: 'handler' can't differ per stage" in result.stderr
