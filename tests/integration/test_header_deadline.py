"""A server that drips its status line and headers is cut at the exchange's total deadline, not per read."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from remixd.errors import ApiRejected, ApiUnavailable
from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.requests import RemixRequest
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import SEED_WIRE_FIELDS, send_remix

KEY = "sk-remixd-test-7f3a9c2e51d04b8a"
DRIP_S = 0.2  # one byte this often never trips a per-read timeout
DEADLINE_S = 0.5
SLACK_S = 10.0  # the headers alone would take ~20 s; a loaded machine never comes close to this
HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    + b"X-Padding: "
    + b"x" * 60
    + b"\r\n\r\n{}"
)


class DrippingServer:
    """Loopback: reads a request's head, then answers one byte every DRIP_S until the client goes away."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.answered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dripping-server")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    received += chunk
                for index in range(len(HEADERS)):
                    if self._stop.wait(DRIP_S):
                        return
                    try:
                        connection.sendall(HEADERS[index : index + 1])
                    except OSError:
                        break  # the client gave up: the deadline did its work
                else:
                    self.answered.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()


@pytest.fixture
def server() -> Iterator[DrippingServer]:
    dripping = DrippingServer()
    yield dripping
    dripping.close()


def client(server: DrippingServer, session: requests.Session) -> IdeogramClient:
    return IdeogramClient(
        server.base_url, KEY, "api-key", session, timeout_s=DEADLINE_S, download_timeout_s=DEADLINE_S,
        max_download_bytes=10**6,
    )  # fmt: skip


def test_a_remix_answer_whose_headers_drip_is_cut_at_the_total_deadline(server: DrippingServer) -> None:
    with requests.Session() as session:
        remix = client(server, session)
        started = time.monotonic()
        with pytest.raises(ApiUnavailable) as caught:
            send_remix(remix, RemixRequest.model_validate(SEED_WIRE_FIELDS), b"\x89PNG", "a.png", "image/png")
        assert time.monotonic() - started < SLACK_S
    assert caught.value.sent is True  # sent and never answered: a possible payment, never resent silently
    assert f"within {DEADLINE_S:g} s" in caught.value.message
    assert not server.answered.is_set()


def test_a_download_whose_headers_drip_is_cut_at_its_deadline(server: DrippingServer) -> None:
    with requests.Session() as session:
        downloads = client(server, session)
        started = time.monotonic()
        with pytest.raises(ApiUnavailable) as caught:
            downloads.download(server.base_url + "/api/images/ephemeral/a.png")
        assert time.monotonic() - started < SLACK_S
    assert caught.value.sent is False  # a download is free to try again
    assert not server.answered.is_set()


def test_exchanges_are_cut_by_one_thread_not_a_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    # A timer per exchange started a thread for every request, poll and download (some 1,300 in a run of
    # 300 async images), each one taking the interpreter from the workers with a request to send.
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    with SandboxServer(SandboxOptions(api_keys=frozenset({KEY}))) as sandbox, requests.Session() as session:
        polls = IdeogramClient(sandbox.base_url, KEY, "api-key", session, 10, 10, 10**6)
        with pytest.raises(ApiRejected):  # 404: no such generation, an exchange all the same
            polls.generation("AAAAAAAAAAAAAAAAAAAAAA")
        monkeypatch.setattr(threading.Thread, "start", counted)
        for _ in range(5):
            with pytest.raises(ApiRejected):
                polls.generation("AAAAAAAAAAAAAAAAAAAAAA")
    assert started == []


def test_a_proxy_whose_answer_drips_is_cut_at_the_total_deadline_too(server: DrippingServer) -> None:
    """Through HTTP_PROXY the proxy's pools were urllib3's own, and a dripping answer held the call 20 s."""
    with requests.Session() as session:
        session.trust_env = False
        session.proxies = {"http": server.base_url}  # the dripping server is the proxy: nothing else is reached
        remix = IdeogramClient(
            "http://127.0.0.1:9", KEY, "api-key", session, timeout_s=DEADLINE_S, download_timeout_s=DEADLINE_S,
            max_download_bytes=10**6,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(ApiUnavailable) as caught:
            send_remix(remix, RemixRequest.model_validate(SEED_WIRE_FIELDS), b"\x89PNG", "a.png", "image/png")
        assert time.monotonic() - started < SLACK_S
    assert caught.value.sent is True and f"within {DEADLINE_S:g} s" in caught.value.message
    assert not server.answered.is_set()
