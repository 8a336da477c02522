"""HTTP plumbing shared by the Remix client (`ideogram/client.py`) and the result downloader (`ideogram/download.py`):
bounded body reads, and short, secret-free texts for error messages.

Everything here treats the remote side as untrusted: bodies are read up to a limit and no further, JSON that
cannot be parsed (or is nested deep enough to exhaust the parser) comes back as text, and every text that
may end up in a message passes through `secrets.scrub`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import urllib.parse
import weakref
from collections.abc import Callable
from typing import Any

import requests
import urllib3.exceptions

from remixd import __version__, secrets
from remixd.logs import get_logger

USER_AGENT = f"remixd/{__version__}"
CONNECT_TIMEOUT_S = 10.0
CHUNK_BYTES = 64 * 1024
MIN_WAIT_S = 0.001  # a deadline that has just passed still gets one short try, and then fails
MAX_RETRY_AFTER_S = 600.0  # README, "Retries never pay twice": a server (or gateway) asking for longer is capped
MAX_ORIGINS = 64  # origins whose settings are kept; a gateway's result links may name many ports of a host

log = get_logger(__name__)


class Deadline:
    """A total time limit for one exchange: connecting, sending, waiting and reading the whole body.

    requests' timeouts bound each read from the socket, so a server that sends one byte every few seconds
    never trips them and holds a worker (and an in-flight slot) for as long as it likes.
    """

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._ends = monotonic() + seconds

    def remaining(self) -> float:
        return self._ends - self._monotonic()

    def timeouts(self) -> tuple[float, float]:
        """requests' (connect, read) timeouts for the next call: never beyond the deadline."""
        remaining = max(MIN_WAIT_S, self.remaining())
        return min(CONNECT_TIMEOUT_S, remaining), remaining


class Environment:
    """What requests takes from the environment for a URL, read once per scheme and host: the proxy
    (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, unless `NO_PROXY` names the host) and the CA bundle
    (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`). Each call passes them (`for_url`), and the session no longer
    reads them itself: it did at every exchange, a few tenths of a millisecond of every request, poll and
    download, taken from the worker that had an answer to record (tests/e2e/test_kill_v2.py). A session
    told not to trust the environment is left so. `~/.netrc` is not read: remixd sends no credentials but
    the key and those a gateway's `base_url` holds. One per session: `environment_of`."""

    def __init__(self, session: requests.Session) -> None:
        self._trusted = session.trust_env
        session.trust_env = False
        self._origins: dict[tuple[str, str], dict[str, Any]] = {}

    def for_url(self, url: str) -> dict[str, Any]:
        """Keyword arguments for a call of the session to `url`."""
        parts = urllib.parse.urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        settings = self._origins.get(origin)
        if settings is None:
            settings = self._read(url)
            if len(self._origins) < MAX_ORIGINS:
                self._origins[origin] = settings
        return settings

    def _read(self, url: str) -> dict[str, Any]:
        if not self._trusted:
            return {}
        settings: dict[str, Any] = {"proxies": requests.utils.get_environ_proxies(url)}
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            settings["verify"] = bundle
        return settings


_ENVIRONMENTS: weakref.WeakKeyDictionary[requests.Session, Environment] = weakref.WeakKeyDictionary()


def environment_of(session: requests.Session) -> Environment:
    """The session's Environment: a client built again on it (a reload) shares what the first one read, where
    a new one would find the session's own reading already turned off."""
    environment = _ENVIRONMENTS.get(session)
    if environment is None:
        environment = _ENVIRONMENTS[session] = Environment(session)
    return environment


def read_limited(response: requests.Response, limit: int, deadline: Deadline) -> bytes | None:
    """The body, or None past `limit` bytes (stops reading there: a huge answer costs nothing).

    Reads what has arrived (`read1`), with the socket's timeout cut to what is left of `deadline` before each
    read, so the whole body arrives within the deadline or requests.exceptions.ReadTimeout is raised. Bytes
    are decoded as they come, so a small gzip body that inflates past the limit stops here too; a failure
    of the connection or of the decoding is raised as requests.exceptions.ConnectionError.
    """
    raw = response.raw
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise requests.exceptions.ReadTimeout(f"the body took longer than {deadline.seconds:g} s")
        # Asked afresh each time: once the body is complete urllib3 hands the connection back to the pool
        # (None here), where another request may be using it already.
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # http.client closed it at the end of the body: nothing to wait for
                sock.settimeout(remaining)
        try:
            chunk = raw.read1(CHUNK_BYTES, decode_content=True)
        except urllib3.exceptions.ReadTimeoutError as error:
            raise requests.exceptions.ReadTimeout(error) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise requests.exceptions.ConnectionError(error) from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)


def json_or_text(body: bytes) -> Any:
    """The parsed JSON document, or the body as text when it is not JSON; secrets scrubbed from every string.

    Every answer remixd keeps (journal, sidecar, error file) is parsed here, so a gateway that echoes the key
    into any field of an answer, even a 200, leaves no copy of it anywhere.
    RecursionError too: `[[[[…` a few thousand deep (well within the 4 MiB answer limit) exhausts the parser,
    and that must end as a clear "unexpected body", not as a crashed worker.
    """
    try:
        return secrets.scrub_document(json.loads(body))
    except (ValueError, RecursionError):
        return secrets.scrub(body.decode("utf-8", "replace"))


def message_of(document: Any) -> str | None:
    """The human part of an error body: `error`, `detail`, `message` or `title` (also one level down)."""
    if isinstance(document, dict):
        for key in ("error", "detail", "message", "title"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return snippet(value, 300)
            if isinstance(value, dict):  # {"error": {"message": ...}} (OpenAI-style gateways)
                inner = message_of(value)
                if inner:
                    return inner
    if isinstance(document, str) and document.strip():
        return snippet(document, 300)
    return None


def snippet(value: Any, limit: int = 200) -> str:
    """One line of at most `limit` characters, secrets scrubbed."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)[: limit * 4]
    text = secrets.scrub(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "…"


def short_url(url: str) -> str:
    """A URL without its query (signed URLs carry long signatures nobody needs in a message)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # "http://[::1" and friends
        return snippet(url, 200)
    return snippet(urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), 200)


def retry_after_s(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now` (wall clock): delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    At most MAX_RETRY_AFTER_S, logged when a longer wait was asked for: a gateway answering "Retry-After:
    86400" (or a date next year) would otherwise hold every poller, or an input, for as long as it said.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is True too, and float("²") raises
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(0.0, when.timestamp() - now)
    if seconds > MAX_RETRY_AFTER_S:
        log.warning("remixd.api.retry_after_capped", asked_s=round(seconds, 1), cap_s=MAX_RETRY_AFTER_S)
        return MAX_RETRY_AFTER_S
    return seconds


def content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isascii() and value.isdigit() else None


def reason_of(error: BaseException) -> str:
    """The innermost useful words of a requests/urllib3 error chain."""
    inner: BaseException = error
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    if isinstance(reason, BaseException):
        inner = reason
    return snippet(str(inner) or type(inner).__name__, 200)
