"""The one-shot HTTP client for Ideogram's Remix API (or a gateway in front of it): remix() and download().

No retries in here (house style, habit 10): each call makes one attempt and raises the error tree, and the
worker decides what to try again. What it needs to decide well is in the error: `ApiUnavailable.sent` says
whether the request may have run (and been billed), `retry_after` and `inflight_limit` come from a 429.

The API key only ever goes to `base_url`: result URLs are signed and need none, and the POST never follows a
redirect (requests keeps custom headers such as Api-Key across a redirect to another host). Which result URLs
are fetched, and what is accepted back, is `ideogram/download.py`'s business; `download()` here hands over to it.
What an answer means (the status table, the gateway wrapper, a broken connection) is `ideogram/answers.py`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Protocol

import requests
import structlog

from remixd import secrets
from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import ApiRejected, AuthError
from remixd.ideogram.answers import UNKNOWN_OUTCOME, parse_success, status_error, transport_error
from remixd.ideogram.download import ResultDownloader
from remixd.ideogram.http import (
    USER_AGENT,
    Deadline,
    json_or_text,
    read_limited,
)
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse
from remixd.ideogram.routes import LEGACY_PATH

log = structlog.get_logger(__name__)

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an answer with 8 results is a few KB; a bigger one is an error page


class RemixApi(Protocol):
    """What the worker and the service need of a client (the metrics wrapper provides it too)."""

    def endpoint_url(self, request: RemixRequest) -> str: ...
    def remix(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> RemixResponse: ...
    def download(self, url: str) -> bytes: ...
    def check_key(self) -> None: ...


class IdeogramClient:
    def __init__(  # noqa: PLR0917  # positional order is the interface in the design notes
        self,
        base_url: str,
        api_key: str,
        auth: str,
        session: requests.Session,
        timeout_s: float,
        download_timeout_s: float,
        max_download_bytes: int,
        allowed_result_hosts: tuple[str, ...] = (),
        *,
        key_source: str = "$IDEOGRAM_API_KEY",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if auth not in ("api-key", "bearer"):
            raise ValueError(f"auth must be 'api-key' or 'bearer', not {auth!r}")
        secrets.register(api_key)  # before anything can fail and print it
        # A gateway's basic-auth password in the URL (https://user:PASSWORD@gw/…) is as secret as the key:
        # it is used for the POST and never shown (messages and sidecars use `base_url`, without it).
        self._post_base, self.base_url = _split_credentials(base_url.rstrip("/"))
        self._auth_headers = {"Api-Key": api_key} if auth == "api-key" else {"Authorization": f"Bearer {api_key}"}
        self._auth = auth
        self._session = session
        self.timeout_s = timeout_s  # a total deadline per request (ideogram/http.py, Deadline)
        self._key_source = key_source
        self._clock = clock
        self._downloader = ResultDownloader(
            session, self._post_base, download_timeout_s, max_download_bytes, allowed_result_hosts, clock=clock
        )

    def endpoint_url(self, request: RemixRequest) -> str:
        """Where a request goes, as shown in sidecars and messages (without any credentials)."""
        return self.base_url + request.endpoint_path()

    # ------------------------------------------------------------------------------------------- remix

    def remix(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> RemixResponse:
        """One POST. Raises ApiRejected / AuthError / ApiUnavailable (see the module docstring)."""
        url = self.endpoint_url(request)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self._auth_headers}
        started = self._clock.monotonic()
        deadline = Deadline(self.timeout_s, self._clock.monotonic)
        try:
            response = self._session.post(
                self._post_base + request.endpoint_path(),
                files=_multipart(request, image, filename, content_type),
                headers=headers,
                timeout=deadline.timeouts(),
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES, deadline)
        except requests.RequestException as error:
            raise transport_error(error, url, self.timeout_s) from None
        elapsed_ms = round((self._clock.monotonic() - started) * 1000)
        log.debug("remixd.api.answered", endpoint=url, status=response.status_code, duration_ms=elapsed_ms)
        if body is None:
            raise ApiRejected(
                f"the API answered {response.status_code} with more than {MAX_ANSWER_BYTES} bytes",
                "check api.base_url: this does not look like Ideogram's API",
                http_status=response.status_code,
            )
        if 200 <= response.status_code < 300:  # noqa: PLR2004
            answer = parse_success(body, response.status_code)
            if len(answer.data) > request.num_images:
                # Each item is a download of up to max_download_bytes: an answer listing thousands of
                # URLs must not turn into thousands of downloads.
                raise ApiRejected(
                    f"the API answered {response.status_code} with {len(answer.data)} images for a request "
                    f"of {request.num_images}",
                    f"check api.base_url points at Ideogram or a pass-through gateway; {UNKNOWN_OUTCOME}",
                    http_status=response.status_code,
                    response=json_or_text(body),
                )
            return answer
        raise status_error(response, body, auth_hint=self._auth_hint(), now=self._clock.wall())

    def check_key(self) -> None:
        """Try the key without spending: an `image_request` with no prompt and no image. Auth is checked
        before the body, so a good key earns a 400 (never billed) and a bad one 401/403 (AuthError).
        Raises AuthError / PaymentRequired / ApiUnavailable / ApiRejected (e.g. 404: a wrong base_url)."""
        url = self.base_url + LEGACY_PATH
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self._auth_headers}
        probe = [("image_request", (None, b"{}", "application/json"))]
        deadline = Deadline(self.timeout_s, self._clock.monotonic)
        try:
            response = self._session.post(
                self._post_base + LEGACY_PATH,
                files=probe,
                headers=headers,
                timeout=deadline.timeouts(),
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES, deadline) or b""
        except requests.RequestException as error:
            raise transport_error(error, url, self.timeout_s) from None
        if response.status_code in (400, 422, 429) or 200 <= response.status_code < 300:  # noqa: PLR2004
            answer = status_error(response, body, auth_hint=self._auth_hint(), now=self._clock.wall())
            if not isinstance(answer, AuthError):  # a billing reject_reason still means "cannot spend"
                return
        raise status_error(response, body, auth_hint=self._auth_hint(), now=self._clock.wall())

    def _auth_hint(self) -> str:
        if self._auth == "api-key":
            return (
                f"check the key in {self._key_source}; it was sent as the Api-Key header (api.auth: "
                "api-key). A gateway (base_url ending in /ideogram) usually needs api.auth: bearer"
            )
        return (
            f"check the key in {self._key_source}; it was sent as Authorization: Bearer (api.auth: bearer). "
            "api.ideogram.ai itself needs api.auth: api-key"
        )

    # ---------------------------------------------------------------------------------------- download

    def download(self, url: str) -> bytes:
        """GET a result URL, without the key, within the host rules and the size cap (see `ideogram/download.py`)."""
        return self._downloader.download(url)


# ----------------------------------------------------------------------------------------------- helpers


def _multipart(
    request: RemixRequest, image: bytes, filename: str, content_type: str
) -> list[tuple[str, tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]]]:
    """Legacy: an `image_request` JSON part + `image_file`. V_3: flat text fields, JSON `color_palette`,
    repeated `style_codes`, and `image` (reference §1.1, §2)."""
    fields = request.wire_fields()
    parts: list[tuple[str, tuple[str | None, bytes | str] | tuple[str | None, bytes | str, str]]] = []
    if not request.is_v3():
        parts.append(("image_request", (None, json.dumps(fields).encode(), "application/json")))
    else:
        for name, value in fields.items():
            if isinstance(value, dict):
                parts.append((name, (None, json.dumps(value).encode(), "application/json")))
            elif isinstance(value, list | tuple):
                parts.extend((name, (None, str(item))) for item in value)
            else:
                parts.append((name, (None, str(value))))
    parts.append((request.image_part_name(), (filename, image, content_type)))
    return parts


def _split_credentials(base_url: str) -> tuple[str, str]:
    """(the URL to post to, the URL to show): the password of a `user:password@` URL is registered as a
    secret and left out of the shown one."""
    try:
        parts = urllib.parse.urlsplit(base_url)
        password = parts.password
    except ValueError:
        return base_url, base_url
    if parts.username is None and password is None:
        return base_url, base_url
    secrets.register(password)
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return base_url, urllib.parse.urlunsplit(shown)
