"""A moto server on a free loopback port, wrapped to log every request and to inject faults.

Run as a program it serves until killed and prints its port on the first line of stdout:

    python tests/moto_server.py            # -> "PORT\n", then serves

The wrapper sits in front of moto's own WSGI app and adds three routes (the rest is moto):
- `GET /_pkg/calls` lists the requests seen since the last reset (`DELETE` also clears them), each as
  `{"operation": "CreateFunction", "method": "POST", "path": ..., "mutating": bool}`;
- `POST /_pkg/faults` takes a JSON list of faults `{"operation", "effect", "skip", "times"}`:
  `throttle` answers 429 TooManyRequestsException, `error` a non-retryable 400, `conflict` Lambda's
  409 ResourceConflictException (an update already in progress), `hang_after`
  performs the request then holds the response until `POST /_pkg/release` (to kill a client
  after AWS did the work but before it heard back; `GET /_pkg/held` lists what is being held);
  `async_slow` / `async_failed` (on CreateFunction, UpdateFunctionCode, UpdateFunctionConfiguration)
  make the change asynchronous as AWS's is: the next read of the function reports State Pending /
  LastUpdateStatus InProgress, the reads after it Active / Successful, or Failed with the fault's
  `reason` (an update that fails is not applied: "the function's previous code and configuration
  remain"); the next change of the function starts afresh;
  `denied` answers AccessDenied as IAM would for a principal without the permission (S3: 403
  `AccessDenied`; KMS and other JSON services: `AccessDeniedException`); a fault's `prefix` limits it
  to request paths starting with it (S3: `/bucket/key-prefix`), e.g. a read-only member of the shared
  cache is `{"operation": "PutObject", "effect": "denied", "prefix": "/bucket/pkg-cache/", "times": 10**6}`;
- `GET /_pkg/wait?operation=OP&count=N` answers once N requests of OP were seen (`&held=1`: once OP is
  being held), or `{"ok": false}` after `&timeout=SECONDS`: a test waits on an event, never on a clock;
- `POST /moto-api/reset` (moto's) also clears the log and the faults.

Where AWS refuses what moto accepts, the wrapper refuses it first, as AWS documents it:
- every Lambda, Glue, EMR and EMR Serverless request is checked against the botocore service model's
  constraints (pattern, length, range, enum, list/map size): a violation answers 400 ValidationException;
- a Lambda request body over 69,905,067 bytes answers 413 RequestEntityTooLargeException;
- functions carry a RevisionId, replaced by each update; an update carrying another one answers 412
  PreconditionFailedException (`install_lambda_revisions`).
Counting on the server side keeps the tool free of any test-only code path.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

# Lambda's REST routes -> operation names (the ones pkg uses, and their neighbours).
_LAMBDA_ROUTES = [
    ("POST", r"/2015-03-31/functions/?", "CreateFunction"),
    ("GET", r"/2015-03-31/functions/?", "ListFunctions"),
    ("GET", r"/2015-03-31/functions/[^/]+", "GetFunction"),
    ("DELETE", r"/2015-03-31/functions/[^/]+", "DeleteFunction"),
    ("PUT", r"/2015-03-31/functions/[^/]+/code", "UpdateFunctionCode"),
    ("PUT", r"/2015-03-31/functions/[^/]+/configuration", "UpdateFunctionConfiguration"),
    ("GET", r"/2015-03-31/functions/[^/]+/configuration", "GetFunctionConfiguration"),
    ("POST", r"/2018-10-31/layers/[^/]+/versions", "PublishLayerVersion"),
    ("GET", r"/2018-10-31/layers/[^/]+/versions", "ListLayerVersions"),
    ("GET", r"/2018-10-31/layers/[^/]+/versions/\d+", "GetLayerVersion"),
    ("DELETE", r"/2018-10-31/layers/[^/]+/versions/\d+", "DeleteLayerVersion"),
    ("GET", r"/2018-10-31/layers/?", "ListLayers"),
    ("POST", r"/2017-03-31/tags/.+", "TagResource"),
    ("DELETE", r"/2017-03-31/tags/.+", "UntagResource"),
    ("GET", r"/2017-03-31/tags/.+", "ListTags"),
    # Versions and aliases (packager/deploy/versions.py, pkg rollback).
    ("POST", r"/2015-03-31/functions/[^/]+/versions/?", "PublishVersion"),
    ("GET", r"/2015-03-31/functions/[^/]+/versions/?", "ListVersionsByFunction"),
    ("POST", r"/2015-03-31/functions/[^/]+/aliases/?", "CreateAlias"),
    ("GET", r"/2015-03-31/functions/[^/]+/aliases/?", "ListAliases"),
    ("GET", r"/2015-03-31/functions/[^/]+/aliases/[^/]+", "GetAlias"),
    ("PUT", r"/2015-03-31/functions/[^/]+/aliases/[^/]+", "UpdateAlias"),
    ("DELETE", r"/2015-03-31/functions/[^/]+/aliases/[^/]+", "DeleteAlias"),
]
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Filter")  # BatchGetJobs, FilterLogEvents: reads
_PURE_OPERATIONS = ("Sign", "Verify")  # KMS computes with a key and changes nothing


def operation_of(method: str, path: str, action: str | None) -> str:
    """A readable operation name for one request (query-protocol Action, Lambda route, or S3 verb)."""
    if action:
        return action
    for route_method, pattern, name in _LAMBDA_ROUTES + _JOB_ROUTES:
        if method == route_method and re.fullmatch(pattern, path):
            return name
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} {path}"
    )


def _bookkeeping(path: str) -> bool:
    """A stage lock (pkg-locks/, test_stage_lock.py) or release object (pkg-releases/, test_releases.py):
    not what the tests that count a stage's calls, or aim a fault at PutObject, mean."""
    return any(f"{sep}{prefix}/" in path for sep in ("/", "=") for prefix in ("pkg-locks", "pkg-releases"))


