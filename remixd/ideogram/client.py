"""The one-shot HTTP client for Ideogram's Remix API (or a gateway in front of it): remix() and download().

No retries in here (house style, habit 10): each call makes one attempt and raises the error tree, and the
worker decides what to try again. What it needs to decide well is in the error: `ApiUnavailable.sent` says
whether the request may have run (and been billed), `retry_after` and `inflight_limit` come from a 429.

The API key only ever goes to `base_url`: result URLs are signed and need none, and the POST never follows a
redirect (requests keeps custom headers such as Api-Key across a redirect to another host). Which result URLs
are fetched, and what is accepted back, is `ideogram/download.py`'s business; `download()` here hands over to it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

import requests
import structlog
import urllib3.exceptions
from pydantic import ValidationError

from remixd import secrets
from remixd.errors import ApiError, ApiRejected, ApiUnavailable, AuthError
from remixd.ideogram.download import ResultDownloader
from remixd.ideogram.http import (
    CONNECT_TIMEOUT_S,
    USER_AGENT,
    json_or_text,
    message_of,
    read_limited,
    reason_of,
    retry_after_s,
    short_url,
    snippet,
)
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse
from remixd.ideogram.routes import LEGACY_PATH

__all__ = ["USER_AGENT", "IdeogramClient", "PaymentRequired"]

log = structlog.get_logger(__name__)

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an answer with 8 results is a few KB; a bigger one is an error page
SAFETY_HINT = "the prompt or image failed Ideogram's safety check; change the prompt or the image"
UNKNOWN_OUTCOME = "the outcome is unknown: Ideogram may have run and billed it"
_BILLING_REASONS = ("insufficient_funds", "daily_limit", "credit", "balance", "quota")
_BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)
# Failures that happen before a byte of the request left: resending cannot double-bill.
_NEVER_CONNECTED = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.SSLError,
    requests.exceptions.ProxyError,
)
_NEVER_CONNECTED_REASONS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)


class RemixApi(Protocol):
    """What the worker and the service need of a client (the metrics wrapper provides it too)."""

    def endpoint_url(self, request: RemixRequest) -> str: ...
    def remix(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> RemixResponse: ...
    def download(self, url: str) -> bytes: ...
    def check_key(self) -> None: ...


class PaymentRequired(AuthError):
    """402 (or a billing reject_reason): no retry helps until the balance or limit changes, for any file.

    An AuthError so the worker pauses every submission instead of failing each input in turn.
    """

    kind = "payment_required"


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
        clock: Callable[[], float] = time.time,
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
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
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
        started = time.monotonic()
        try:
            response = self._session.post(
                self._post_base + request.endpoint_path(),
                files=_multipart(request, image, filename, content_type),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES)
        except requests.RequestException as error:
            raise _transport_error(error, url, self._timeout[1]) from None
        elapsed_ms = round((time.monotonic() - started) * 1000)
        log.debug("remixd.api.answered", endpoint=url, status=response.status_code, duration_ms=elapsed_ms)
        if body is None:
            raise ApiRejected(
                f"the API answered {response.status_code} with more than {MAX_ANSWER_BYTES} bytes",
                "check api.base_url: this does not look like Ideogram's API",
                http_status=response.status_code,
            )
        if 200 <= response.status_code < 300:  # noqa: PLR2004
            answer = _parse_success(body, response.status_code)
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
        raise self._status_error(response, body)

    def check_key(self) -> None:
        """Try the key without spending: an `image_request` with no prompt and no image. Auth is checked
        before the body, so a good key earns a 400 (never billed) and a bad one 401/403 (AuthError).
        Raises AuthError / PaymentRequired / ApiUnavailable / ApiRejected (e.g. 404: a wrong base_url)."""
        url = self.base_url + LEGACY_PATH
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self._auth_headers}
        probe = [("image_request", (None, b"{}", "application/json"))]
        try:
            response = self._session.post(
                self._post_base + LEGACY_PATH,
                files=probe,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES) or b""
        except requests.RequestException as error:
            raise _transport_error(error, url, self._timeout[1]) from None
        if response.status_code in (400, 422, 429) or 200 <= response.status_code < 300:  # noqa: PLR2004
            answer = self._status_error(response, body)
            if not isinstance(answer, AuthError):  # a billing reject_reason still means "cannot spend"
                return
        raise self._status_error(response, body)

    def _status_error(  # noqa: PLR0911  # one return per row of the status table
        self, response: requests.Response, body: bytes
    ) -> ApiError:
        status = response.status_code
        document = json_or_text(body)
        said = message_of(document) or response.reason or "no message"
        reject_reason = document.get("reject_reason") if isinstance(document, dict) else None
        retry_after = retry_after_s(response.headers.get("Retry-After"), self._clock)
        common: dict[str, Any] = {"http_status": status, "response": document}
        if status == 402 or (  # noqa: PLR2004
            isinstance(reject_reason, str) and any(word in reject_reason for word in _BILLING_REASONS)
        ):
            return PaymentRequired(
                f"the API refused to run more work ({status}): {said}",
                "top up the Ideogram balance or raise the account's limit; submissions pause until then",
                **common,
            )
        if status in (401, 403):
            return AuthError(f"the API refused the key ({status}): {said}", self._auth_hint(), **common)
        if status == 429:  # noqa: PLR2004
            # A 429 is rejected before it runs and is not billed (reference §4.1), hence sent=False.
            return ApiUnavailable(
                f"the API is busy (429{f' {reject_reason}' if reject_reason else ''}): {said}",
                "remixd waits and tries again; lower api.max_in_flight_images if this keeps happening",
                sent=False,
                retry_after=retry_after,
                inflight_limit=reject_reason == "inflight_limit",
                **common,
            )
        if status == 408:  # noqa: PLR2004  # the server gave up waiting for our request: it never ran
            return ApiUnavailable(f"the API timed out reading the upload (408): {said}", sent=False, **common)
        if status >= 500:  # noqa: PLR2004
            return ApiUnavailable(
                f"the API failed ({status}): {said}",
                "Ideogram bills no failed generation, so remixd sends it again after a pause",
                sent=True,
                retry_after=retry_after,
                **common,
            )
        if 300 <= status < 400:  # noqa: PLR2004
            location = response.headers.get("Location", "?")
            return ApiRejected(
                f"the API answered {status}, a redirect to {short_url(location)}",
                "set api.base_url to the final address (remixd does not resend an upload to another place)",
                **common,
            )
        hints = {
            400: "the API found the request invalid; compare the rule's request with the API reference",
            404: "no such endpoint: check api.base_url (a gateway usually needs its prefix, e.g. /ideogram)",
            413: "the image is over the API's upload limit; lower its size or resolution",
            422: SAFETY_HINT,
        }
        hint = hints.get(status, "the API refused this request; sending it again gives the same answer")
        return ApiRejected(f"the API rejected the request ({status}): {said}", hint, **common)

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


def _parse_success(body: bytes, status: int) -> RemixResponse:
    """Ideogram's native body; a gateway's `{code, message, request_id, data}` wrapper only around it.

    A 200 that does not parse is not retried (ApiRejected): it ran and was probably billed, and the same
    gateway answers the same way again.
    """
    document = json_or_text(body)
    if isinstance(document, dict) and isinstance(document.get("data"), dict) and "code" in document:
        inner = document["data"]
        if "task_id" in inner and "created" not in inner:
            raise ApiRejected(
                f"the API answered {status} with an asynchronous task ({snippet(document)})",
                "this gateway does not answer with results; use one that passes Ideogram's answer through",
                http_status=status,
                response=document,
            )
        document = inner
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = {**document, "data": [_withhold_unsafe(item) for item in document["data"]]}
    try:
        return RemixResponse.model_validate(document)
    except ValidationError:
        raise ApiRejected(
            f"the API answered {status} with an unexpected body: {snippet(document)}",
            f"check api.base_url points at Ideogram or a pass-through gateway; {UNKNOWN_OUTCOME}",
            http_status=status,
            response=document,
        ) from None


def _withhold_unsafe(item: Any) -> Any:
    """An item marked unsafe has no image, whatever a gateway left in its url (never download it)."""
    if isinstance(item, dict) and item.get("is_image_safe") is False:
        return {**item, "url": None}
    return item


def _transport_error(error: requests.RequestException, url: str, timeout_s: float) -> ApiError:
    """Tell "never reached the server" (safe to resend) from "may have run" (resending may double-bill)."""
    if isinstance(error, _BAD_URL):
        return ApiRejected(f"the API address {url} is not usable: {reason_of(error)}", "fix api.base_url")
    reason = getattr(error.args[0], "reason", None) if error.args else None
    never_connected = isinstance(error, _NEVER_CONNECTED) or isinstance(reason, _NEVER_CONNECTED_REASONS)
    if never_connected:
        return ApiUnavailable(
            f"could not connect to {short_url(url)}: {reason_of(error)}",
            "check the network and api.base_url; nothing was sent, remixd tries again",
            sent=False,
        )
    if isinstance(error, requests.exceptions.Timeout):
        return ApiUnavailable(
            f"no answer from {short_url(url)} within {timeout_s:g} s; {UNKNOWN_OUTCOME}",
            "raise api.timeout_s if large requests need longer",
            sent=True,
        )
    return ApiUnavailable(
        f"the connection to {short_url(url)} broke after the request was sent ({reason_of(error)}); {UNKNOWN_OUTCOME}",
        "check the spend on Ideogram's dashboard before sending this input again",
        sent=True,
    )


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
