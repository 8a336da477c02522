"""The review page's HTTP server: the standard library's ThreadingHTTPServer, one thread per request.

Routes take ids, never paths (README, "The review page"); every answer carries the security headers; the
overview streams as server-sent events and is recomputed only when the journal changed (SQLite's
data_version) or the daemon's memory did, so an open page costs next to nothing while remixd is idle.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from remixd import httpd
from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.config.model import Config, UiConfig
from remixd.errors import RemixdError
from remixd.journal.browse import reader
from remixd.logs import get_logger
from remixd.review import images, pages, views
from remixd.review.security import HEADERS, Guard
from remixd.review.views import Answer, Refused, html

log = get_logger(__name__)

MAX_QUERY = 2048  # characters; a longer query string is refused before it is parsed
MAX_FORM = 4096  # bytes of a POST body
MAX_STREAMS = 16  # pages open at once with a live overview; each holds a thread
TICK_S = 1.0  # how often a live page looks for news
KEEPALIVE_S = 15.0
MAX_NOTES = 100  # retry outcomes kept for the page that follows the POST
RECOUNT_S = 60.0  # "failed in the last day" moves with the clock, not only with the journal
SHUTDOWN_POLL_S = 0.05  # how soon stop() is noticed (the default half second slows every stop)
_ID = r"(\d{1,12})"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("GET", r"/", "home"),
        ("GET", r"/gallery", "gallery"),
        ("GET", r"/failures", "failures"),
        ("GET", r"/failures/list", "failure_list"),
        ("GET", rf"/input/{_ID}", "detail"),
        ("GET", r"/events", "events"),
        ("GET", rf"/(thumb|full)/input/{_ID}", "input_image"),
        ("GET", rf"/(thumb|full)/result/{_ID}/{_ID}", "result_image"),
        ("GET", r"/static/([a-z]+\.[a-z]+)", "static"),
        ("POST", rf"/retry/{_ID}", "retry"),
        ("POST", rf"/reroll/{_ID}", "reroll"),
    )
)


class ReviewServer:
    def __init__(
        self,
        settings: UiConfig,
        *,
        token: str | None,
        journal_path: Path,
        config: Callable[[], Config],
        live: Callable[[], pages.Live],
        retry: Callable[[int], list[str]],
        reroll: Callable[[int], list[str]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.journal_path = journal_path
        self.config = config
        self.live = live
        self.retry = retry
        self.reroll = reroll  # `remixd reroll` for one done input, new seed; None: no Re-roll button
        self.clock = clock
        self.stopping = threading.Event()
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.thumbnails = images.Thumbnails(config().state_dir / "thumbnails")
        self.notes: OrderedDict[int, tuple[str, ...]] = OrderedDict()  # what the last retries said, by input
        try:
            self._httpd = _Server((settings.host, settings.port), _Handler)
        except OSError as error:
            raise RemixdError(
                f"the review page cannot listen on {settings.listen}: {error.strerror}",
                "choose a free port in ui.listen, or remove the ui section",
            ) from None
        self._httpd.app = self
        self.guard = Guard(token, settings.host, self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name="remixd-ui", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        name = str(host)
        return f"http://{f'[{name}]' if ':' in name else name}:{port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("remixd.ui.listening", url=self.url, token=self.guard.needs_token)

    def stop(self) -> None:
        self.stopping.set()  # live pages end their streams within a tick
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads
        self._thread.join(timeout=5)

    def remember(self, input_id: int, lines: list[str]) -> None:
        self.notes[input_id] = tuple(lines)
        while len(self.notes) > MAX_NOTES:
            self.notes.popitem(last=False)


class _Server(httpd.Server):
    client_gone = "remixd.ui.client_gone"  # a page closed while it loaded
    daemon_threads = False
    block_on_close = True
    app: ReviewServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # seconds a client may take to send its request: a stalled one does not hold a thread
    server_version = "remixd"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the live stream and thumbnails would drown the journal; actions are logged

    def _serve(self, method: str) -> None:
        app = self.server.app
        try:
            answer = self._route(app, method)
        except Refused as refused:
            answer = html(refused.status, "error.html", message=refused.message)
        except Exception:  # a bug in one page never stops the daemon; the browser gets no traceback
            log.exception("remixd.ui.failed", path=urlsplit(self.path).path[:200])
            answer = html(500, "error.html", message="the page failed; remixd's log says why")
        if answer is not None:
            self._send(answer)

    def _route(self, app: ReviewServer, method: str) -> Answer | None:
        if not app.guard.host_allowed(self.headers.get("Host")):
            raise Refused(421, "this page answers only to its own address (127.0.0.1 or localhost)")
        parts = urlsplit(self.path)
        if len(parts.query) > MAX_QUERY:
            raise Refused(414, "the address is too long")
        try:
            query = parse_qs(parts.query, max_num_fields=20)
        except ValueError:
            raise Refused(400, "too many query fields") from None
        if not app.guard.authorised(self.headers):
            offered = query.get("token", [""])[0]
            if method == "GET" and offered and app.guard.token_matches(offered):
                rest = {key: values for key, values in query.items() if key != "token"}
                location = parts.path + ("?" + urlencode(rest, doseq=True) if rest else "")
                return Answer(303, b"", headers=(("Location", location), ("Set-Cookie", app.guard.session_cookie())))
            raise Refused(401, "open this page with ?token=… (the contents of ui.token_file)")
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(parts.path)
            if match is not None and route_method == method:
                arguments = [int(group) if group.isdigit() else group for group in match.groups()]
                # Pages and images answer from the journal and the config alone (views.py); the live stream
                # and the actions read the request itself, so they are the handler's own.
                view = getattr(views, name, None) or getattr(self, f"_{name}")
                return view(app, query, *arguments)  # type: ignore[no-any-return]
            if match is not None:
                raise Refused(405, f"use {route_method}")
        raise Refused(404, "no such page")

    # -- live ------------------------------------------------------------------------------------------------

    def _events(self, app: ReviewServer, _query: dict[str, list[str]]) -> Answer | None:
        if not app.streams.acquire(blocking=False):
            raise Refused(503, "too many live pages are open; close one")
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            for name, value in HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self._stream(app)
        except OSError:
            pass  # the page was closed
        finally:
            app.streams.release()
        self.close_connection = True
        return None

    def _stream(self, app: ReviewServer) -> None:
        with reader(app.journal_path) as journal:
            version, changes, counted_at = None, 0, 0.0
            sent: dict[str, Any] | None = None
            counts = None
            last_write = app.clock.monotonic()
            while not app.stopping.is_set():
                moment = app.clock.monotonic()
                current = journal.data_version()
                if current != version or moment - counted_at > RECOUNT_S or counts is None:
                    changes += current != version
                    version, counted_at = current, moment
                    now = app.clock.utcnow()
                    counts = journal.overview(since=now - timedelta(days=1), today=now.date())
                document = {**pages.overview(counts, app.live(), app.config().budget), "changes": changes}
                if document != sent:
                    self.wfile.write(b"event: overview\ndata: " + json.dumps(document).encode() + b"\n\n")
                    self.wfile.flush()
                    sent, last_write = document, moment
                elif moment - last_write > KEEPALIVE_S:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    last_write = moment
                if self._closed_within(TICK_S):
                    return

    def _closed_within(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when the browser closed the stream (its socket reads end of file), so
        a closed page frees its thread at once instead of at the next write."""
        readable, _, _ = select.select([self.connection], [], [], seconds)
        if not readable:
            return False
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True
        return peeked == b""

    # -- actions ---------------------------------------------------------------------------------------------

    def _retry(self, app: ReviewServer, _query: dict[str, list[str]], input_id: int) -> Answer:
        self._check_form(app)
        lines = app.retry(input_id)
        log.info("remixd.ui.retry", input_id=input_id, result=lines)
        app.remember(input_id, lines)
        return Answer(303, b"", headers=(("Location", f"/failures?retried={input_id}"),))

    def _reroll(self, app: ReviewServer, _query: dict[str, list[str]], input_id: int) -> Answer:
        if app.reroll is None:
            raise Refused(404, "re-roll is not available here")
        self._check_form(app)
        lines = app.reroll(input_id)
        log.info("remixd.ui.reroll", input_id=input_id, result=lines)
        app.remember(input_id, lines)
        return Answer(303, b"", headers=(("Location", f"/input/{input_id}?noted=1"),))

    def _check_form(self, app: ReviewServer) -> None:
        """A state change: a small form carrying this page's CSRF token, from this page."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM:
            raise Refused(413, "the form is too large")
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), max_num_fields=10)
        if not app.guard.state_change_allowed(self.headers, form):
            raise Refused(403, "this form is out of date or came from another site; reload the page and try again")

    # -- answers ---------------------------------------------------------------------------------------------

    def _send(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Cache-Control", answer.cache)
            for name, value in (*HEADERS.items(), *answer.headers):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True  # the browser went away
