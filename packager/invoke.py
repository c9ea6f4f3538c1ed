"""`pkg invoke`: run a function locally against its built artifacts, as the service would run it.

For Lambda: build what is missing (through the builder), extract the function zip into a "task"
folder and each of its layers, in order, into an "opt" folder (later layers overwrite earlier ones,
as Lambda does in /opt), then run the handler in a subprocess with the lambda env's Python when it
exists (else this interpreter) and `lambda_bootstrap.py`, which sees nothing from the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Callable

from packager.build.builder import Workspace, build, collect, plan_build
from packager.build.lambda_artifacts import function_id
from packager.envs import env_for_service, env_python, find_manager
from packager.errors import PkgError
from packager.runtimes import LAMBDA_PROVIDED_DISTRIBUTIONS, LAMBDA_RUNTIMES

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lambda_bootstrap.py")
INIT_SECONDS = 10  # Lambda's own cap on the init phase (imports), on top of the function's timeout
LOCAL_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"


class EventError(PkgError):
    """The event file is missing or is not JSON."""


HANDLER_HINT = "the traceback above is from your code, run from the built artifacts"
FAILURE_HINTS = {
    "Sandbox.Timedout": "raise `timeout` for this function in [tool.pkg.lambda], or pass --timeout",
    "Runtime.MarshalError": "return only JSON-serialisable values (dict, list, str, number, bool, None)",
    "Runtime.ImportModuleError": (
        "the handler imports something its zip and layers don't hold: put shared code in internal_libs/"
        " and dependencies in a requirements file (only boto3 and its kin come with the Lambda runtime)"
    ),
    "Runtime.HandlerNotFound": "define handler(event, context) at the top level of the function's file",
}


class HandlerError(PkgError):
    """The handler raised, could not be imported, returned something that is not JSON, or timed out."""


def parse_target(target: str) -> tuple[str, str]:
    """"lambda/<name>" (or the artifact id "lambda/function/<name>") -> ("lambda", "<name>")."""
    service, _, name = target.strip("/").partition("/")
    if service == "lambda" and name.startswith("function/"):
        name = name[len("function/") :]
    if not name or "/" in name:
        raise PkgError(
            f"can't invoke '{target}': name a function as <service>/<name>",
            hint="e.g. pkg invoke lambda/ingest_orders --event event.json",
        )
    if service == "lambda":
        return service, name
    if service == "glue_python_shell":
        raise PkgError(
            "pkg invoke does not run Glue Python shell jobs yet: pkg builds no Glue artifacts so far",
            hint="run the script in its env meanwhile: pkg env run glue_python_shell -- python src/glue_python_shell/<job>.py",
        )
    raise PkgError(
        f"pkg invoke runs Lambda functions; '{service}' is not one",
        hint="e.g. pkg invoke lambda/ingest_orders --event event.json",
    )


def load_event(path: str | None, stdin_text: Callable[[], str] | None = None) -> object:
    """The event as a JSON value: from `path`, from stdin for "-", or {} when no file is given."""
    if path is None:
        return {}
    if path == "-":
        text, where = (stdin_text or sys.stdin.read)(), "stdin"
    else:
        where = path
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            raise EventError(f"event file {path} not found", hint="pass a JSON file: --event event.json") from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
            raise EventError(f"can't read event file {path}: {error}", hint="pass a UTF-8 JSON file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EventError(
            f"{where}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}",
            hint="the event must be one JSON value, as Lambda receives it",
        ) from None


@dataclass
class LambdaBundle:
    """A function's built code zip and its layers in the order Lambda applies them."""

    name: str
    runtime: str
    settings: dict
    handler: str
    code_zip: str
    layers: list[tuple[str, str]]  # (artifact id, zip path)
    built: list[str] = field(default_factory=list)  # artifact ids built for this run


def prepare_lambda(ws: Workspace, name: str, stage: str | None = None) -> LambdaBundle:
    """Build the function and its layers if needed, and locate their zips in the cache."""
    collected = collect(ws, [function_id(name)])
    planned = plan_build(ws, collected)
    build(ws, planned)
    by_id = {item.spec.id: item for item in planned}
    function = by_id[function_id(name)]
    settings = ws.config.lambda_settings(name, stage)
    return LambdaBundle(
        name=name,
        runtime=settings["runtime"],
        settings=settings,
        handler=function.spec.meta.get("handler", f"{name}.handler"),
        code_zip=ws.store.abspath(function.record.path),
        layers=[(layer, ws.store.abspath(by_id[layer].record.path)) for layer in function.spec.uses],
        built=[item.spec.id for item in planned if item.action == "build"],
    )


def extract_bundle(bundle: LambdaBundle, folder: str) -> tuple[str, str]:
    """Unzip the code into <folder>/task and every layer, in order, into <folder>/opt."""
    task, opt = os.path.join(folder, "task"), os.path.join(folder, "opt")
    os.makedirs(task)
    os.makedirs(opt)
    with zipfile.ZipFile(bundle.code_zip) as archive:
        archive.extractall(task)
    for _, path in bundle.layers:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(opt)  # a later layer's file replaces an earlier one's, as in /opt
    return task, opt


