"""The sandbox server: ``app.Sandbox`` on loopback (its wire is ``handler.py``), its lifecycle, the
introspection and controls tests use, and the standalone entry point behind ``remixd sandbox``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.logs import get_logger
from remixd.sandbox.app import Sandbox
from remixd.sandbox.handler import HttpServer
from remixd.sandbox.options import Faults, SandboxOptions
from remixd.sandbox.state import Ledger, ReceivedRequest
from remixd.sandbox.v2 import PollCounts

log = get_logger(__name__)

DEFAULT_PORT = 8787
_JOIN_TIMEOUT_S = 5.0


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
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        if self._httpd is not None:
            return self.base_url
        httpd = HttpServer((self.host, self.port), self._sandbox)
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
