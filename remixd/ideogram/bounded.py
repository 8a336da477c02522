"""Connections whose status line and headers arrive within the exchange's deadline, not within one read
timeout per byte.

requests bounds each read from the socket, so a server dripping its headers one byte every few seconds never
tripped a read timeout and held an input (and an in-flight place) for as long as it liked. The body is bounded
by `http.read_limited`; this bounds what comes before it. urllib3 puts the read timeout on the connection just
before it waits for the answer, and that timeout is what is left of the exchange's total deadline
(`http.Deadline.timeouts`): here it becomes the limit for the whole status line and headers. When it runs out
the socket is shut, and the wait ends as a read timeout, reported like any other.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse


class _HeadersWithinTimeout(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # urllib3's own override is ignored too
        limit, sock = self.timeout, self.sock
        if not isinstance(limit, int | float) or sock is None:
            return super().getresponse()
        cut = threading.Event()

        def shut() -> None:
            cut.set()
            with contextlib.suppress(OSError):  # the answer came just now, and the socket is closed
                sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(limit, shut)
        timer.daemon = True
        timer.start()
        try:
            response = super().getresponse()
        except Exception:
            if cut.is_set():  # urllib3 turns a socket timeout into requests' ReadTimeout
                raise TimeoutError(f"the answer's headers took longer than {limit:g} s") from None
            raise
        finally:
            timer.cancel()
        if cut.is_set():  # the headers ended because the socket was shut: they are not the answer's
            response.close()
            raise TimeoutError(f"the answer's headers took longer than {limit:g} s")
        return response


class _HeadersWithinTimeoutTls(_HeadersWithinTimeout, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _HeadersWithinTimeout


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _HeadersWithinTimeoutTls


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}


def bound_headers(session: requests.Session) -> None:
    """From now on, `session`'s answers (status line and headers) arrive within each call's read timeout."""
    for prefix in ("http://", "https://"):
        if not isinstance(session.adapters.get(prefix), _Adapter):
            session.mount(prefix, _Adapter())
