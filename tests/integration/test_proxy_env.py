"""What the client takes from the environment, read once per host (ideogram.http.Environment): the proxy named
by HTTP_PROXY carries the submission, the polls and the downloads, NO_PROXY keeps a host off it, and a
`~/.netrc` entry for the API's host is never sent."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.requests import RemixRequest
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, image_bytes, send_remix

REQUEST = {"model": "ideogram-4", "prompt": "studio shot", "rendering_speed": "turbo"}
_HOP_BY_HOP = ("connection", "proxy-connection", "keep-alive")


class _Forward(BaseHTTPRequestHandler):
    """A forward proxy's handler: the absolute URL of each request is recorded, and the request passed on."""

    protocol_version = "HTTP/1.1"
    server: RecordingProxy

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.netloc, timeout=10)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in (*_HOP_BY_HOP, "content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


class RecordingProxy(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.seen: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-proxy")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy settings but what a test sets (the machine's own may name one, or exempt loopback)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _one_generation(sandbox: SandboxServer) -> None:
    """Submit, poll until it ends, download its image: each kind of exchange a worker makes."""
    with requests.Session() as session:
        client = IdeogramClient(sandbox.base_url, TEST_KEY, "api-key", session, 20, 20, 1 << 26)
        accepted = send_remix(client, RemixRequest.model_validate(REQUEST), image_bytes(), "a.jpg", "image/jpeg")
        assert accepted.generation_id is not None
        state = client.generation(accepted.generation_id)
        assert state.status == "completed"
        [item] = state.as_response(accepted.seed).data
        assert item.url is not None
        assert client.download(item.url).startswith(b"\x89PNG")


def test_the_proxy_named_by_the_environment_carries_submissions_polls_and_downloads(
    environment: pytest.MonkeyPatch, sandbox: SandboxServer, proxy: RecordingProxy
) -> None:
    sandbox.set_faults(latency_s=0)
    environment.setenv("HTTP_PROXY", proxy.url)
    _one_generation(sandbox)
    kinds = [line.split(sandbox.base_url)[1].split("/")[1:3] for line in proxy.seen]
    assert kinds == [["v2", "image"], ["v2", "generations"], ["api", "images"]]
    assert len(sandbox.received) == 1  # the submission reached the sandbox through the proxy, once


def test_no_proxy_keeps_the_api_host_off_the_proxy(
    environment: pytest.MonkeyPatch, sandbox: SandboxServer, proxy: RecordingProxy
) -> None:
    sandbox.set_faults(latency_s=0)
    environment.setenv("HTTP_PROXY", proxy.url)
    environment.setenv("NO_PROXY", "127.0.0.1")
    _one_generation(sandbox)
    assert proxy.seen == []


def test_a_netrc_entry_for_the_api_host_is_never_sent(
    environment: pytest.MonkeyPatch, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # requests added it as basic auth to every exchange: beside the key, to Ideogram or a gateway, or in
    # place of a gateway's bearer token.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-for-ideogram\n")
    netrc.chmod(0o600)
    environment.setenv("NETRC", str(netrc))
    sandbox.set_faults(latency_s=0)
    _one_generation(sandbox)
    [submission] = sandbox.received
    assert "authorization" not in submission.header_names
