"""The sandbox takes connections as a real server does: many opened at once all get through, and work that
follows an answer never holds it up."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Mapping

import pytest
import requests

from remixd.clock import SYSTEM_CLOCK
from remixd.sandbox.app import Sandbox
from remixd.sandbox.handler import HttpServer
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.replies import Reply

AT_ONCE = 20


def test_connections_opened_at_once_are_all_taken_before_any_is_accepted() -> None:
    # socketserver's listen backlog of 5 dropped the rest of ten connections opened at once (remixd filling
    # its places at start): each came back only with the SYN's retry a second later, its place idle till then.
    server = HttpServer(("127.0.0.1", 0), Sandbox(SandboxOptions(), SYSTEM_CLOCK))  # listening, never accepting
    try:
        with contextlib.ExitStack() as opened:
            for _ in range(AT_ONCE):
                client = opened.enter_context(socket.socket())
                client.settimeout(0.5)  # a dropped SYN is retried after 1 s
                client.connect(server.server_address[:2])
    finally:
        server.server_close()


class _AnswerThenWork(Sandbox):
    """Every request answered at once, with work to follow that waits until the test lets it end."""

    def __init__(self) -> None:
        super().__init__(SandboxOptions(), SYSTEM_CLOCK)
        self.go_on = threading.Event()
        self.followed = threading.Event()

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        del method, target, headers, body

        def work() -> None:
            self.go_on.wait(10)
            self.followed.set()

        return Reply(200, b'{"generation_id": "g"}', then=work)


def test_the_work_that_follows_an_answer_runs_once_the_answer_is_sent() -> None:
    # A v2 submission's images are made after its answer: made before, they held it up, and a client killed
    # meanwhile had paid for a generation whose id it never recorded.
    sandbox = _AnswerThenWork()
    server = HttpServer(("127.0.0.1", 0), sandbox)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    serving.start()
    try:
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}/v2/image/remix/ideogram-4"
        answer = requests.post(url, data=b"", headers={"Connection": "close"}, timeout=5)
        assert answer.json() == {"generation_id": "g"}
        assert not sandbox.followed.is_set()  # the answer came while its work still waited
        sandbox.go_on.set()
        assert sandbox.followed.wait(10)
    finally:
        sandbox.go_on.set()
        server.shutdown()
        for thread in server.close_connections():
            thread.join(5)
        server.server_close()
        serving.join(5)


class _Noting(HttpServer):
    """The sandbox's server, telling the test when it has dealt with a request that ended in an error."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Sandbox(SandboxOptions(), SYSTEM_CLOCK))
        self.dealt = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        super().handle_error(request, client_address)
        self.dealt.set()


def test_a_client_that_resets_its_connection_mid_request_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    # A remixd killed while it sent a request (the kill tests, or an operator's kill -9) reset its connection:
    # socketserver printed a traceback of ConnectionResetError for each, in the sandbox's stderr.
    server = _Noting()
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    serving.start()
    try:
        host, port = server.server_address[:2]
        client = socket.create_connection((str(host), int(port)))
        client.sendall(b"POST /v2/image/remix/ideogram-4 HT")  # the request line, cut short
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close as a reset
        client.close()
        assert server.dealt.wait(10)
    finally:
        server.shutdown()
        server.server_close()
        serving.join(10)
    assert "Traceback" not in capfd.readouterr().err


def _bug() -> None:
    raise ValueError("a bug of the sandbox's")


def test_any_other_error_of_a_request_is_still_printed_with_its_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    server = HttpServer(("127.0.0.1", 0), Sandbox(SandboxOptions(), SYSTEM_CLOCK))
    try:
        try:
            _bug()
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert "ValueError: a bug of the sandbox's" in capfd.readouterr().err
