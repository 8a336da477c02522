"""The one-shot HTTP client for Ideogram's Remix API (or a gateway in front of it): remix() and download().

No retries in here (the one retry loop is `work/retry.py`, README "Retries never pay twice"): each call makes one
attempt and raises the error tree, and the worker decides what to try again. What it needs to decide well is in the
error: `ApiUnavailable.sent` says whether the request may have run (and been billed), `retry_after` and
`inflight_limit` come from a 429.

The API key only ever goes to `base_url`: result URLs are signed and need none, and the POST never follows a
redirect (requests keeps custom headers such as Api-Key across a redirect to another host). Which result URLs
are fetched, and what is accepted back, is `ideogram/download.py`'s business; `download()` here hands over to it.
What an answer means (the status table, the gateway wrapper, a broken connection) is `ideogram/answers.py`.
How the key is sent, and what a refused key's message says, is `ideogram/auth.py`.
"""

from __future__ import annotations

import base64
import urllib.parse
from http import HTTPStatus
from typing import Protocol

import requests
from pydantic import ValidationError

from remixd import secrets
from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import ApiRejected, ApiUnavailable, AuthError
from remixd.ideogram.answers import UNKNOWN_OUTCOME, parse_success, status_error, transport_error, withhold_unsafe
from remixd.ideogram.auth import auth_headers, auth_hint, split_credentials
from remixd.ideogram.bounded import bound_exchanges
from remixd.ideogram.download import ResultDownloader
from remixd.ideogram.http import (
    USER_AGENT,
    Deadline,
    environment_of,
    json_or_text,
    read_limited,
    snippet,
)
from remixd.ideogram.multipart import Upload, encode, multipart
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import GenerationState, PriceQuote, RemixResponse
from remixd.ideogram.routes import LEGACY_PATH

# An 8x8 PNG: what a price-quote probe uploads (a quote is validated and priced, never run).
_PROBE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAEElEQVR42mNsYIAAJgaKGAAmCACQtTEKkQAAAABJRU5ErkJggg=="
)
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # an answer with 8 results is a few KB; a bigger one is an error page


