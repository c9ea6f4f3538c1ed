"""An AWS endpoint that can't be reached, or that answers but is not AWS (issue 12): one clear error naming it.

No timing assertion: the tests only need to finish and read the message (the first call's short
connect timeout and single retry are what keep them quick).
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from conftest import PUBLISH_PYPROJECT, make_repo


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NotAws(http.server.BaseHTTPRequestHandler):
    """A web server on the endpoint's address: an HTML page (with `status`) for every request."""

    status = 200

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<html><body><h1>It works!</h1></body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_server():
    """Start a `NotAws` server on a free loopback port; yields a function setting its status, and its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def environment(tmp_path, endpoint: str) -> dict:
    """Dummy credentials for `endpoint`, with no profile or config file of this machine."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PROFILE": None,  # removed for the run
        "AWS_DEFAULT_PROFILE": None,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.fixture
def publishable(tmp_path):
    repo = make_repo(tmp_path)
    repo.write("pyproject.toml", PUBLISH_PYPROJECT)
    return repo


def test_an_unreachable_endpoint_is_named_not_blamed_on_the_credentials(publishable, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"

    result = publishable.pkg("plan", "--stage", "dev", env=environment(tmp_path, endpoint))

    assert result.exit_code == 1
    assert f"error: cannot reach the AWS endpoint {endpoint}" in result.stderr
    assert f"AWS_ENDPOINT_URL is set to {endpoint}: start that endpoint, or unset" in result.stderr
    assert "credentials" not in result.stderr and "Traceback" not in result.stderr
    json_result = publishable.pkg("publish", "--stage", "dev", "--json", env=environment(tmp_path, endpoint))
    assert json_result.json["type"] == "EndpointError"


@pytest.mark.parametrize(("status", "detail"), [(200, "KeyError"), (404, "HTTP 404"), (503, "HTTP 503")])
def test_an_endpoint_answering_html_is_not_aws(publishable, tmp_path, web_server, status, detail):
    NotAws.status = status
    try:
        result = publishable.pkg("publish", "--stage", "dev", env=environment(tmp_path, web_server))
    finally:
        NotAws.status = 200

    assert result.exit_code == 1
    assert f"error: the endpoint {web_server} answered, but not as AWS does ({detail})" in result.stderr
    assert "credentials" not in result.stderr and "Traceback" not in result.stderr