def is_mutating(operation: str, method: str) -> bool:
    if operation.startswith(_READ_PREFIXES) or operation in _PURE_OPERATIONS:
        return False
    if " " in operation:  # unknown route: judge by the HTTP verb
        return method not in ("GET", "HEAD")
    return True


@dataclass
class Fault:
    operation: str
    effect: str  # throttle | error | hang_after
    skip: int = 0
    times: int = 1
    seen: int = 0
    reason: str = ""  # async_failed: the StateReason / LastUpdateStatusReason AWS gives
    prefix: str = ""  # only requests whose path starts with this (S3: /bucket/key)

    def applies(self) -> bool:
        self.seen += 1
        return self.skip < self.seen <= self.skip + self.times


@dataclass
class ServerState:
    calls: list[dict] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)  # notified under `lock` when calls or held grow
    release: threading.Event = field(default_factory=threading.Event)
    held: list[str] = field(default_factory=list)  # operations performed whose answer is being held
    statuses: dict[str, FunctionStatus] = field(default_factory=dict)  # function name -> asynchronous change

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def wait(self, operation: str, count: int, held: bool, timeout: float) -> bool:
        """Block until `count` requests of `operation` were seen (held: until one is being held)."""

        def seen() -> bool:
            if held:
                return operation in self.held
            return sum(call["operation"] == operation for call in self.calls) >= count

        with self.lock:
            return self.changed.wait_for(seen, timeout=timeout)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.held.clear()
            self.statuses.clear()
            self.release.set()
            self.release = threading.Event()


def _json_response(start_response, status: str, document, headers=()):
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), *headers])
    return [body]


