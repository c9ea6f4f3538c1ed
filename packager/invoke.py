"""`pkg invoke`: run a function or job locally against its built artifacts, as the service would run it.

Lambda: build what is missing (app.ensure_built), extract the function zip into a "task" folder
and each of its layers, in order, into an "opt" folder (later layers overwrite earlier ones, as
Lambda does in /opt), then call the handler in a subprocess. Glue Python shell: the job script, its
internal_libs wheel and its dependency wheels unpacked into one folder, then the script run as
__main__ with its arguments. Either runs with the service's dev env Python when that env exists
(else this interpreter) and `invoke_bootstrap.py`, which sees nothing from the repository.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Callable

from packager.app import ensure_built
from packager.builders.builder import Workspace
from packager.builders.lambda_code import function_id
from packager.builders.zips import check_members, extract_checked
from packager.envs import env_for_service, env_python, find_manager
from packager.errors import EventError, HandlerError, PkgError
from packager.model import ArtifactId
from packager.runtimes import (
    GLUE_SHELL_ANALYTICS_PINS,
    GLUE_SHELL_PROVIDED_DISTRIBUTIONS,
    LAMBDA_PROVIDED_DISTRIBUTIONS,
    LAMBDA_RUNTIMES,
    MACHINES,
)

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "invoke_bootstrap.py")
INVOKABLE = ("lambda", "glue_python_shell")
INIT_SECONDS = 10  # Lambda's own cap on the init phase (imports), on top of the function's timeout
LOCAL_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
_WHEEL_DATA_LIB = re.compile(r"^[^/]+\.data/(purelib|platlib)/")

HANDLER_HINT = "the traceback above is from your code, run from the built artifacts"
FAILURE_HINTS = {
    "Sandbox.Timedout": "raise its `timeout` in [tool.pkg], or pass --timeout",
    "Runtime.MarshalError": "return only JSON-serialisable values (dict, list, str, number, bool, None)",
    "Runtime.ImportModuleError": (
        "the handler imports something its zip and layers don't hold: put shared code in internal_libs/"
        " and dependencies in a requirements file (only boto3 and its kin come with the Lambda runtime)"
    ),
    "Runtime.HandlerNotFound": "define handler(event, context) at the top level of the function's file",
    "SystemExit": "the script called sys.exit() with a non-zero code; Glue marks such a run FAILED",
}


def parse_target(target: str) -> tuple[str, str]:
    """"lambda/<name>", "glue_python_shell/<job>" (or their artifact ids) -> (service, name)."""
    service, _, name = target.strip("/").partition("/")
    for prefix in ("function/", "job/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if service not in INVOKABLE or not name or "/" in name:
        raise PkgError(
            f"can't invoke '{target}': pkg invoke runs lambda/<function> and glue_python_shell/<job>",
            hint="Glue Spark and EMR jobs need a cluster: `pkg run`, or `pkg env run glue_spark -- spark-submit ...`",
        )
    return service, name


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
class Interpreter:
    path: str
    source: str  # "env lambda" or "current interpreter"
    version: str  # "3.12"


def choose_interpreter(service: str) -> Interpreter:
    """The service's dev env Python when that env exists, else the interpreter running pkg."""
    env = env_for_service(service)
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


def _version_warning(interpreter: Interpreter, python: str, runtime: str, env: str) -> list[str]:
    if interpreter.version == python:
        return []
    return [
        f"running with Python {interpreter.version} ({interpreter.source}) but {runtime} runs Python {python}:"
        f" compiled dependencies may not import; create the env: pkg env create {env} --run"
    ]


@dataclass
class InvokeResult:
    """What one local run returned."""

    target: str
    result: object  # the handler's return value (Lambda) or None (a job prints its own output)
    duration_ms: int
    interpreter: Interpreter
    built: list[str]
    warnings: list[str]


@dataclass
class _Run:
    """One bootstrap run: its spec, environment and how its output is shown."""

    target: str
    spec: dict
    environment: dict
    seconds: int
    renames: dict[str, str] = field(default_factory=dict)  # local folder -> what the service calls it
    merge_stdout: bool = True  # Lambda: stdout is the log too; a job's stdout stays stdout


def _stream(pipe, on_line: Callable[[str], None], renames: dict[str, str]) -> None:
    for line in iter(pipe.readline, ""):
        for local, remote in renames.items():
            line = line.replace(local, remote)
        on_line(line.rstrip("\n"))
    pipe.close()


