"""The sandbox's behaviour, free of HTTP plumbing: a request (method, target, headers, body) becomes a Reply.

`Sandbox` holds the state every route shares (accounts, in-flight images, stored images, faults, the clock),
routes a request, and answers what the routes have in common (authentication, 400s, the in-flight 429) and
the image downloads; the remixes are `legacy.py` (legacy and 3.0) and `v2.py`.
"""

from __future__ import annotations

import re
import secrets
import threading
import urllib.parse
from collections import deque
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from remixd.clock import Clock
from remixd.logs import get_logger
from remixd.sandbox import reference, reference_v2
from remixd.sandbox.control import handle_control
from remixd.sandbox.legacy import LegacyApi
from remixd.sandbox.options import Faults, SandboxOptions
from remixd.sandbox.replies import Action, Reply, also_then, json_reply, problem
from remixd.sandbox.state import (
    Accounts,
    DownloadRecord,
    ImageStore,
    InflightCounter,
    ReceivedRequest,
    RecordDraft,
)
from remixd.sandbox.v2 import V2Api

log = get_logger(__name__)

_IMAGE_PATH = re.compile(re.escape(reference.IMAGE_PATH_PREFIX) + r"([0-9A-Za-z]{22})\.png")


class Sandbox:
    """State and behaviour shared by the HTTP handler threads of one SandboxServer."""

    def __init__(self, options: SandboxOptions, clock: Clock) -> None:
        options.validate()
        self.options = options
        self._clock = clock
        self._clock_offset = 0.0
        self._lock = threading.Lock()
        self._faults = Faults()
        self._received: deque[ReceivedRequest] = deque(maxlen=options.max_records)
        self._downloads: deque[DownloadRecord] = deque(maxlen=options.max_records)
        self.accounts = Accounts()
        self.inflight = InflightCounter()
        self.store = ImageStore(
            options.signing_secret or secrets.token_bytes(32),
            options.url_ttl_s,
            options.max_stored_images,
            options.max_stored_bytes,
            options.expired_status,
        )
        self._gate = threading.Event()
        self._gate.set()
        self._stopping = threading.Event()
        self.v2 = V2Api(self, clock)
        self.legacy = LegacyApi(self, clock)
        self.base_url = ""  # set by the server once it is bound
        self.use_host_header = False  # bound to a wildcard address: URLs follow the Host the client used

    # ------------------------------------------------------------------ run-time controls

    def now(self) -> float:
        return self._clock.wall() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    def faults(self) -> Faults:
        with self._lock:
            return Faults(**self._faults.as_dict())

    def set_faults(self, **changes: Any) -> Faults:
        with self._lock:
            trial = Faults(**self._faults.as_dict())
            trial.update(changes)  # validates everything before anything changes
            self._faults = trial
            return Faults(**trial.as_dict())

    def take(self, counter: str) -> bool:
        """Use up one of the next-N fault counters; True when this request gets the fault."""
        with self._lock:
            remaining = getattr(self._faults, counter)
            if remaining <= 0:
                return False
            setattr(self._faults, counter, remaining - 1)
            return True

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def pause(self, seconds: float) -> bool:
        """Wait (a dripped answer's next byte); False when the server stops meanwhile."""
        return not self._stopping.wait(seconds)

    def released(self) -> bool:
        return self._gate.is_set()

    def latency(self) -> float:
        faults = self.faults()
        return self.options.latency_s if faults.latency_s is None else faults.latency_s

    def wait_latency(self) -> None:
        """A synchronous request's work time, then the hold, if any."""
        latency = self.latency()
        if latency > 0:
            self._stopping.wait(latency)  # a stop cuts the wait short
        self._gate.wait()

    def stop(self) -> None:
        self._stopping.set()
        self._gate.set()

    def answered(self, draft: RecordDraft, reply: Reply, started: float, **fields: Any) -> Reply:
        """Record a remix request, and log it once its answer is on the wire: logged before, the line held a
        generation's id back from the client ~5 ms, a window for a kill that Ideogram's answer does not have
        (tests/e2e/test_kill_v2.py). `duration_ms` runs from `started` (monotonic) to the line, so
        `timestamp - duration_ms` is the request's arrival."""
        status = None if reply.action == "reset" else reply.status
        with self._lock:
            self._received.append(draft.freeze(status, self.now()))

        def logged() -> None:
            duration_ms = round((self._clock.monotonic() - started) * 1000, 1)
            log.info(
                "remixd.sandbox.request",
                path=draft.path,
                status=status,
                billed_usd=float(draft.billed),
                duration_ms=duration_ms,
                **fields,
            )

        return also_then(reply, logged)

    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def downloads(self) -> list[DownloadRecord]:
        with self._lock:
            return list(self._downloads)

    def reset(self) -> None:
        with self._lock:
            self._faults = Faults()
            self._received.clear()
            self._downloads.clear()
            self._clock_offset = 0.0
        self.v2.reset()
        self.accounts.reset()
        self.store.clear()
        self._gate.set()

    # ------------------------------------------------------------------ requests

    def handle(  # noqa: PLR0911 - one return per route
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """``headers`` with lower-case names."""
        try:
            parsed = urllib.parse.urlsplit(target)
        except ValueError:
            return problem(400, "Bad Request", "malformed request target")
        path = parsed.path
        if path.startswith("/_sandbox/") and self.options.control_endpoints:
            return handle_control(self, method, path, body)
        if path.startswith(reference.IMAGE_PATH_PREFIX):
            if method not in ("GET", "HEAD"):
                return problem(405, "Method Not Allowed", "The method is not allowed for the requested URL.")
            return self._download(path, parsed.query)
        route = path[len(reference.GATEWAY_PREFIX) :] if path.startswith(reference.GATEWAY_PREFIX + "/") else path
        if route.startswith(reference_v2.REMIX_PREFIX):
            if method != "POST":
                return problem(405, "Method Not Allowed", "The method is not allowed for the requested URL.")
            return self.v2.remix(route.removeprefix(reference_v2.REMIX_PREFIX), path, parsed.query, headers, body)
        if route.startswith(reference_v2.GENERATIONS_PREFIX):
            if method not in ("GET", "HEAD"):
                return problem(405, "Method Not Allowed", "The method is not allowed for the requested URL.")
            return self.v2.poll(route.removeprefix(reference_v2.GENERATIONS_PREFIX), headers)
        if route in (reference.LEGACY_PATH, reference.V3_PATH):
            if method != "POST":
                return problem(405, "Method Not Allowed", "The method is not allowed for the requested URL.")
            return self.legacy.remix(route == reference.V3_PATH, path, headers, body)
        return problem(404, "Not Found", "The requested URL was not found on the server.")

    def authenticate(self, headers: Mapping[str, str]) -> tuple[str | None, bool, str]:
        mode = self.options.auth
        api_key = headers.get("api-key", "").strip()
        authorization = headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        presented = [name for name, key in (("api-key", api_key), ("bearer", bearer)) if key]
        allowed = {"api-key": mode in ("api-key", "both"), "bearer": mode in ("bearer", "both")}
        keys = self.options.api_keys
        for scheme, key in (("api-key", api_key), ("bearer", bearer)):
            if key and allowed[scheme] and (key in keys if keys else True):
                return scheme, True, ""
        scheme_text = "+".join(presented) or None
        if not presented:
            wanted = {"api-key": "an Api-Key header", "bearer": "an Authorization: Bearer header"}
            return None, False, f"Missing API key: send {wanted.get(mode, 'an Api-Key header')}."
        if not any(allowed[name] for name in presented):
            expected = "Api-Key" if mode == "api-key" else "Authorization: Bearer"
            return scheme_text, False, f"This server accepts the {expected} header only."
        return scheme_text, False, "Not authorized to generate an image: invalid API key."

    def bad_request(self, status: int, detail: str) -> Reply:
        title = "Request Entity Too Large" if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE else "Bad Request"
        if self.options.bad_request_style == "error":
            return json_reply(status, {"error": detail})
        return problem(status, title, detail)

    def inflight_reply(self) -> Reply:
        limit = self.options.inflight_limit
        headers: tuple[tuple[str, str], ...] = ()
        if self.options.inflight_retry_after_s is not None:
            headers = (("Retry-After", str(self.options.inflight_retry_after_s)),)
        document = {
            "error": f"Too many requests in flight: at most {limit} images may be in progress at once.",
            "reject_reason": "inflight_limit",
            "max_inflight_requests": limit,
        }
        return json_reply(429, document, headers)

    def _download(self, path: str, query: str) -> Reply:
        match = _IMAGE_PATH.fullmatch(path)
        if match is None:
            return problem(404, "Not Found", "The requested URL was not found on the server.")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        expires, signature = params.get("exp", [None])[0], params.get("sig", [None])[0]
        found = self.store.lookup(match.group(1), expires, signature, self.now())
        truncated = found.status == HTTPStatus.OK and self.take("truncate_downloads_next")
        with self._lock:
            self._downloads.append(DownloadRecord(match.group(1), found.status, truncated, self.now()))
        log.info("remixd.sandbox.download", status=found.status, truncated=truncated)
        if found.data is not None:
            self.v2.downloaded(match.group(1))
        if found.data is not None:
            action: Action = "truncate" if truncated else "drip" if self.take("drip_downloads_next") else "send"
            return Reply(200, found.data, "image/png", action=action)
        messages = {
            "signature": "Invalid or missing signature.",
            "unknown": "No such image.",
            "expired": "This image link has expired.",
        }
        return json_reply(found.status, {"error": messages[found.reason]})
