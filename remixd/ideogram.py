"""The one-shot HTTP client for Ideogram's Remix API (or a gateway in front of it): remix() and download().

No retries in here (house style, habit 10): each call makes one attempt and raises the error tree, and the
worker decides what to try again. What it needs to decide well is in the error: `ApiUnavailable.sent` says
whether the request may have run (and been billed), `retry_after` and `inflight_limit` come from a 429.

The API key only ever goes to `base_url`: result URLs are signed and need none, and the POST never follows a
redirect (requests keeps custom headers such as Api-Key across a redirect to another host).
"""

from __future__ import annotations

import email.utils
import io
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests
import structlog
import urllib3.exceptions
from PIL import Image
from pydantic import ValidationError

from remixd import __version__, secrets
from remixd.apischema import LEGACY_PATH, RemixRequest, RemixResponse
from remixd.errors import ApiError, ApiRejected, ApiUnavailable, AuthError, UrlExpired

log = structlog.get_logger(__name__)

USER_AGENT = f"remixd/{__version__}"
CONNECT_TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an answer with 8 results is a few KB; a bigger one is an error page
MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
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
_SHARED_SECOND_LEVEL = ("co", "com", "net", "org", "gov", "ac", "edu")  # example.co.uk: no "co.uk" parent


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
        self.base_url = base_url.rstrip("/")
        self._auth_headers = (
            {"Api-Key": api_key} if auth == "api-key" else {"Authorization": f"Bearer {api_key}"}
        )
        self._auth = auth
        self._session = session
        self._timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        self._download_timeout = (min(CONNECT_TIMEOUT_S, download_timeout_s), download_timeout_s)
        self._max_download_bytes = max_download_bytes
        self._key_source = key_source
        self._clock = clock
        api_host = (urllib.parse.urlsplit(self.base_url).hostname or "").lower()
        allowed = {api_host, _parent_domain(api_host), *map(_host_rule, allowed_result_hosts)}
        self._result_hosts = tuple(sorted(host for host in allowed if host))

    def endpoint_url(self, request: RemixRequest) -> str:
        return self.base_url + request.endpoint_path()

    # ------------------------------------------------------------------------------------------- remix

    def remix(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> RemixResponse:
        """One POST. Raises ApiRejected / AuthError / ApiUnavailable (see the module docstring)."""
        url = self.endpoint_url(request)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self._auth_headers}
        started = time.monotonic()
        try:
            response = self._session.post(
                url,
                files=_multipart(request, image, filename, content_type),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
            with response:
                body = _read(response, MAX_ANSWER_BYTES)
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
            return _parse_success(body, response.status_code)
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
                url, files=probe, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
            )
            with response:
                body = _read(response, MAX_ANSWER_BYTES) or b""
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
        document = _json_or_text(body)
        said = _message(document) or response.reason or "no message"
        reject_reason = document.get("reject_reason") if isinstance(document, dict) else None
        retry_after = _retry_after(response.headers.get("Retry-After"), self._clock)
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
                f"the API failed ({status}): {said}; {UNKNOWN_OUTCOME}",
                "a 5xx after the upload may still have been billed",
                sent=True,
                retry_after=retry_after,
                **common,
            )
        if 300 <= status < 400:  # noqa: PLR2004
            location = response.headers.get("Location", "?")
            return ApiRejected(
                f"the API answered {status}, a redirect to {_short(location)}",
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
        """GET a result URL (no key sent), within the size cap, and check the bytes decode as an image.

        403/404/410 -> UrlExpired; 408/429/5xx, connection trouble, a short body or undecodable bytes ->
        ApiUnavailable(sent=False) (downloads are free to retry); anything else -> ApiRejected.
        """
        for _ in range(MAX_REDIRECTS + 1):
            self._check_result_url(url)
            try:
                response = self._session.get(
                    url,
                    headers={"Accept": "image/*", "User-Agent": USER_AGENT},
                    timeout=self._download_timeout,
                    allow_redirects=False,  # each hop is checked against the allowed hosts
                    stream=True,
                )
                with response:
                    if response.is_redirect:
                        url = urllib.parse.urljoin(url, response.headers.get("Location", ""))
                        continue
                    return self._download_body(url, response)
            except requests.RequestException as error:
                raise ApiUnavailable(
                    f"downloading {_short(url)} failed: {_reason(error)}", "remixd tries again", sent=False
                ) from None
        raise ApiRejected(f"downloading {_short(url)} took more than {MAX_REDIRECTS} redirects")

    def _download_body(self, url: str, response: requests.Response) -> bytes:
        status = response.status_code
        if status in (403, 404, 410):
            raise UrlExpired(
                f"the result {_short(url)} is no longer available ({status})",
                "result links expire after 24 hours; the image cannot be fetched any more",
                http_status=status,
                response=_json_or_text(_read(response, MAX_ANSWER_BYTES) or b""),
            )
        if status in (408, 429) or status >= 500:  # noqa: PLR2004
            raise ApiUnavailable(
                f"downloading {_short(url)} failed ({status})",
                "remixd tries again",
                http_status=status,
                sent=False,
                retry_after=_retry_after(response.headers.get("Retry-After"), self._clock),
            )
        if status != 200:  # noqa: PLR2004
            raise ApiRejected(f"downloading {_short(url)} answered {status}", http_status=status)
        declared = _content_length(response)
        if declared is not None and declared > self._max_download_bytes:
            raise ApiRejected(
                f"the result {_short(url)} is {declared} bytes, over api.max_download_bytes "
                f"({self._max_download_bytes})",
                "raise api.max_download_bytes if results this large are expected",
            )
        data = _read(response, self._max_download_bytes)
        if data is None:
            raise ApiRejected(
                f"the result {_short(url)} is over api.max_download_bytes ({self._max_download_bytes})",
                "raise api.max_download_bytes if results this large are expected",
            )
        if declared is not None and len(data) != declared and not response.headers.get("Content-Encoding"):
            raise ApiUnavailable(
                f"the download of {_short(url)} was cut short ({len(data)} of {declared} bytes)",
                "remixd tries again",
                sent=False,
            )
        _check_image(data, url)
        return data

    def _check_result_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
            raise ApiRejected(f"the API returned a result URL remixd will not fetch: {_short(url)}")
        if not any(host == rule or host.endswith("." + rule) for rule in self._result_hosts):
            raise ApiRejected(
                f"the result URL's host {host} is not the API's ({', '.join(sorted(self._result_hosts))})",
                f"if the gateway serves results from {host}, add it to api.allowed_result_hosts",
            )


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


def _read(response: requests.Response, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes (stops reading there: a huge answer costs nothing)."""
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_success(body: bytes, status: int) -> RemixResponse:
    """Ideogram's native body; a gateway's `{code, message, request_id, data}` wrapper only around it.

    A 200 that does not parse is not retried (ApiRejected): it ran and was probably billed, and the same
    gateway answers the same way again.
    """
    document = _json_or_text(body)
    if isinstance(document, dict) and isinstance(document.get("data"), dict) and "code" in document:
        inner = document["data"]
        if "task_id" in inner and "created" not in inner:
            raise ApiRejected(
                f"the API answered {status} with an asynchronous task ({_snippet(document)})",
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
            f"the API answered {status} with an unexpected body: {_snippet(document)}",
            f"check api.base_url points at Ideogram or a pass-through gateway; {UNKNOWN_OUTCOME}",
            http_status=status,
            response=document,
        ) from None


def _withhold_unsafe(item: Any) -> Any:
    """An item marked unsafe has no image, whatever a gateway left in its url (never download it)."""
    if isinstance(item, dict) and item.get("is_image_safe") is False:
        return {**item, "url": None}
    return item


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _message(document: Any) -> str | None:
    if isinstance(document, dict):
        for key in ("error", "detail", "message", "title"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return _snippet(value, 300)
            if isinstance(value, dict):  # {"error": {"message": ...}} (OpenAI-style gateways)
                inner = _message(value)
                if inner:
                    return inner
    if isinstance(document, str) and document.strip():
        return _snippet(document, 300)
    return None


def _snippet(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = secrets.scrub(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(value: str | None, clock: Callable[[], float]) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - clock())


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _transport_error(error: requests.RequestException, url: str, timeout_s: float) -> ApiError:
    """Tell "never reached the server" (safe to resend) from "may have run" (resending may double-bill)."""
    if isinstance(error, _BAD_URL):
        return ApiRejected(f"the API address {url} is not usable: {_reason(error)}", "fix api.base_url")
    reason = getattr(error.args[0], "reason", None) if error.args else None
    never_connected = isinstance(error, _NEVER_CONNECTED) or isinstance(reason, _NEVER_CONNECTED_REASONS)
    if never_connected:
        return ApiUnavailable(
            f"could not connect to {_short(url)}: {_reason(error)}",
            "check the network and api.base_url; nothing was sent, remixd tries again",
            sent=False,
        )
    if isinstance(error, requests.exceptions.Timeout):
        return ApiUnavailable(
            f"no answer from {_short(url)} within {timeout_s:g} s; {UNKNOWN_OUTCOME}",
            "raise api.timeout_s if large requests need longer",
            sent=True,
        )
    return ApiUnavailable(
        f"the connection to {_short(url)} broke after the request was sent ({_reason(error)}); "
        f"{UNKNOWN_OUTCOME}",
        "check the spend on Ideogram's dashboard before sending this input again",
        sent=True,
    )


def _reason(error: BaseException) -> str:
    """The innermost useful words of a requests/urllib3 error chain."""
    inner: BaseException = error
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    if isinstance(reason, BaseException):
        inner = reason
    return _snippet(str(inner) or type(inner).__name__, 200)


def _check_image(data: bytes, url: str) -> None:
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiUnavailable(
            f"the result {_short(url)} is not a readable image ({len(data)} bytes)",
            "remixd tries again",
            sent=False,
        ) from None


def _short(url: str) -> str:
    """A URL without its query (signed URLs carry long signatures nobody needs in a message)."""
    parts = urllib.parse.urlsplit(url)
    return _snippet(urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), 200)


def _parent_domain(host: str) -> str:
    """api.ideogram.ai -> ideogram.ai (results live there); IPs, two-label and co.uk-style hosts stay."""
    labels = host.split(".")
    if len(labels) < 3 or host.replace(".", "").isdigit() or ":" in host:  # noqa: PLR2004
        return host
    parent = labels[1:]
    if len(parent) == 2 and parent[0] in _SHARED_SECOND_LEVEL and len(parent[1]) == 2:  # noqa: PLR2004
        return host
    return ".".join(parent)


def _host_rule(entry: str) -> str:
    """allowed_result_hosts: "cdn.example.com", "*.example.com" or ".example.com" mean host + subdomains."""
    return entry.strip().lower().removeprefix("*").removeprefix(".")