def make_app(moto_app, state: ServerState):
    """moto's WSGI app behind the request log and the fault injector."""

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if path == "/_pkg/calls":
            with state.lock:
                calls = list(state.calls)
                if method == "DELETE":
                    state.calls.clear()
            return _json_response(start_response, "200 OK", calls)
        if path == "/_pkg/faults":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            faults = json.loads(environ["wsgi.input"].read(length) or b"[]")
            with state.lock:
                state.faults.extend(Fault(**fault) for fault in faults)
            return _json_response(start_response, "200 OK", {"ok": True})
        if path == "/_pkg/held":
            with state.lock:
                return _json_response(start_response, "200 OK", list(state.held))
        if path == "/_pkg/wait":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            ok = state.wait(
                query["operation"][0],
                count=int(query.get("count", ["1"])[0]),
                held=query.get("held", ["0"])[0] == "1",
                timeout=float(query.get("timeout", ["60"])[0]),
            )
            return _json_response(start_response, "200 OK", {"ok": ok})
        if path == "/_pkg/release":
            state.release.set()
            return _json_response(start_response, "200 OK", {"ok": True})
        if path == "/moto-api/reset":
            state.reset()

        action = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if path.startswith(_LAMBDA_PREFIXES) and length > LAMBDA_REQUEST_MAX_BYTES:
            left = length  # read it all: a client cut off mid-send retries
            while left > 0:
                chunk = environ["wsgi.input"].read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            with state.lock:
                state.calls.append({"operation": operation_of(method, path, None), "method": method, "path": path,
                                    "mutating": False, "refused": True})  # fmt: skip
                state.changed.notify_all()
            return _json_response(
                start_response,
                "413 Request Entity Too Large",
                {"message": f"Request must be smaller than {LAMBDA_REQUEST_MAX_BYTES} bytes", "Type": "User"},
                [("x-amzn-ErrorType", "RequestEntityTooLargeException")],
            )
        body = b""
        service = service_of(path, environ)
        form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        if length and (service or form):
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        if action is None and form:
            action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
        operation = operation_of(method, path, action or json_target(environ))
        violations = model_violations(service, operation, path, body)
        if violations:
            with state.lock:
                state.calls.append(
                    {"operation": operation, "method": method, "path": path, "mutating": False, "refused": True}
                )
                state.changed.notify_all()
            message = f"{len(violations)} validation error{'s' if len(violations) > 1 else ''} detected: "
            return _json_response(
                start_response,
                "400 Bad Request",
                {"message": message + "; ".join(violations), "__type": "ValidationException", "Type": "User"},
                [("x-amzn-ErrorType", "ValidationException")],
            )
        if not path.startswith("/moto-api"):
            with state.lock:
                mutating = is_mutating(operation, method)
                call = {"operation": operation, "method": method, "path": path, "mutating": mutating}
                if _bookkeeping("/" + urllib.parse.unquote(environ.get("QUERY_STRING", ""))):
                    call["bookkeeping"] = True  # a listing of lock or release objects (prefix=pkg-releases/…)
                for header in ("If-None-Match", "If-Match"):  # S3's conditional writes (the stage lock)
                    value = environ.get("HTTP_" + header.upper().replace("-", "_"))
                    if value:
                        call[header] = value
                state.calls.append(call)
                state.changed.notify_all()
                # A stage lock object (pkg-locks/, test_stage_lock.py) is not what a fault on PutObject aims at.
                aimed = not _bookkeeping(path)
                fault = next(
                    (
                        f
                        for f in state.faults
                        if aimed and f.operation == operation and path.startswith(f.prefix) and f.applies()
                    ),
                    None,
                )
                release = state.release
        else:
            fault = None
        if fault and fault.effect == "throttle":
            return _json_response(
                start_response,
                "429 Too Many Requests",
                {"message": "Rate exceeded", "Type": "User"},
                [("x-amzn-ErrorType", "TooManyRequestsException")],
            )
        if fault and fault.effect == "error":
            return _json_response(
                start_response,
                "400 Bad Request",
                {"message": f"injected failure of {operation}", "Type": "User"},
                [("x-amzn-ErrorType", "InvalidParameterValueException")],
            )
        if fault and fault.effect == "denied":
            return denied_response(start_response, operation, json_target(environ) is not None)
        if fault and fault.effect == "conflict":
            return _json_response(
                start_response,
                "409 Conflict",
                {"message": "The operation cannot be performed at this time. An update is in progress", "Type": "User"},
                [("x-amzn-ErrorType", "ResourceConflictException")],
            )
        asynchronous = fault is not None and fault.effect in ASYNC_EFFECTS
        function_call = service == "lambda" and operation in _FUNCTION_READS + _FUNCTION_CHANGES
        if function_call and (asynchronous or state.statuses):
            return function_status_app(moto_app, state, environ, start_response, operation, body, fault)
        result = moto_app(environ, start_response)
        if fault and fault.effect == "hang_after":
            body = b"".join(result)  # the work is done on the server side
            with state.lock:
                state.held.append(operation)
                state.changed.notify_all()
            release.wait(timeout=120)
            return [body]
        return result

    return app