def _run_bootstrap(
    interpreter: Interpreter,
    folder: str,
    run: _Run,
    on_output: Callable[[str], None],
    on_stdout: Callable[[str], None],
) -> tuple[dict, int]:
    """Run invoke_bootstrap.py on `run.spec` in `folder`; (its outcome, milliseconds)."""
    bootstrap = shutil.copy(BOOTSTRAP, os.path.join(folder, "bootstrap.py"))
    result_path = os.path.join(folder, "result.json")
    spec_path = os.path.join(folder, "invoke.json")
    with open(spec_path, "w", encoding="utf-8") as stream:
        json.dump({**run.spec, "result_path": result_path, "timeout": run.seconds}, stream)
    started = time.perf_counter()
    process = subprocess.Popen(
        [interpreter.path, "-I", "-S", bootstrap, spec_path],
        cwd=run.spec["code"],
        env={**run.environment, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if run.merge_stdout else subprocess.PIPE,
        text=True,
        errors="replace",
    )
    on_first = on_output if run.merge_stdout else on_stdout
    readers = [threading.Thread(target=_stream, args=(process.stdout, on_first, run.renames))]
    if not run.merge_stdout:
        readers.append(threading.Thread(target=_stream, args=(process.stderr, on_output, run.renames)))
    for reader in readers:
        reader.daemon = True
        reader.start()
    try:
        process.wait(timeout=INIT_SECONDS + run.seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise HandlerError(
            f"{run.target} timed out after {run.seconds} s (plus {INIT_SECONDS} s for imports)",
            hint="raise its `timeout` in [tool.pkg], or pass --timeout",
        ) from None
    finally:
        for reader in readers:
            reader.join()
    duration_ms = int((time.perf_counter() - started) * 1000)
    try:
        with open(result_path, encoding="utf-8") as stream:
            outcome = json.load(stream)
    except (OSError, ValueError):
        raise HandlerError(
            f"{run.target} exited with code {process.returncode} before returning (Runtime.ExitError)",
            hint="the output above shows why; os._exit() or a crash of the interpreter ends the run",
        ) from None
    if not outcome["ok"]:
        kind = outcome["errorType"]
        raise HandlerError(
            f"{run.target} failed: {kind}: {outcome['errorMessage']}", hint=FAILURE_HINTS.get(kind, HANDLER_HINT)
        )
    return outcome, duration_ms


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def invoke_lambda(
    ws: Workspace,
    name: str,
    event: object,
    stage: str | None = None,
    timeout: int | None = None,
    on_output: Callable[[str], None] = lambda line: None,
    on_warning: Callable[[str], None] = lambda message: None,
    on_progress: Callable[[str], None] = lambda message: None,
) -> InvokeResult:
    """Run lambda/<name> against its built artifacts; the handler's output lines go to `on_output`.

    Paths in that output read /var/task and /opt, as on Lambda. Raises HandlerError when the
    handler fails (its traceback has gone to `on_output` first).
    """
    artifact = function_id(name)
    local = ensure_built(ws, artifact, on_progress, on_warning)
    spec, files, built = local.spec, local.files, local.built
    settings = ws.config.lambda_settings(name, stage)
    runtime = LAMBDA_RUNTIMES.get(settings["runtime"])
    interpreter = choose_interpreter("lambda")
    warnings = _version_warning(interpreter, runtime.python, settings["runtime"], "lambda") if runtime else []
    machine = MACHINES.get(settings["architecture"], settings["architecture"])
    if machine != platform.machine():
        warnings.append(
            f"the function runs on {settings['architecture']} but this machine is {platform.machine()}:"
            " compiled dependencies in its layers won't import here"
        )
    for warning in warnings:
        on_warning(warning)
    folder = tempfile.mkdtemp(prefix="pkg-invoke-")
    try:
        task, opt = os.path.join(folder, "task"), os.path.join(folder, "opt")
        with zipfile.ZipFile(files[artifact]) as archive:
            extract_checked(archive, task, artifact)
        os.makedirs(opt)
        for layer in spec.uses:
            with zipfile.ZipFile(files[layer]) as archive:
                extract_checked(archive, opt, layer)  # a later layer's file replaces an earlier one's, as in /opt
        event_path = os.path.join(folder, "event.json")
        with open(event_path, "w", encoding="utf-8") as stream:
            json.dump(event, stream)
        region = _region()
        run = _Run(
            target=f"lambda/{name}",
            spec={
                "mode": "lambda",
                "code": task,
                "paths": [os.path.join(opt, "python", "lib", "{python}", "site-packages"), os.path.join(opt, "python")],
                "provided": sorted(LAMBDA_PROVIDED_DISTRIBUTIONS),
                "handler": spec.meta.get("handler", f"{name}.handler"),
                "event_path": event_path,
                "function_name": name,
                "memory": settings["memory"],
                "region": region,
                "account": LOCAL_ACCOUNT,
            },
            environment={
                **os.environ,
                **settings.get("environment", {}),
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings["memory"]),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{settings['runtime']}",
                "AWS_REGION": region,
                "LAMBDA_TASK_ROOT": task,
            },
            seconds=timeout or settings["timeout"],
            renames={task: "/var/task", opt: "/opt"},
        )
        outcome, duration_ms = _run_bootstrap(interpreter, folder, run, on_output, on_output)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return InvokeResult(run.target, outcome["result"], duration_ms, interpreter, built, warnings)


def _unpack_wheel(path: str, target: str, label: str) -> None:
    """Install a wheel the way pip --target lays it out: purelib/platlib data at the root."""
    with zipfile.ZipFile(path) as archive:
        check_members(label, archive.namelist())
        for member in archive.infolist():
            name = _WHEEL_DATA_LIB.sub("", member.filename)
            if member.is_dir() or re.match(r"[^/]+\.data/", name):
                continue  # scripts, headers and data files are not importable code
            destination = os.path.join(target, *name.split("/"))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            with archive.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)


