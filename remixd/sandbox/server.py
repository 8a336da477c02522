"""HTTP plumbing for the sandbox: a ThreadingHTTPServer around ``app.Sandbox``, its lifecycle, and the
standalone entry point behind ``remixd sandbox``.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

import structlog

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.sandbox.app import Sandbox
from remixd.sandbox.options import Faults, SandboxOptions
from remixd.sandbox.replies import Reply, problem
from remixd.sandbox.state import Ledger, ReceivedRequest
from remixd.sandbox.v2 import PollCounts

log = structlog.get_logger(__name__)

DEFAULT_PORT = 8787
_JOIN_TIMEOUT_S = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with connection pools expect
    server_version = "remixd-sandbox"
    timeout = 120  # a silent client must not hold a thread forever
    # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK (40 ms on
    # Linux), so a kept-alive poll took 50 ms instead of 1 and the sandbox, not the client, set the pace.
    disable_nagle_algorithm = True
    server: _HttpServer

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
        if self.command == "HEAD":
            return
        # A truncated download: the full Content-Length promised, half the bytes sent, then the close.
        body = reply.body[: len(reply.body) // 2] if reply.action == "truncate" else reply.body
        with contextlib.suppress(OSError):  # the client may have gone; nothing to tell it
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

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("remixd.sandbox.http", message=format % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

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


class SandboxServer:
    """Ideogram's Remix API on loopback. ``with SandboxServer() as server: url = server.base_url``."""

    def __init__(
        self,
        options: SandboxOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.options = options or SandboxOptions()
        self.host = host
        self.port = port
        self._sandbox = Sandbox(self.options, clock)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        if self._httpd is not None:
            return self.base_url
        httpd = _HttpServer((self.host, self.port), self._sandbox)
        bound_host, bound_port = httpd.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else bound_host.decode()
        if shown in ("0.0.0.0", "::"):  # noqa: S104 - detecting a wildcard bind, not making one
            self._sandbox.use_host_header = True
            shown = "127.0.0.1" if shown == "0.0.0.0" else "::1"  # noqa: S104 - as above
        self.port = int(bound_port)
        self.base_url = f"http://[{shown}]:{self.port}" if ":" in shown else f"http://{shown}:{self.port}"
        self._sandbox.base_url = self.base_url
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name="remixd-sandbox"
        )
        self._thread.start()
        log.info("remixd.sandbox.started", base_url=self.base_url, auth=self.options.auth)
        return self.base_url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        self._sandbox.stop()  # cut latency waits short and open the hold
        for thread in httpd.close_connections():
            thread.join(_JOIN_TIMEOUT_S)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(_JOIN_TIMEOUT_S)
        log.info("remixd.sandbox.stopped", base_url=self.base_url)

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- introspection and controls for tests

    @property
    def received(self) -> list[ReceivedRequest]:
        return self._sandbox.received()

    @property
    def downloads(self) -> list[Any]:
        return self._sandbox.downloads()

    @property
    def ledger(self) -> Ledger:
        """What was billed, async generations that have ended by now included."""
        self._sandbox.v2.settle()
        return self._sandbox.accounts.snapshot()

    @property
    def faults(self) -> Faults:
        return self._sandbox.faults()

    @property
    def in_flight(self) -> int:
        """Images in progress right now (pending async generations included)."""
        self._sandbox.v2.settle()
        return self._sandbox.inflight.images

    @property
    def pending_generations(self) -> int:
        self._sandbox.v2.settle()
        return len(self._sandbox.v2.pending())

    @property
    def polls(self) -> PollCounts:
        return self._sandbox.v2.poll_counts

    @property
    def stored_images(self) -> int:
        return len(self._sandbox.store)

    def set_faults(self, **changes: Any) -> Faults:
        """Change faults at run time, e.g. ``set_faults(fail_after_next=1)``; see ``options.Faults``."""
        return self._sandbox.set_faults(**changes)

    def reset(self) -> None:
        self._sandbox.reset()

    def advance_clock(self, seconds: float) -> None:
        self._sandbox.advance_clock(seconds)

    def hold(self) -> None:
        """Requests wait after validation, counted as in flight, until ``release()``."""
        self._sandbox.hold()

    def release(self) -> None:
        self._sandbox.release()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    options: SandboxOptions | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> int:
    """Run standalone until SIGTERM/SIGINT (or ``stop`` is set); returns the exit status, 0."""
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("remixd.sandbox.signal", signal=signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        with SandboxServer(options, host=host, port=port) as server:
            if on_ready is not None:
                on_ready(server.base_url)
            stop.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
