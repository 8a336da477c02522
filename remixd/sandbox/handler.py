"""The sandbox's wire: a ThreadingHTTPServer whose handler reads a request, hands it to ``app.Sandbox`` and
writes its Reply, faults included (a reset, a truncated or dripped body); it tracks its connections so a stop
can end idle keep-alive ones.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from remixd import httpd
from remixd.logs import get_logger
from remixd.sandbox.app import Sandbox
from remixd.sandbox.replies import Reply, problem

log = get_logger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with connection pools expect
    server_version = "remixd-sandbox"
    timeout = 120  # a silent client must not hold a thread forever
    # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK (40 ms on
    # Linux), so a kept-alive poll took 50 ms instead of 1 and the sandbox, not the client, set the pace.
    disable_nagle_algorithm = True
    # Writes are buffered and flushed once per answer: the headers and a small body leave in one write, as a
    # server sends an answer it has whole. Unbuffered, they were two, and a thread switch between them held
    # the body back: a generation's id reached the client that much later (tests/e2e/test_kill_v2.py).
    wbufsize = 64 * 1024
    server: HttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        body, early = self._read_body()
        if early is not None:
            self.close_connection = True
            self._send(early)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.sandbox.handle(self.command, self.path, headers, body)
        except Exception:
            log.exception("remixd.sandbox.crashed", path=self.path)
            reply = problem(500, "Internal Server Error", "The sandbox failed; see its log.")
        self._send(reply)
        if reply.then is not None:
            reply.then()

    def _read_body(self) -> tuple[bytes, Reply | None]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return b"", problem(411, "Length Required", "send a Content-Length; chunked bodies are not accepted")
        text = self.headers.get("Content-Length")
        if text is None:
            return b"", None
        if not text.strip().isdigit():
            return b"", problem(400, "Bad Request", "malformed Content-Length")
        length = int(text)
        if length > self.server.sandbox.options.max_request_bytes:
            limit = self.server.sandbox.options.max_request_bytes
            return b"", problem(413, "Request Entity Too Large", f"the body may be at most {limit} bytes")
        return self.rfile.read(length), None

    def _send(self, reply: Reply) -> None:
        if reply.action == "reset":
            # RST instead of an answer: SO_LINGER 0 makes close() abort the connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.action in ("truncate", "drip") or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have gone; nothing to tell it
            if self.command != "HEAD":
                self._write_body(reply)
            self.wfile.flush()
        super().log_request(reply.status)

    def _write_body(self, reply: Reply) -> None:
        # A truncated download: the full Content-Length promised, half the bytes sent, then the close.
        body = reply.body[: len(reply.body) // 2] if reply.action == "truncate" else reply.body
        if reply.action != "drip":
            self.wfile.write(body)
            return
        # A slow server that never goes quiet for long: no per-read timeout ever fires.
        interval = self.server.sandbox.faults().drip_interval_s
        for index in range(len(body)):
            self.wfile.write(body[index : index + 1])
            self.wfile.flush()
            if not self.server.sandbox.pause(interval):
                return

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, oversized headers) as JSON too, not HTML."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._send(problem(code, phrase, explain or message or phrase))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing here: send_response logs before the answer is written, and the access line held the answer
        back (~0.4 ms at ten in flight, tests/e2e/test_kill_v2.py); _send logs it once the answer is out."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("remixd.sandbox.http", message=format % args)


class HttpServer(httpd.Server):
    client_gone = "remixd.sandbox.client_gone"
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The listen backlog of a real server. socketserver's 5 dropped the connections beyond it when a client
    # opened ten at once (remixd filling its places at start): each came back only with the SYN's retry a
    # second later, and its place stood idle for it (python -m bench --only async_v2).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._tracking = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name="remixd-sandbox-connection",
        )
        with self._tracking:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._tracking:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def close_connections(self) -> list[threading.Thread]:
        """Wake idle keep-alive handlers so they exit; returns the threads to join."""
        with self._tracking:
            connections, threads = list(self._connections), list(self._handler_threads)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        return threads