def _unpack_job_artifact(path: str, target: str, label: str) -> None:
    """internal_libs wheel, wheelhouse of dependency wheels, or py-files zip -> importable under `target`.

    Every member name is checked first (zip-slip); errors name `label` (the artifact) and the wheel.
    """
    if path.endswith(".whl"):
        _unpack_wheel(path, target, label)
        return
    with zipfile.ZipFile(path) as archive:
        check_members(label, archive.namelist())
        wheels = [name for name in archive.namelist() if name.endswith(".whl") and "/" not in name]
        if not wheels:
            archive.extractall(target)
            return
        with tempfile.TemporaryDirectory() as scratch:
            for wheel in wheels:
                _unpack_wheel(archive.extract(wheel, scratch), target, f"{label}: {wheel}")


def invoke_glue_python_shell(
    ws: Workspace,
    name: str,
    args: list[str],
    stage: str | None = None,
    timeout: int | None = None,
    on_output: Callable[[str], None] = lambda line: None,
    on_stdout: Callable[[str], None] = lambda line: None,
    on_warning: Callable[[str], None] = lambda message: None,
    on_progress: Callable[[str], None] = lambda message: None,
) -> InvokeResult:
    """Run glue_python_shell/<name> from its built script, internal_libs wheel and dependency wheels.

    The script's stdout goes to `on_stdout`, its stderr to `on_output`. Its arguments are the job's
    default_arguments followed by `args`, as Glue passes DefaultArguments then the run's Arguments.
    """
    from packager.config import job_settings

    service = "glue_python_shell"
    artifact = str(ArtifactId.job(service, name))
    local = ensure_built(ws, artifact, on_progress, on_warning)
    spec, files, built = local.spec, local.files, local.built
    settings = job_settings(ws.config, service, name, stage)
    interpreter = choose_interpreter(service)
    python = settings.get("python_version", "3.9")
    warnings = _version_warning(interpreter, python, f"Glue Python shell {settings['glue_version']}", service)
    for warning in warnings:
        on_warning(warning)
    provided = set(GLUE_SHELL_PROVIDED_DISTRIBUTIONS)
    if settings.get("library_set") == "analytics":
        provided |= set(GLUE_SHELL_ANALYTICS_PINS)
    defaults = [item for key, value in settings.get("default_arguments", {}).items() for item in (key, value)]
    folder = tempfile.mkdtemp(prefix="pkg-invoke-")
    try:
        code, site = os.path.join(folder, "job"), os.path.join(folder, "site-packages")
        os.makedirs(code)
        os.makedirs(site)
        script = spec.meta.get("filename", f"{name}.py")
        shutil.copyfile(files[artifact], os.path.join(code, script))
        for used in spec.uses:
            _unpack_job_artifact(files[used], site, used)
        run = _Run(
            target=f"{service}/{name}",
            spec={
                "mode": "script",
                "code": code,
                "paths": [site],
                "provided": sorted(provided),
                "script": script,
                "args": [*defaults, *args],
            },
            environment={**os.environ, "AWS_REGION": _region()},
            seconds=timeout or int(settings.get("timeout", 60)) * 60,  # Glue's Timeout is in minutes
            renames={code: "/tmp/glue-job", site: "/glue/site-packages"},
            merge_stdout=False,
        )
        _, duration_ms = _run_bootstrap(interpreter, folder, run, on_output, on_stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return InvokeResult(run.target, None, duration_ms, interpreter, built, warnings)
