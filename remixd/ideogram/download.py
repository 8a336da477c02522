"""Fetching result images: which URLs remixd will follow, and what it accepts back.

The answer of the API (or of a gateway in front of it) is not trusted blindly. A result URL must be http(s),
carry no credentials, and point at the API's host or its parent domain (Ideogram answers from
`api.ideogram.ai` with URLs on `ideogram.ai`) on the API's port, or at a host in `api.allowed_result_hosts`
(any port, or only the port of an entry written as a URL with one); every redirect hop is checked the same
way. The port matters: another port of the API's host is another service (an admin page, a metadata
endpoint behind a gateway), not the API. No key is ever sent: result URLs are signed. The body is read up to
`api.max_download_bytes` and no further, and must decode completely as a PNG, JPEG or WebP of a sane size.

No retries in here: `work/retry.py` decides, from the error type, what to try again.
"""

from __future__ import annotations

import io
import urllib.parse
from http import HTTPStatus

import requests
from PIL import Image, UnidentifiedImageError

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import ApiRejected, ApiUnavailable, UrlExpired
from remixd.ideogram.http import (
    USER_AGENT,
    Deadline,
    Environment,
    content_length,
    json_or_text,
    read_limited,
    reason_of,
    retry_after_s,
    short_url,
)

__all__ = ["MAX_REDIRECTS", "MAX_RESULT_PIXELS", "ResultDownloader", "host_rule", "parent_domain"]

MAX_REDIRECTS = 5
MAX_ERROR_BODY_BYTES = 64 * 1024  # an expired link's answer is a line of XML or JSON; keep no more
MAX_RESULT_PIXELS = 64_000_000  # Ideogram renders ~1-2 MP; a result claiming more is a decompression bomb
RESULT_FORMATS = ("PNG", "JPEG", "WEBP")
_SHARED_SECOND_LEVEL = ("co", "com", "net", "org", "gov", "ac", "edu")  # example.co.uk: no "co.uk" parent