class RemixApi(Protocol):
    """What the worker and the service need of a client (the metrics wrapper provides it too)."""

    def endpoint_url(self, request: RemixRequest) -> str: ...
    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload: ...
    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse: ...
    def generation(self, generation_id: str) -> GenerationState: ...
    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote: ...
    def download(self, url: str) -> bytes: ...
    def check_key(self) -> None: ...
    def account(self) -> str: ...


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
        async_v2: bool = True,
        probe_request: RemixRequest | None = None,
        rule_header: str | None = None,
    ) -> None:
        self._auth_headers = auth_headers(auth, api_key)  # before anything can fail and print the key
        # A gateway's basic-auth password in the URL (https://user:PASSWORD@gw/…) is as secret as the key:
        # it is used for the POST and never shown (messages and sidecars use `base_url`, without it).
        self._post_base, self.base_url = split_credentials(base_url.rstrip("/"))
        self._auth_hint = auth_hint(auth, key_source)
        self._account = secrets.fingerprint(api_key, self._post_base)
        bound_exchanges(session)  # the total deadline covers sending and the headers too (ideogram.bounded)
        self._session = session
        self._environment = environment_of(session)
        self.timeout_s = timeout_s  # a total deadline per request (ideogram/http.py, Deadline)
        self._clock = clock
        self.async_v2 = async_v2  # v2 routes: submit with async=true and poll (README, "Async generations")
        self.probe_request = probe_request
        # Set only for remixd's built-in sandbox, which stamps the rule on its images: Ideogram and gateways
        # (any `base_url`) never receive it.
        self._rule_header = rule_header
        self._downloader = ResultDownloader(
            session,
            self._post_base,
            download_timeout_s,
            max_download_bytes,
            allowed_result_hosts,
            clock=clock,
            environment=self._environment,
        )

    def account(self) -> str:
        """Which account the requests are made for: a fingerprint of the key (and of a gateway's password in
        `base_url`), the same for the same key, never the key (remixd.secrets.fingerprint)."""
        return self._account

    def endpoint_url(self, request: RemixRequest) -> str:
        """Where a request goes, as shown in sidecars and messages (without any credentials)."""
        return self.base_url + request.endpoint_path()

    # ------------------------------------------------------------------------------------------- remix

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        """The body `remix` sends for the request: on a v2 route with `async_v2`, an async submission.
        Raises ApiRejected when a reference image cannot be read."""
        parts = multipart(request, image, filename, content_type)
        if self.async_v2 and request.route.is_v2:
            parts.insert(len(parts) - 1, ("async", (None, "true")))
        return encode(parts)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        """One POST of `upload` (made by `upload()` for this request). On a v2 route with `async_v2` the answer is
        an acknowledgement (`accepted`): poll `generation()` with its id. Raises ApiRejected / AuthError /
        ApiUnavailable (module docstring). `rule` names the config's rule to the built-in sandbox only
        (`rule_header`)."""
        extra = {self._rule_header: rule} if self._rule_header and rule else {}
        status, body = self._post(request, upload, extra_headers=extra)
        answer = parse_success(body, status)
        problem = None
        if len(answer.data) > request.num_images:
            # Each item is a download of up to max_download_bytes: an answer listing thousands of
            # URLs must not turn into thousands of downloads.
            problem = f"{len(answer.data)} images for a request of {request.num_images}"
        elif request.route.is_v2 and answer.generation_id is None:
            problem = f"no generation_id ({snippet(json_or_text(body))})"
        if problem is not None:
            raise ApiRejected(
                f"the API answered {status} with {problem}",
                f"check api.base_url points at Ideogram or a pass-through gateway; {UNKNOWN_OUTCOME}",
                http_status=status,
                response=json_or_text(body),
            )
        return answer

    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote:
        """A free `dry_run` quote of exactly this request (v2 routes only: elsewhere dry_run could run)."""
        if not request.route.is_v2:
            raise ValueError(f"model {request.model} has no price quotes; only the v2 routes do")
        status, body = self._post(request, encode(multipart(request, image, filename, content_type)), dry_run=True)
        try:
            return PriceQuote.model_validate(json_or_text(body))
        except ValidationError:
            raise ApiRejected(
                f"the API answered {status} to a dry_run with {snippet(json_or_text(body))}, not a price quote",
                "check api.base_url points at Ideogram's v2 API",
                http_status=status,
            ) from None

    def generation(self, generation_id: str) -> GenerationState:
        """One poll of `GET /v2/generations/{id}`. A 429 carries the Retry-After to honour."""
        path = "/v2/generations/" + urllib.parse.quote(generation_id, safe="")
        url = self.base_url + path
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **self._auth_headers}
        deadline = Deadline(self.timeout_s, self._clock.monotonic)
        try:
            response = self._session.get(
                self._post_base + path,
                headers=headers,
                timeout=deadline.timeouts(),
                allow_redirects=False,
                stream=True,
                **self._environment.for_url(self._post_base),
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES, deadline)
        except requests.RequestException as error:
            failure = transport_error(error, url, self.timeout_s)
            raise ApiUnavailable(failure.message, "remixd polls again; nothing is sent twice", sent=False) from None
        if body is None or not HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
            raise status_error(response, body or b"", auth_hint=self._auth_hint, now=self._clock.wall())
        document = json_or_text(body)
        if isinstance(document, dict) and isinstance(document.get("data"), list):
            document = {**document, "data": [withhold_unsafe(item) for item in document["data"]]}
        try:
            return GenerationState.model_validate(document)
        except ValidationError:
            raise ApiUnavailable(
                f"polling {generation_id} answered an unexpected body: {snippet(document)}",
                "remixd polls again; nothing is sent twice",
                sent=False,
                http_status=response.status_code,
            ) from None

    def _post(
        self,
        request: RemixRequest,
        upload: Upload,
        *,
        dry_run: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One POST of a request; (status, body) of a success, else raises the error the answer means."""
        url = self.endpoint_url(request)
        headers = {
            "Accept": "application/json",
            "Content-Type": upload.content_type,
            "User-Agent": USER_AGENT,
            **(extra_headers or {}),
            **self._auth_headers,
        }
        deadline = Deadline(self.timeout_s, self._clock.monotonic)
        try:
            response = self._session.post(
                self._post_base + request.endpoint_path() + ("?dry_run=true" if dry_run else ""),
                data=upload.body,
                headers=headers,
                timeout=deadline.timeouts(),
                allow_redirects=False,
                stream=True,
                **self._environment.for_url(self._post_base),
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES, deadline)
        except requests.RequestException as error:
            raise transport_error(error, url, self.timeout_s) from None
        if body is None:
            raise ApiRejected(
                f"the API answered {response.status_code} with more than {MAX_ANSWER_BYTES} bytes",
                "check api.base_url: this does not look like Ideogram's API",
                http_status=response.status_code,
            )
        if HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
            return response.status_code, body
        raise status_error(response, body, auth_hint=self._auth_hint, now=self._clock.wall())

    def check_key(self) -> None:
        """Try the key without spending. With `probe_request` (a v2 route in the config) a free `dry_run`
        quote of it: it proves the key and that the account may spend (402 while it may not).
        Otherwise the legacy probe below."""
        if self.probe_request is not None:
            self.quote(self.probe_request, _PROBE_PNG, "probe.png", "image/png")
            return
        self._check_key_legacy()

    def _check_key_legacy(self) -> None:
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
                **self._environment.for_url(self._post_base),
            )
            with response:
                body = read_limited(response, MAX_ANSWER_BYTES, deadline) or b""
        except requests.RequestException as error:
            raise transport_error(error, url, self.timeout_s) from None
        accepted = (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.TOO_MANY_REQUESTS)
        if response.status_code in accepted or HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
            answer = status_error(response, body, auth_hint=self._auth_hint, now=self._clock.wall())
            if not isinstance(answer, AuthError):  # a billing reject_reason still means "cannot spend"
                return
        raise status_error(response, body, auth_hint=self._auth_hint, now=self._clock.wall())

    # ---------------------------------------------------------------------------------------- download

    def download(self, url: str) -> bytes:
        """GET a result URL, without the key, within the host rules and the size cap (see `ideogram/download.py`)."""
        return self._downloader.download(url)