def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve moto behind the wrapper; prints the bound port, then serves until killed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    install_glue_update_job()
    install_operations_reads()
    install_lambda_revisions()
    install_kms_signing()
    moto_app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, make_app(moto_app, ServerState()), threaded=True)
    os.environ.setdefault("MOTO_PORT", str(server.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(server.port, flush=True)
    server.serve_forever()


class MotoServer:
    """A wrapped moto server in a subprocess, and the client side of its extra routes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError("the moto server did not start")
        self.port = int(line)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _request(self, method: str, path: str, document=None, timeout: float = 60):
        data = json.dumps(document).encode() if document is not None else None
        request = urllib.request.Request(self.endpoint + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def reset(self) -> None:
        self._request("POST", "/moto-api/reset", {})

    def reset_calls(self) -> None:
        """Forget the requests seen so far (e.g. a test's own setup calls)."""
        self._request("DELETE", "/_pkg/calls")

    def calls(self, locks: bool = False) -> list[dict]:
        """The requests seen; those on a stage lock or release object (`_bookkeeping`) only with `locks`."""
        calls = self._request("GET", "/_pkg/calls")
        return calls if locks else [c for c in calls if not (_bookkeeping(c["path"]) or c.get("bookkeeping"))]

    def mutating_calls(self) -> list[str]:
        return [call["operation"] for call in self.calls() if call["mutating"]]

    def inject(
        self, operation: str, effect: str, skip: int = 0, times: int = 1, reason: str = "", prefix: str = ""
    ) -> None:
        fault = {"operation": operation, "effect": effect, "skip": skip, "times": times, "reason": reason}
        if prefix:
            fault["prefix"] = prefix
        self._request("POST", "/_pkg/faults", [fault])

    def release(self) -> None:
        self._request("POST", "/_pkg/release", {})

    def _wait(self, operation: str, timeout: float, **query) -> bool:
        """The server's answer to `GET /_pkg/wait`: True once the awaited request was seen."""
        encoded = urllib.parse.urlencode({"operation": operation, "timeout": timeout, **query})
        return self._request("GET", f"/_pkg/wait?{encoded}", timeout=timeout + 30)["ok"]

    def wait_held(self, operation: str, timeout: float = 60) -> None:
        """Block until a `hang_after` fault performed `operation` and is holding its answer."""
        if not self._wait(operation, timeout, held=1):
            raise TimeoutError(f"no held {operation} within {timeout} s")

    def wait_for(self, operation: str, count: int = 1, timeout: float = 60) -> None:
        """Block until the server has seen `count` requests of `operation`."""
        if not self._wait(operation, timeout, count=count):
            raise TimeoutError(f"no {operation} request within {timeout} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -------------------------------------------------------------------------------------------------
# Glue and EMR (issue 6): operation names for JSON-protocol and EMR Serverless requests, and Glue
# UpdateJob, which moto lacks (HTTP 500), implemented inside this server after AWS's documentation.
# -------------------------------------------------------------------------------------------------

# EMR Serverless is a REST API: routes -> operation names.
_JOB_ROUTES = [
    ("POST", r"/applications/?", "CreateApplication"),
    ("GET", r"/applications/?", "ListApplications"),
    ("GET", r"/applications/[^/]+", "GetApplication"),
    ("POST", r"/applications/[^/]+/start", "StartApplication"),
    ("POST", r"/applications/[^/]+/jobruns", "StartJobRun"),
    ("GET", r"/applications/[^/]+/jobruns", "ListJobRuns"),
    ("GET", r"/applications/[^/]+/jobruns/[^/]+", "GetJobRun"),
    ("DELETE", r"/applications/[^/]+/jobruns/[^/]+", "CancelJobRun"),
]


def json_target(environ) -> str | None:
    """The operation of a JSON-protocol request (Glue, EMR): `X-Amz-Target: AWSGlue.UpdateJob` -> UpdateJob."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    return target.rsplit(".", 1)[-1] if target else None


def glue_default_timeout(glue_version: str | None) -> int:
    """AWS's Timeout for a job created or updated without one: 2,880 minutes up to Glue 4.0, 480 from 5.0."""
    try:
        major = float(glue_version or "0")
    except ValueError:
        major = 0
    return 480 if major >= 5 else 2880


def install_glue_update_job() -> None:
    """Teach moto's Glue backend UpdateJob, as AWS documents it.

    "UpdateJob updates an existing job definition. The previous job definition is completely
    overwritten by this information": every field of JobUpdate replaces the old one and a field
    left out is reset to its default (not kept). The name, creation time, tags and runs stay.
    A missing job is EntityNotFoundException. CreateJob of an existing name is AlreadyExistsException.
    A job created or updated without a Timeout gets AWS's default (glue_default_timeout).
    JobRunQueuingEnabled, which moto drops, is kept and returned by GetJob like the other members.
    """
    from moto.core.responses import ActionResult
    from moto.glue.exceptions import AlreadyExistsException
    from moto.glue.models import FakeJob
    from moto.glue.responses import GlueResponse
    from moto.core.utils import utcnow

    def update_job(self) -> ActionResult:
        name = self._get_param("JobName")
        update = self._get_param("JobUpdate") or {}
        old = self.glue_backend.get_job(name)  # raises EntityNotFoundException
        job = FakeJob(
            name,
            update.get("Role"),
            update.get("Command"),
            update.get("Description"),
            update.get("LogUri"),
            update.get("ExecutionProperty"),
            update.get("DefaultArguments"),
            update.get("NonOverridableArguments"),
            update.get("Connections"),
            update.get("MaxRetries"),
            update.get("AllocatedCapacity"),
            update.get("Timeout") or glue_default_timeout(update.get("GlueVersion")),
            update.get("MaxCapacity"),
            update.get("SecurityConfiguration"),
            {},  # tags are not part of a job definition: TagResource changes them
            update.get("NotificationProperty"),
            update.get("GlueVersion"),
            update.get("NumberOfWorkers"),
            update.get("WorkerType"),
            update.get("CodeGenConfigurationNodes"),
            update.get("ExecutionClass"),
            update.get("SourceControlDetails"),
            backend=self.glue_backend,
        )
        job.job_run_queuing_enabled = update.get("JobRunQueuingEnabled")
        job.created_on = old.created_on
        job.last_modified_on = utcnow()
        job.job_runs = old.job_runs
        self.glue_backend.jobs[name] = job
        return ActionResult({"JobName": name})

    create_job = GlueResponse.create_job

    def create_job_once(self):
        """CreateJob of a name that exists: AlreadyExistsException, as AWS answers (moto replaces the job)."""
        name = self._get_param("Name")
        if name in self.glue_backend.jobs:
            raise AlreadyExistsException("Job")
        answer = create_job(self)
        if self._get_param("Timeout") is None:
            self.glue_backend.jobs[name].timeout = glue_default_timeout(self._get_param("GlueVersion"))
        self.glue_backend.jobs[name].job_run_queuing_enabled = self._get_param("JobRunQueuingEnabled")
        return answer

    as_dict = FakeJob.as_dict

    def as_dict_with_queuing(self) -> dict:
        """GetJob's Job with JobRunQueuingEnabled, which moto drops (returned as set, absent when never set)."""
        document = as_dict(self)
        queuing = getattr(self, "job_run_queuing_enabled", None)
        if queuing is not None:
            document["JobRunQueuingEnabled"] = queuing
        return document

    FakeJob.as_dict = as_dict_with_queuing

    GlueResponse.update_job = update_job
    GlueResponse.create_job = create_job_once


# -------------------------------------------------------------------------------------------------
# Lambda's asynchronous changes (issue 13): moto's functions are Active and Successful at once; AWS's
# go through Pending / InProgress and may end Failed. Faults `async_slow` / `async_failed` replay that.
# -------------------------------------------------------------------------------------------------

ASYNC_EFFECTS = ("async_slow", "async_failed")
_FUNCTION_READS = ("GetFunction", "GetFunctionConfiguration")
_FUNCTION_CHANGES = ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration")


@dataclass
class FunctionStatus:
    """An asynchronous change of one function: reads report `pending_reads` times in progress, then `final`."""

    create: bool  # CreateFunction: State Pending -> Active/Failed; else LastUpdateStatus InProgress -> ...
    failed: bool
    reason: str
    pending_reads: int = 1
    revised: bool = False  # the function got its new RevisionId as the change ended (install_lambda_revisions)

    def overlay(self, configuration: dict, read: bool) -> None:
        """Write this change's status into a function configuration AWS would answer."""
        if self.create:
            keys, pending, done = ("State", "StateReason", "StateReasonCode"), "Pending", "Active"
        else:
            keys = ("LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode")
            pending, done = "InProgress", "Successful"
        if not read or self.pending_reads > 0:
            self.pending_reads -= read
            configuration[keys[0]] = pending
            configuration[keys[1]] = "The function is being created." if self.create else "The update is in progress."
            configuration[keys[2]] = "Creating" if self.create else "Updating"
            return
        configuration[keys[0]] = "Failed" if self.failed else done
        if self.failed:
            configuration[keys[1]] = self.reason or "injected asynchronous failure"
            configuration[keys[2]] = "InternalError"
        else:
            configuration.pop(keys[1], None)
            configuration.pop(keys[2], None)


def _function_name(path: str, body: bytes, operation: str) -> str:
    if operation == "CreateFunction":
        return json.loads(body or b"{}").get("FunctionName", "")
    name = urllib.parse.unquote(path.split("/")[3])
    return name.split(":")[6] if name.startswith("arn:") else name


def _call(moto_app, environ) -> tuple[str, list, bytes]:
    """moto's answer to one request, held back so it can be rewritten."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=headers)

    body = b"".join(moto_app(environ, start_response))
    return answer["status"], answer["headers"], body


def function_status_app(moto_app, state: ServerState, environ, start_response, operation, body, fault):
    """A function read or change, with the asynchronous status of its last change written in."""
    name = _function_name(environ.get("PATH_INFO", ""), body, operation)
    asynchronous = fault is not None and fault.effect in ASYNC_EFFECTS
    if operation in _FUNCTION_CHANGES:
        with state.lock:
            state.statuses.pop(name, None)  # a new change starts afresh
    failed_update = asynchronous and fault.effect == "async_failed" and operation != "CreateFunction"
    if failed_update:
        # AWS keeps the previous code and configuration: answer with them, change nothing.
        read = dict(environ, REQUEST_METHOD="GET", CONTENT_LENGTH="0", QUERY_STRING="")
        read["PATH_INFO"] = f"/2015-03-31/functions/{urllib.parse.quote(name)}/configuration"
        read["REQUEST_URI"] = read["RAW_URI"] = read["PATH_INFO"]
        read["wsgi.input"] = io.BytesIO(b"")
        status, headers, answer = _call(moto_app, read)
    else:
        status, headers, answer = _call(moto_app, environ)
    if asynchronous and status.startswith("2"):
        with state.lock:
            failed = fault.effect == "async_failed"
            state.statuses[name] = FunctionStatus(operation == "CreateFunction", failed, fault.reason)
    with state.lock:
        change = state.statuses.get(name)
        if change is not None and status.startswith("2"):
            document = json.loads(answer)
            configuration = document.get("Configuration", document) if operation == "GetFunction" else document
            change.overlay(configuration, read=operation in _FUNCTION_READS)
            revise_when_ended(change, environ, name, configuration)
            answer = json.dumps(document).encode()
    headers = [(key, value) for key, value in headers if key.lower() != "content-length"]
    start_response(status, [*headers, ("Content-Length", str(len(answer)))])
    return [answer]


# -------------------------------------------------------------------------------------------------
# Lambda's RevisionId (issue 12): moto's functions have none. AWS gives each function one, replaces it
# with every change of its code or configuration, and refuses an update that carries another one.
# -------------------------------------------------------------------------------------------------

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API"
    " to retrieve the latest Revision Id"
)


_revise = None  # set by install_lambda_revisions: (region, function name) -> its new RevisionId


def revise_when_ended(change: FunctionStatus, environ, name: str, configuration: dict) -> None:
    """AWS replaces a function's RevisionId again when an asynchronous update ends (aws/aws-sdk#377):
    the first read that reports it Successful carries a new one, which the next update must send."""
    ended = not change.create and not change.failed and configuration.get("LastUpdateStatus") == "Successful"
    if _revise is None or change.revised or not ended:
        return
    scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    revision = _revise(scope.group(1) if scope else "us-east-1", name)
    if revision is not None:
        change.revised = True
        configuration["RevisionId"] = revision


def install_lambda_revisions() -> None:
    """Teach moto's functions a RevisionId, as AWS documents it.

    Every configuration AWS answers with (GetFunction, CreateFunction, Update*, ListFunctions) carries
    the function's RevisionId; UpdateFunctionCode and UpdateFunctionConfiguration give it a new one, and
    "RevisionId: update the function only if the revision ID matches the ID that's specified" — if not,
    412 PreconditionFailedException and nothing changes.
    """
    import uuid

    from moto.awslambda.exceptions import PreconditionFailedException
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    get_configuration = LambdaFunction.get_configuration

    def revision_of(function) -> str:
        if "pkg_revision_id" not in function.__dict__:
            function.pkg_revision_id = str(uuid.uuid4())
        return function.pkg_revision_id

    def configuration_with_revision(self, *args, **kwargs):
        return {**get_configuration(self, *args, **kwargs), "RevisionId": revision_of(self)}

    def checked(update):
        def checked_update(self, function_name, qualifier, body):
            function = self.get_function(function_name, qualifier)
            wanted = (body or {}).get("RevisionId")
            if wanted and wanted != revision_of(function):
                raise PreconditionFailedException(REVISION_MISMATCH)
            before = revision_of(function)
            function.pkg_revision_id = str(uuid.uuid4())  # the answer of a change carries its new revision
            try:
                return update(self, function_name, qualifier, body)
            except Exception:
                function.pkg_revision_id = before  # a refused update changes nothing, its revision included
                raise

        return checked_update

    def revise(region: str, name: str) -> str | None:
        """Give a function a new RevisionId (its asynchronous change just ended); None if it is gone."""
        from moto.awslambda.models import lambda_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        try:
            function = lambda_backends[DEFAULT_ACCOUNT_ID][region].get_function(name)
        except Exception:  # deleted meanwhile
            return None
        function.pkg_revision_id = str(uuid.uuid4())
        return function.pkg_revision_id

    global _revise
    _revise = revise
    LambdaFunction.get_configuration = configuration_with_revision
    LambdaBackend.update_function_code = checked(LambdaBackend.update_function_code)
    LambdaBackend.update_function_configuration = checked(LambdaBackend.update_function_configuration)


# -------------------------------------------------------------------------------------------------
# AWS's input constraints (issue 13), from the botocore service models: what AWS checks server-side
# and moto mostly does not. botocore's client checks only types and required members.
# -------------------------------------------------------------------------------------------------

# "Request must be smaller than 69905067 bytes for the InvokeFunction/CreateFunction/... operation".
LAMBDA_REQUEST_MAX_BYTES = 69_905_067
_LAMBDA_PREFIXES = ("/2015-03-31/", "/2018-10-31/", "/2017-03-31/")
_MODEL_SERVICES = {"lambda", "glue", "emr-serverless", "emr"}


def service_of(path: str, environ) -> str | None:
    """The service a request goes to, among those whose constraints are checked."""
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    if target.startswith("AWSGlue."):
        return "glue"
    if target.startswith("ElasticMapReduce."):
        return "emr"
    if path.startswith(_LAMBDA_PREFIXES):
        return "lambda"
    if path.startswith("/applications"):
        return "emr-serverless"
    return None


_models: dict = {}


def _operation_model(service: str, operation: str):
    if service not in _models:
        import botocore.session

        _models[service] = botocore.session.Session().get_service_model(service)
    model = _models[service]
    return model.operation_model(operation) if operation in model.operation_names else None


def _uri_params(template: str, path: str) -> dict:
    """The members a REST request carries in its path: `/layers/{LayerName}/versions` against the path."""
    def group(match: re.Match) -> str:
        return f"(?P<{match.group(1)}>{'.+' if match.group(2) else '[^/]+'})"

    pattern = re.sub(r"\\\{(\w+)(\\\+)?\\\}", group, re.escape(template.split("?")[0]))
    match = re.fullmatch(pattern + "/?", path)
    return {name: urllib.parse.unquote(value) for name, value in (match.groupdict() if match else {}).items()}


def _pattern(text: str):
    try:
        return re.compile(text)
    except re.error:  # Java-only syntax (surrogate ranges): AWS checks it, this server can't
        return None


def _broken(value, where: str, constraint: str) -> str:
    return f"Value '{value}' at '{where}' failed to satisfy constraint: Member must {constraint}"


def _outside(size: int, meta: dict) -> bool:
    return size < meta.get("min", 0) or size > meta.get("max", size)


def shape_violations(shape, value, where: str) -> list[str]:
    """Where `value` breaks its shape's constraints, in AWS's words (recursing into structures, lists, maps)."""
    meta = shape.metadata
    bounds = f"{meta.get('min', 0)} and {meta.get('max')}"
    found = []
    kind = shape.type_name
    if kind == "string" and isinstance(value, str):
        if "enum" in meta and value not in meta["enum"]:
            found.append(_broken(value, where, f"satisfy enum value set: {meta['enum']}"))
        if _outside(len(value), meta):
            found.append(_broken(value, where, f"have length between {bounds}"))
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            found.append(_broken(value, where, f"satisfy regular expression pattern: {meta['pattern']}"))
    elif kind in ("integer", "long") and isinstance(value, int):
        if value < meta.get("min", value) or value > meta.get("max", value):
            found.append(_broken(value, where, f"be between {meta.get('min')} and {meta.get('max')}"))
    elif kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                found += shape_violations(member, value[name], f"{where}.{name}" if where else name)
    elif kind == "list" and isinstance(value, list):
        if _outside(len(value), meta):
            found.append(_broken("[...]", where, f"have between {bounds} items"))
        for index, item in enumerate(value):
            found += shape_violations(shape.member, item, f"{where}.{index + 1}")
    elif kind == "map" and isinstance(value, dict):
        if _outside(len(value), meta):
            found.append(_broken("{...}", where, f"have between {bounds} entries"))
        for key, item in value.items():
            found += shape_violations(shape.key, key, f"{where}.key")
            found += shape_violations(shape.value, item, f"{where}.{key}")
    return found


def model_violations(service: str | None, operation: str, path: str, body: bytes) -> list[str]:
    """Every constraint of the service model a request breaks (path members and JSON body)."""
    if service not in _MODEL_SERVICES:
        return []
    model = _operation_model(service, operation)
    if model is None or model.input_shape is None:
        return []
    try:
        params = json.loads(body) if body.strip() else {}
    except ValueError:
        return []
    if not isinstance(params, dict):
        return []
    params.update(_uri_params(model.http.get("requestUri", ""), path))
    return shape_violations(model.input_shape, params, "")


# -------------------------------------------------------------------------------------------------
# pkg status / pkg logs (issue 15): the read calls where moto answers otherwise than AWS.
# -------------------------------------------------------------------------------------------------


def install_operations_reads() -> None:
    """Teach moto two reads as AWS answers them.

    - Glue GetJobRuns lists a job's runs newest first (moto: in start order), so MaxResults=1 is the newest.
    - Logs FilterLogEvents takes `logStreamNamePrefix`: "Filters the results to include only events from
      log streams that have names starting with this prefix" (moto ignores it and searches every stream).
    - An EMR Serverless job run's `createdAt` is "the date and time when the job run was created" (moto: midnight).
    """
    from moto.core.utils import utcnow
    from moto.emrserverless.models import JobRun
    from moto.glue.models import FakeJob
    from moto.logs.responses import LogsResponse

    job_run_init = JobRun.__init__

    def created_now(self, *args, **kwargs):
        job_run_init(self, *args, **kwargs)
        self.created_at = self.updated_at = utcnow()

    job_runs = FakeJob.get_job_runs

    def newest_first(self):
        return list(reversed(job_runs(self)))

    def filter_log_events(self) -> str:
        group_name = self._get_param("logGroupName")
        names = self._get_param("logStreamNames", [])
        prefix = self._get_param("logStreamNamePrefix")
        group = self.logs_backend.groups.get(group_name)
        if prefix and group is not None:
            names = [name for name in group.streams if name.startswith(prefix)]
            if not names:
                return json.dumps({"events": [], "searchedLogStreams": []})
        events, next_token, searched = self.logs_backend.filter_log_events(
            group_name,
            names,
            self._get_param("startTime"),
            self._get_param("endTime"),
            self._get_param("limit"),
            self._get_param("nextToken"),
            self._get_param("filterPattern"),
            self._get_param("interleaved", False),
        )
        return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

    FakeJob.get_job_runs = newest_first
    JobRun.__init__ = created_now
    LogsResponse.filter_log_events = filter_log_events


# -------------------------------------------------------------------------------------------------
# KMS signing (issue 11): moto signs with real keys, but RSASSA-PSS with the longest salt instead of
# the digest-long one KMS uses, ignores MessageType DIGEST (it hashes the digest again), answers an
# invalid signature with SignatureValid false and GetPublicKey without KeySpec. Sign, Verify and
# GetPublicKey are redone here with moto's keys, after the KMS API reference.
# -------------------------------------------------------------------------------------------------

KMS_RAW_MESSAGE_MAX_BYTES = 4096  # "Message … up to 4096 bytes"; larger messages are signed as a digest


def denied_response(start_response, operation: str, json_protocol: bool):
    """What AWS answers a principal whose policy does not allow `operation`."""
    message = f"User: arn:aws:iam::123456789012:user/test is not authorized to perform: {operation}"
    if json_protocol:
        return _json_response(
            start_response,
            "400 Bad Request",
            {"__type": "AccessDeniedException", "message": message},
            [("x-amzn-ErrorType", "AccessDeniedException")],
        )
    body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}"
    body += "</Message></Error>"
    start_response("403 Forbidden", [("Content-Type", "application/xml")])
    return [body.encode()]


def kms_signature_scheme(algorithm: str):
    """(hash, padding or None for ECDSA) of a KMS SigningAlgorithmSpec, as the KMS developer guide gives them."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    hash_algorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
    if algorithm.startswith("RSASSA_PSS"):
        # "PSS padding using SHA-256 for both the message digest and the MGF1 … along with a 256-bit salt"
        return hash_algorithm, padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
    if algorithm.startswith("RSASSA_PKCS1"):
        return hash_algorithm, padding.PKCS1v15()
    return hash_algorithm, None


def install_kms_signing() -> None:
    """Sign, Verify and GetPublicKey as AWS documents them, over moto's key material."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    from moto.core.exceptions import JsonRESTError
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    def signing_key(self, algorithm: str):
        key = self.kms_backend.describe_key(self._get_param("KeyId"))  # NotFoundException
        if key.key_usage != "SIGN_VERIFY":
            usage = f"{key.arn} key usage is {key.key_usage} which is not valid for Sign."
            raise JsonRESTError("InvalidKeyUsageException", usage)
        if algorithm not in key.signing_algorithms:
            raise ValidationException(
                f"1 validation error detected: Value '{algorithm}' at 'SigningAlgorithm' failed to satisfy"
                f" constraint: Member must satisfy enum value set: {key.signing_algorithms}"
            )
        return key

    def digest_of(self, hash_algorithm) -> bytes:
        from cryptography.hazmat.primitives import hashes

        message = self._get_param("Message") or b""
        if isinstance(message, str):
            message = message.encode()
        if not 1 <= len(message) <= KMS_RAW_MESSAGE_MAX_BYTES:
            raise ValidationException(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have"
                f" length between 1 and {KMS_RAW_MESSAGE_MAX_BYTES}"
            )
        if (self._get_param("MessageType") or "RAW") == "DIGEST":
            if len(message) != hash_algorithm.digest_size:
                algorithm = self._get_param("SigningAlgorithm")
                raise ValidationException(f"Digest is invalid length for algorithm {algorithm}")
            return message
        hasher = hashes.Hash(hash_algorithm)
        hasher.update(message)
        return hasher.finalize()

    def sign(self) -> str:
        algorithm = self._get_param("SigningAlgorithm") or ""
        key = signing_key(self, algorithm)
        hash_algorithm, pad = kms_signature_scheme(algorithm)
        digest = digest_of(self, hash_algorithm)
        private = key.private_key.private_key
        prehashed = utils.Prehashed(hash_algorithm)
        if pad is None:
            signature = private.sign(digest, ec.ECDSA(prehashed))
        else:
            signature = private.sign(digest, pad, prehashed)
        return json.dumps(
            {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm}
        )

    def verify(self) -> str:
        algorithm = self._get_param("SigningAlgorithm") or ""
        key = signing_key(self, algorithm)
        hash_algorithm, pad = kms_signature_scheme(algorithm)
        digest = digest_of(self, hash_algorithm)
        signature = base64.b64decode(self._get_param("Signature") or "")
        public = key.private_key.private_key.public_key()
        prehashed = utils.Prehashed(hash_algorithm)
        try:
            if pad is None:
                public.verify(signature, digest, ec.ECDSA(prehashed))
            else:
                public.verify(signature, digest, pad, prehashed)
        except (InvalidSignature, ValueError):
            raise JsonRESTError("KMSInvalidSignatureException", "") from None
        return json.dumps({"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm})

    get_public_key = KmsResponse.get_public_key

    def get_public_key_with_spec(self) -> str:
        answer = json.loads(get_public_key(self))
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        answer.update(KeyId=key.arn, KeySpec=answer.get("CustomerMasterKeySpec"))
        return json.dumps(answer)

    KmsResponse.sign = sign
    KmsResponse.verify = verify
    KmsResponse.get_public_key = get_public_key_with_spec


if __name__ == "__main__":
    serve()