class ResultDownloader:
    """GETs result URLs within the host rules and the size cap; see the module docstring."""

    def __init__(
        self,
        session: requests.Session,
        api_base_url: str,
        timeout_s: float,
        max_bytes: int,
        allowed_result_hosts: tuple[str, ...] = (),
        *,
        environment: Environment,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._session = session
        self._environment = environment  # proxies and CA bundle, read once (ideogram.http.environment_of)
        self.timeout_s = timeout_s  # one total deadline per download, redirects included
        self.max_bytes = max_bytes
        self._clock = clock
        api = urllib.parse.urlsplit(api_base_url)
        api_host, api_port = (api.hostname or "").lower(), effective_port(api)
        rules = {(api_host, api_port), (parent_domain(api_host), api_port), *map(host_rule, allowed_result_hosts)}
        self.allowed = tuple(sorted((rule for rule in rules if rule[0]), key=lambda rule: (rule[0], rule[1] or 0)))

    def download(self, url: str) -> bytes:
        """GET a result URL (no key sent), within the size cap, and check the bytes decode as an image.

        403/404/410 -> UrlExpired; 408/429/5xx, connection trouble, a short body or undecodable bytes ->
        ApiUnavailable(sent=False) (downloads are free to retry); a URL or host remixd will not fetch, a body
        over the cap, an image with too many pixels and any other status -> ApiRejected.
        """
        deadline = Deadline(self.timeout_s, self._clock.monotonic)
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            try:
                response = self._session.get(
                    url,
                    headers={"Accept": "image/*", "User-Agent": USER_AGENT},
                    timeout=deadline.timeouts(),
                    allow_redirects=False,  # each hop is checked against the allowed hosts
                    stream=True,
                    **self._environment.for_url(url),
                )
                with response:
                    if response.is_redirect:
                        url = urllib.parse.urljoin(url, response.headers.get("Location", ""))
                        continue
                    return self._body(url, response, deadline)
            except requests.RequestException as error:
                raise ApiUnavailable(
                    f"downloading {short_url(url)} failed: {reason_of(error)}", "remixd tries again", sent=False
                ) from None
        raise ApiRejected(
            f"downloading {short_url(url)} took more than {MAX_REDIRECTS} redirects",
            "the result host keeps redirecting; check the gateway that serves the results",
        )

    def check_url(self, url: str) -> None:
        """Raise ApiRejected unless `url` is one remixd may fetch (http(s), no credentials, allowed host)."""
        try:
            parts = urllib.parse.urlsplit(url)
            host = (parts.hostname or "").lower()
            credentials = parts.username or parts.password
            port = effective_port(parts)
        except ValueError:  # an unbalanced "[" in the host, a port that is not a number, …
            parts, host, credentials, port = None, "", None, None
        if parts is None or parts.scheme not in ("http", "https") or not host or credentials:
            raise ApiRejected(
                f"the API returned a result URL remixd will not fetch: {short_url(url)}",
                "result URLs must be http(s) without credentials; check the gateway that rewrites them",
            )
        same_host = [rule for rule in self.allowed if host == rule[0] or host.endswith("." + rule[0])]
        if not same_host:
            allowed = ", ".join(sorted({rule[0] for rule in self.allowed}))
            raise ApiRejected(
                f"the result URL's host {host} is not the API's ({allowed})",
                f"if the gateway serves results from {host}, add it to api.allowed_result_hosts",
            )
        if not any(rule_port in (None, port) for _, rule_port in same_host):
            raise ApiRejected(
                f"the result URL {short_url(url)} is on port {port}, not the API's",
                f"if the gateway serves results there, add {parts.scheme}://{host}:{port} to api.allowed_result_hosts",
            )

    def _body(self, url: str, response: requests.Response, deadline: Deadline) -> bytes:
        status = response.status_code
        if status in (403, 404, 410):
            raise UrlExpired(
                f"the result {short_url(url)} is no longer available ({status})",
                "result links expire after 24 hours; the image cannot be fetched any more",
                http_status=status,
                response=json_or_text(read_limited(response, MAX_ERROR_BODY_BYTES, deadline) or b""),
            )
        if (
            status in (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS)
            or status >= HTTPStatus.INTERNAL_SERVER_ERROR
        ):
            raise ApiUnavailable(
                f"downloading {short_url(url)} failed ({status})",
                "remixd tries again",
                http_status=status,
                sent=False,
                retry_after=retry_after_s(response.headers.get("Retry-After"), self._clock.wall()),
            )
        if status != HTTPStatus.OK:
            raise ApiRejected(
                f"downloading {short_url(url)} answered {status}",
                "the result host refused the download; check the gateway that serves the results",
                http_status=status,
            )
        too_big = ApiRejected(
            f"the result {short_url(url)} is over api.max_download_bytes ({self.max_bytes} bytes)",
            "raise api.max_download_bytes if results this large are expected",
        )
        declared = content_length(response)
        if declared is not None and declared > self.max_bytes:
            raise too_big
        data = read_limited(response, self.max_bytes, deadline)
        if data is None:
            raise too_big
        if declared is not None and len(data) != declared and not response.headers.get("Content-Encoding"):
            raise ApiUnavailable(
                f"the download of {short_url(url)} was cut short ({len(data)} of {declared} bytes)",
                "remixd tries again",
                sent=False,
            )
        check_image(data, url)
        return data


def check_image(data: bytes, url: str) -> None:
    """The bytes are a whole PNG, JPEG or WebP: header, size and every pixel decode (a truncated body sent
    without a Content-Length fails here), and it is not a decompression bomb."""
    try:
        with Image.open(io.BytesIO(data), formats=RESULT_FORMATS) as image:
            pixels = image.width * image.height
            if pixels <= MAX_RESULT_PIXELS:
                image.verify()  # PNG chunk CRCs, which decoding alone does not check
        if pixels > MAX_RESULT_PIXELS:
            raise ApiRejected(
                f"the result {short_url(url)} claims {pixels // 1_000_000} MP; remixd accepts at most "
                f"{MAX_RESULT_PIXELS // 1_000_000} MP",
                "this is not an image Ideogram makes; check the gateway that serves the results",
            )
        with Image.open(io.BytesIO(data), formats=RESULT_FORMATS) as image:
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiRejected(
            f"the result {short_url(url)} claims more pixels than remixd accepts "
            f"({MAX_RESULT_PIXELS // 1_000_000} MP at most)",
            "this is not an image Ideogram makes; check the gateway that serves the results",
        ) from None
    except UnidentifiedImageError:
        looks = "an HTML page" if data.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")) else None
        raise ApiUnavailable(
            f"the result {short_url(url)} is not a PNG, JPEG or WebP image ({len(data)} bytes"
            + (f", it looks like {looks})" if looks else ")"),
            "remixd tries again; a proxy or CDN error page usually goes away",
            sent=False,
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ApiUnavailable(
            f"the result {short_url(url)} is a damaged image ({len(data)} bytes: {error})",
            "remixd tries again",
            sent=False,
        ) from None


def parent_domain(host: str) -> str:
    """api.ideogram.ai -> ideogram.ai (results live there); IPs, two-label and co.uk-style hosts stay."""
    labels = host.split(".")
    if len(labels) < 3 or host.replace(".", "").isdigit() or ":" in host:  # noqa: PLR2004 — name.domain.tld
        return host
    parent = labels[1:]
    if len(parent) == 2 and parent[0] in _SHARED_SECOND_LEVEL and len(parent[1]) == 2:  # noqa: PLR2004 — co.uk
        return host
    return ".".join(parent)


def host_rule(entry: str) -> tuple[str, int | None]:
    """allowed_result_hosts: "cdn.example.com", "*.example.com" or ".example.com" mean host + subdomains on
    any port; a URL means its host, on any port ("https://cdn.example.com/images") or only the one it names
    ("http://127.0.0.1:9000"). Returns (host, port or None for any)."""
    entry = entry.strip().lower()
    port = None
    if "://" in entry:
        try:
            parts = urllib.parse.urlsplit(entry)
            entry, port = parts.hostname or "", parts.port
        except ValueError:
            return "", None
    return entry.removeprefix("*").removeprefix("."), port


def effective_port(parts: urllib.parse.SplitResult) -> int | None:
    """The port a URL connects to: its own, or its scheme's default. Raises ValueError for a bad port."""
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
