"""Run a Lambda handler, or a Glue Python shell script, as the service would; started with `python -I -S`.

This file is copied next to the extracted artifacts and run by the service's interpreter, which
may be any Python from 3.9 up: it imports nothing from pkg and only the standard library.
sys.path is the code folder, then the artifacts' folders, then the standard library; of the
interpreter's site-packages only the distributions the service itself provides (Lambda: boto3 and
its kin; Glue: the library set) and what they require are visible, so a dependency missing from
the artifacts fails here as it would in AWS.
"""

import decimal
import importlib
import importlib.machinery
import json
import os
import re
import runpy
import signal
import sys
import time
import traceback
import uuid

BOOTSTRAP = os.path.abspath(__file__)


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class RuntimeProvidedFinder:
    """Finds only the runtime-provided top-level packages in the interpreter's site-packages."""

    def __init__(self, site_dirs, distributions):
        from importlib import metadata

        self.metadata = metadata
        self.site_dirs = site_dirs
        self.distributions = self._closure(set(_normalise(name) for name in distributions))
        self.modules = set()
        for dist in self._dists(None):
            top_level = dist.read_text("top_level.txt")
            if top_level:
                self.modules.update(line.strip() for line in top_level.splitlines() if line.strip())
            else:
                for path in dist.files or ():
                    first = str(path).split("/", 1)[0]
                    if not first.endswith((".dist-info", ".egg-info", ".pth")) and first != "__pycache__":
                        self.modules.add(first[:-3] if first.endswith(".py") else first)

    def _closure(self, names):
        """`names` and every distribution they require (extras left out), as installed here."""
        context = self.metadata.DistributionFinder.Context(path=self.site_dirs)
        installed = {}
        for dist in self.metadata.MetadataPathFinder.find_distributions(context):
            installed.setdefault(_normalise(dist.metadata["Name"] or ""), dist)
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for requirement in (installed[name].requires or []) if name in installed else []:
                if "extra ==" not in requirement.replace('"', "").replace("'", ""):
                    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
                    if match:
                        todo.append(_normalise(match.group(0)))
        return seen

    def _dists(self, name):
        context = self.metadata.DistributionFinder.Context(path=self.site_dirs, name=name)
        for dist in self.metadata.MetadataPathFinder.find_distributions(context):
            if _normalise(dist.metadata["Name"] or "") in self.distributions:
                yield dist

    def find_spec(self, fullname, path=None, target=None):
        if path is None and fullname in self.modules:
            return importlib.machinery.PathFinder.find_spec(fullname, self.site_dirs)
        return None

    def find_distributions(self, context=None):
        name = getattr(context, "name", None)
        if name is not None and _normalise(name) not in self.distributions:
            return iter(())
        return self._dists(name)


class LambdaContext:
    """The context object of the Lambda Python runtime (the attributes handlers use)."""

    def __init__(self, spec):
        self.function_name = spec["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:%s:%s:function:%s" % (
            spec["region"],
            spec["account"],
            spec["function_name"],
        )
        self.memory_limit_in_mb = str(spec["memory"])  # a string on Lambda too (from the environment)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/%s" % spec["function_name"]
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + spec["timeout"]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Encoder(json.JSONEncoder):
    """Decimals become JSON numbers, as the Lambda runtime's marshaller does."""

    def default(self, value):
        if isinstance(value, decimal.Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return json.JSONEncoder.default(self, value)


def _user_traceback(error):
    """The traceback lines of the user's code: frames of this bootstrap, runpy and importlib are dropped."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename not in (BOOTSTRAP, runpy.__file__) and not frame.filename.startswith("<frozen ")
    ]
    return traceback.StackSummary.from_list(frames).format()


def _failure(error_type, message, stack):
    return {"ok": False, "errorType": error_type, "errorMessage": message, "stackTrace": stack}


def _print_failure(error, stack):
    sys.stderr.write("Traceback (most recent call last):\n" + "".join(stack))
    sys.stderr.write("".join(traceback.format_exception_only(type(error), error)))
    sys.stderr.flush()


def _set_path(spec):
    import site  # with -S, importing site adds nothing to sys.path; it only names the folders

    version = "python%d.%d" % sys.version_info[:2]
    paths = [path.replace("{python}", version) for path in spec["paths"]]
    sys.path[:0] = [spec["code"]] + paths
    site_dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    sys.meta_path.append(RuntimeProvidedFinder(site_dirs, spec["provided"]))


def _write_outcome(spec, outcome):
    sys.stdout.flush()
    sys.stderr.flush()
    with open(spec["result_path"], "w", encoding="utf-8") as stream:
        json.dump(outcome, stream)


def _arm_timeout(spec):
    """Stop the run when the handler outlives the function's timeout, as Lambda does."""

    def expire(signum, frame):
        message = "Task timed out after %.2f seconds" % spec["timeout"]
        _write_outcome(spec, _failure("Sandbox.Timedout", message, []))
        os._exit(0)

    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, spec["timeout"])


def run_script(spec):
    """Run the job script as __main__ with its arguments; the outcome as a JSON-able dict."""
    _set_path(spec)
    script = os.path.join(spec["code"], spec["script"])
    sys.argv = [script] + spec["args"]
    _arm_timeout(spec)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if isinstance(exit.code, str):
            sys.stderr.write(exit.code + "\n")
        if code:
            return _failure("SystemExit", "the script exited with code %d" % code, [])
    except Exception as error:
        stack = _user_traceback(error)
        _print_failure(error, stack)
        return _failure(type(error).__name__, str(error), stack)
    return {"ok": True}


def run(spec):
    """Import the handler, call it with the event, and return the outcome as a JSON-able dict."""
    _set_path(spec)
    with open(spec["event_path"], encoding="utf-8") as stream:
        event = json.load(stream)
    module_name, _, function_name = spec["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        stack = _user_traceback(error)
        _print_failure(error, stack)
        return _failure(
            "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, error), stack
        )
    handler = getattr(module, function_name, None)
    if not callable(handler):
        return _failure(
            "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (function_name, module_name), []
        )
    context = LambdaContext(spec)
    _arm_timeout(spec)
    try:
        result = handler(event, context)
    except Exception as error:
        stack = _user_traceback(error)
        _print_failure(error, stack)
        return _failure(type(error).__name__, str(error), stack)
    try:
        text = json.dumps(result, cls=_Encoder)
    except (TypeError, ValueError) as error:
        return _failure("Runtime.MarshalError", "Unable to marshal response: %s" % error, [])
    return {"ok": True, "result": json.loads(text), "request_id": context.aws_request_id}


def main():
    with open(sys.argv[1], encoding="utf-8") as stream:
        spec = json.load(stream)
    os.chdir(spec["code"])
    outcome = run_script(spec) if spec["mode"] == "script" else run(spec)
    if hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)
    _write_outcome(spec, outcome)


if __name__ == "__main__":
    main()