@dataclass
class Interpreter:
    path: str
    source: str  # "env lambda" or "current interpreter"
    version: str  # "3.12"


def choose_interpreter() -> Interpreter:
    """The lambda env's Python when that env exists, else the interpreter running pkg."""
    env = env_for_service("lambda")
    python = env_python(env.name, find_manager())
    if python:
        probe = subprocess.run(
            [python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return Interpreter(python, f"env {env.name}", probe.stdout.strip())
    return Interpreter(sys.executable, "current interpreter", "%d.%d" % sys.version_info[:2])


@dataclass
class InvokeResult:
    """What one local run returned."""

    target: str
    result: object
    duration_ms: int
    interpreter: Interpreter
    built: list[str]
    warnings: list[str]


def _stream(pipe, on_output: Callable[[str], None], renames: dict[str, str]) -> None:
    for line in iter(pipe.readline, ""):
        for local, on_lambda in renames.items():
            line = line.replace(local, on_lambda)
        on_output(line.rstrip("\n"))
    pipe.close()


def invoke_lambda(
    ws: Workspace,
    name: str,
    event: object,
    stage: str | None = None,
    timeout: int | None = None,
    on_output: Callable[[str], None] = lambda line: None,
    on_warning: Callable[[str], None] = lambda message: None,
) -> InvokeResult:
    """Run lambda/<name> against its built artifacts; the handler's output lines go to `on_output`.

    Paths in that output read /var/task and /opt, as on Lambda. Raises HandlerError when the
    handler fails (its traceback has gone to `on_output` first).
    """
    bundle = prepare_lambda(ws, name, stage)
    interpreter = choose_interpreter()
    warnings = []
    runtime = LAMBDA_RUNTIMES.get(bundle.runtime)
    if runtime and runtime.python != interpreter.version:
        warnings.append(
            f"running with Python {interpreter.version} ({interpreter.source}) but the function runs on"
            f" {bundle.runtime}: compiled dependencies may not import; create the env: pkg env create lambda --run"
        )
    for warning in warnings:
        on_warning(warning)
    seconds = timeout or bundle.settings["timeout"]
    folder = tempfile.mkdtemp(prefix="pkg-invoke-")
    try:
        task, opt = extract_bundle(bundle, folder)
        bootstrap = shutil.copy(BOOTSTRAP, os.path.join(folder, "bootstrap.py"))
        event_path, result_path = os.path.join(folder, "event.json"), os.path.join(folder, "result.json")
        with open(event_path, "w", encoding="utf-8") as stream:
            json.dump(event, stream)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        spec = {
            "task": task,
            "opt": opt,
            "handler": bundle.handler,
            "event_path": event_path,
            "result_path": result_path,
            "function_name": name,
            "memory": bundle.settings["memory"],
            "timeout": seconds,
            "region": region,
            "account": LOCAL_ACCOUNT,
            "provided": sorted(LAMBDA_PROVIDED_DISTRIBUTIONS),
        }
        spec_path = os.path.join(folder, "invoke.json")
        with open(spec_path, "w", encoding="utf-8") as stream:
            json.dump(spec, stream)
        environment = {
            **os.environ,
            **bundle.settings.get("environment", {}),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(bundle.settings["memory"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{bundle.runtime}",
            "AWS_REGION": region,
            "LAMBDA_TASK_ROOT": task,
            "PYTHONUNBUFFERED": "1",
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [interpreter.path, "-I", "-S", bootstrap, spec_path],
            cwd=task,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        as_on_lambda = {task: "/var/task", opt: "/opt"}
        reader = threading.Thread(target=_stream, args=(process.stdout, on_output, as_on_lambda), daemon=True)
        reader.start()
        try:
            process.wait(timeout=INIT_SECONDS + seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            reader.join()
            raise HandlerError(
                f"lambda/{name} timed out after {seconds} s (plus {INIT_SECONDS} s for imports)",
                hint="raise `timeout` for this function in [tool.pkg.lambda], or pass --timeout",
            ) from None
        reader.join()
        duration_ms = int((time.perf_counter() - started) * 1000)
        try:
            with open(result_path, encoding="utf-8") as stream:
                outcome = json.load(stream)
        except (OSError, ValueError):
            raise HandlerError(
                f"lambda/{name} exited with code {process.returncode} before returning (Runtime.ExitError)",
                hint="the output above shows why; sys.exit() or a crash in the handler ends the run",
            ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not outcome["ok"]:
        kind = outcome["errorType"]
        raise HandlerError(
            f"lambda/{name} failed: {kind}: {outcome['errorMessage']}", hint=FAILURE_HINTS.get(kind, HANDLER_HINT)
        )
    return InvokeResult(
        f"lambda/{name}", outcome["result"], duration_ms, interpreter, bundle.built, warnings
    )
