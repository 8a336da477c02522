"""The HTTP servers' common base (the sandbox's, the review page's, the metrics'): the standard library's
ThreadingHTTPServer, for which a client gone mid-request is ordinary."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any

from remixd.logs import get_logger

log = get_logger(__name__)


class Server(ThreadingHTTPServer):
    """A client gone mid-request (killed, its page closed, its connection reset) is logged at debug level, with
    no traceback on stderr: socketserver printed one for each, in the journal of a daemon left running for
    months. Anything else is the server's own bug, printed as socketserver prints it."""

    client_gone = "remixd.http.client_gone"  # each server's own event name

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):  # reset, broken pipe, aborted
            log.debug(self.client_gone, client=str(client_address[0]), error=str(error))
            return
        super().handle_error(request, client_address)
