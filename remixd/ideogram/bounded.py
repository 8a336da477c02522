"""Connections whose exchange, from writing the request to the last header of the answer, ends within the
call's deadline, not within one read timeout per byte.

requests bounds each read from the socket, so a server dripping its status line and headers one byte every few
seconds never tripped a timeout and held an input (and an in-flight place) for as long as it liked. The body of
the answer is bounded by `http.read_limited`; this bounds what comes before it. The read timeout a call passes
is what is left of its total deadline (`http.Deadline.timeouts`): from the moment the request is written, it is
the limit for sending it and for the answer's headers together. When it runs out the socket is shut, and the
wait ends as a read timeout, reported like any other. (Connecting has its own bound, within the deadline.)

Through an HTTP(S) proxy (`HTTPS_PROXY`, `HTTP_PROXY`) the same bound holds: the proxy's connections are made
by the same classes, whether they tunnel to the API or send it the request. A SOCKS proxy (`socks5://`, with
requests' optional PySocks) makes connections of its own: there each read is bounded, not the whole exchange
(README, `api.timeout_s`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.response import HTTPResponse

from remixd.clock import SYSTEM_CLOCK

_call = threading.local()  # the read timeout of the call this thread is making: one call at a time per thread


class _Cut:
    """Shuts the connection's socket once `limit` seconds have passed, unless cancelled first."""

    def __init__(self, connection: HTTPConnection, limit: float) -> None:
        self.limit = limit
        self.fired = threading.Event()
        self.cancelled = False
        self._connection = connection
        _CUTTER.add(self, limit)

    def shut(self) -> None:
        self.fired.set()
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # the exchange ended just now, and the socket is closed
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        _CUTTER.cancel(self)

    def timed_out(self) -> TimeoutError:
        return TimeoutError(f"the request and the answer's headers took longer than {self.limit:g} s")


class _Cutter:
    """One thread makes every cut that comes due. A timer thread per exchange started and ended a thread
    for every request, poll and download (some 1,300 in a run of 300 async images), each taking the
    interpreter from the workers that had the next request to send (python -m bench --only async_v2).

    A cut is made or cancelled under the lock, so once `cancel` returns it either never fires or has
    fired already (the caller checks `fired`)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._due: list[tuple[float, int, _Cut]] = []  # a heap by deadline; cancelled cuts leave as they surface
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, cut: _Cut, limit: float) -> None:
        with self._condition:
            heapq.heappush(self._due, (SYSTEM_CLOCK.monotonic() + limit, next(self._order), cut))
            if self._thread is None or not self._thread.is_alive():  # the first cut, or the first after a fork
                self._thread = threading.Thread(target=self._run, name="remixd-http-deadlines", daemon=True)
                self._thread.start()
            elif self._due[0][2] is cut:  # sooner than what the thread waits for
                self._condition.notify()

    def cancel(self, cut: _Cut) -> None:
        with self._condition:
            cut.cancelled = True

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._due and self._due[0][2].cancelled:
                    heapq.heappop(self._due)
                if not self._due:
                    self._condition.wait()
                    continue
                wait = self._due[0][0] - SYSTEM_CLOCK.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                _, _, cut = heapq.heappop(self._due)
                cut.shut()


_CUTTER = _Cutter()


class _Bounded(HTTPConnection):
    _cut: _Cut | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        limit = getattr(_call, "limit", None)
        self._cut = _Cut(self, limit) if isinstance(limit, int | float) else None
        try:
            super().request(*args, **kwargs)
        except Exception:
            if self._cut is not None:
                self._cut.cancel()
                if self._cut.fired.is_set():  # urllib3 turns a socket timeout into requests' ReadTimeout
                    raise self._cut.timed_out() from None
            raise

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own override
        cut, self._cut = self._cut, None
        if cut is None:
            return super().getresponse()
        try:
            response = super().getresponse()
        except Exception:
            if cut.fired.is_set():
                raise cut.timed_out() from None
            raise
        finally:
            cut.cancel()
        if cut.fired.is_set():  # the headers ended because the socket was shut: they are not the answer's
            response.close()
            raise cut.timed_out()
        return response


class _BoundedTls(_Bounded, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Bounded


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _BoundedTls


_POOLS = {"http": _Pool, "https": _TlsPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # not SOCKS: its pools have connection classes of their own
            manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        timeout = kwargs.get("timeout")
        _call.limit = timeout[1] if isinstance(timeout, tuple) else timeout
        try:
            return super().send(request, *args, **kwargs)
        finally:
            _call.limit = None


def bound_exchanges(session: requests.Session) -> None:
    """From now on, each of `session`'s calls sends its request and receives the answer's headers within the
    call's read timeout."""
    for prefix in ("http://", "https://"):
        if not isinstance(session.adapters.get(prefix), _Adapter):
            session.mount(prefix, _Adapter())
