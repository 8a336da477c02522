"""IdeogramClient against the real sandbox over loopback, plus a tiny canned "gateway" for answers the sandbox
never gives (echoed headers, wrappers, 402, HTTP-date Retry-After, redirects)."""

# literal statuses and sizes read best in tests

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
import requests
import structlog
from PIL import Image

from remixd.errors import ApiError, ApiRejected, ApiUnavailable, AuthError, PaymentRequired, RemixdError, UrlExpired
from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.download import ResultDownloader
from remixd.ideogram.download import parent_domain as _parent_domain
from remixd.ideogram.http import MAX_RETRY_AFTER_S, USER_AGENT, environment_of
from remixd.ideogram.requests import RemixRequest
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import SEED_WIRE_FIELDS, FakeClock, send_remix

KEY = "sk-remixd-test-7f3a9c2e51d04b8a"
OTHER_KEY = "sk-remixd-wrong-0000000000000000"
E = TypeVar("E", bound=RemixdError)
DEADLINE_SLACK_S = 10.0  # a 0.5 s deadline, against minutes without one: a loaded machine never comes close
MakeServer = Callable[..., SandboxServer]


def _png(size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = _png()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def make_server() -> Iterator[Callable[..., SandboxServer]]:
    servers: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        server = SandboxServer(SandboxOptions(api_keys=frozenset({KEY}), **options))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _client(
    session: requests.Session, base_url: str, auth: str = "api-key", key: str = KEY, **extra: Any
) -> IdeogramClient:
    options: dict[str, Any] = {"timeout_s": 10.0, "download_timeout_s": 10.0, "max_download_bytes": 10**7}
    options.update(extra)
    return IdeogramClient(base_url, key, auth, session, **options)


def _raises(kind: type[E], call: Callable[[], object]) -> E:
    """Run `call`, expect `kind`, and check the key is nowhere in what the error would show or store."""
    with pytest.raises(kind) as caught:
        call()
    error = caught.value
    shown = " ".join([str(error), repr(error.args), json.dumps(error.record().to_json(), default=str)])
    assert KEY not in shown
    assert OTHER_KEY not in shown
    return error


def _seed_request(**changes: Any) -> RemixRequest:
    fields: dict[str, Any] = dict(SEED_WIRE_FIELDS)
    fields.update(changes)
    return RemixRequest.model_validate(fields)


# --- wire format ----------------------------------------------------------------------------------------


def test_seed_request_through_the_gateway_route_with_bearer(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server(auth="bearer")
    client = _client(session, server.base_url + "/ideogram/", auth="bearer")
    request = _seed_request()
    assert client.endpoint_url(request) == server.base_url + "/ideogram/remix"

    response = send_remix(client, request, IMAGE, "flux.png", "image/png")

    [received] = server.received
    assert received.method == "POST"
    assert received.path == "/ideogram/remix"
    assert (received.auth_scheme, received.key_valid, received.status) == ("bearer", True, 200)
    assert received.fields == SEED_WIRE_FIELDS
    assert (received.image_part, received.filename) == ("image_file", "flux.png")
    assert received.content_type == "image/png"
    assert received.bytes == len(IMAGE)
    parts = {part.name: part for part in received.parts}
    assert list(parts) == ["image_request", "image_file"]
    assert parts["image_request"].content_type == "application/json"
    assert parts["image_request"].filename is None

    [item] = response.data
    assert item.seed == 12345
    assert item.is_image_safe
    assert item.url is not None
    assert item.url.startswith(server.base_url + "/api/images/ephemeral/")
    assert item.prompt == "A serene tropical beach"
    assert response.created is not None
    assert response.created.endswith("+00:00")
    assert server.ledger.usd == pytest.approx(0.06)


def test_api_key_header_and_user_agent_go_to_the_plain_route(
    make_server: MakeServer, session: requests.Session
) -> None:
    server = make_server(auth="api-key")
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    send_remix(_client(session, server.base_url), _seed_request(model="V_2"), IMAGE, "a.png", "image/png")
    [received] = server.received
    assert (received.path, received.auth_scheme) == ("/remix", "api-key")
    [request] = sent
    assert request.headers["Api-Key"] == KEY
    assert "Authorization" not in request.headers
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("remixd/")


def test_v3_request_uses_flat_fields_and_v3_spellings(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    palette = {"members": [{"color_hex": "#ff8800", "color_weight": 0.6}, {"color_hex": "#003366"}]}
    request = RemixRequest.model_validate(
        {
            "prompt": "A lighthouse at dusk",
            "model": "V_3",
            "aspect_ratio": "ASPECT_16_9",  # legacy spelling in, V_3 spelling on the wire
            "magic_prompt_option": "OFF",
            "image_weight": 70,
            "seed": 7,
            "num_images": 2,
            "rendering_speed": "TURBO",
            "color_palette": palette,
            "style_codes": ["AABBCCDD", "11223344"],
            "negative_prompt": "fog",
        }
    )
    response = send_remix(_client(session, server.base_url), request, IMAGE, "dusk.png", "image/png")

    [received] = server.received
    assert received.path == "/v1/ideogram-v3/remix"
    assert received.status == 200
    assert received.fields == {
        "prompt": "A lighthouse at dusk",
        "aspect_ratio": "16x9",
        "magic_prompt": "OFF",
        "image_weight": "70",
        "seed": "7",
        "num_images": "2",
        "rendering_speed": "TURBO",
        "color_palette": json.dumps(palette),
        "style_codes": ["AABBCCDD", "11223344"],
        "negative_prompt": "fog",
    }
    assert "model" not in received.fields
    assert (received.image_part, received.filename) == ("image", "dusk.png")
    palette_parts = [part for part in received.parts if part.name == "color_palette"]
    assert [part.content_type for part in palette_parts] == ["application/json"]
    assert len(response.data) == 2
    assert server.ledger.images == 2


# --- status mapping -------------------------------------------------------------------------------------


def test_429_inflight_limit_is_transient_unsent_and_flagged(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server(inflight_retry_after_s=7)
    server.set_faults(rate_limit_next=1)
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, server.base_url), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert (error.http_status, error.inflight_limit, error.sent, error.retry_after) == (429, True, False, 7.0)
    assert "inflight_limit" in error.message
    assert server.ledger.requests == 0


def test_a_request_bigger_than_the_inflight_limit_gets_429(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server(inflight_limit=2)
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, server.base_url), _seed_request(num_images=3), IMAGE, "a.png", "image/png"),
    )
    assert error.inflight_limit
    assert error.retry_after is None


def test_5xx_before_work_is_transient_and_marked_sent(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    server.set_faults(fail_before_next=1, fail_before_status=503)
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, server.base_url), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert (error.http_status, error.sent, error.inflight_limit) == (503, True, False)
    assert "temporarily unavailable" in error.message


def test_500_is_a_retryable_failure_with_its_status(make_server: MakeServer, session: requests.Session) -> None:
    """The reference: a generation that fails is not billed, so a 5xx is retried (README); the sandbox's
    bill-anyway fault is what tests/test_faults.py uses to show the cost if the reference were wrong."""
    server = make_server()
    server.set_faults(fail_after_next=1)
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, server.base_url), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert (error.http_status, error.sent) == (500, True)
    assert "the API failed (500)" in error.message and "sends it again" in error.hint


def test_reset_after_work_is_sent_with_unknown_outcome(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    server.set_faults(reset_after_next=1)
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, server.base_url), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert error.sent is True
    assert error.http_status is None
    assert "outcome is unknown" in error.message
    assert server.ledger.images == 1


def test_connection_refused_is_unsent(session: requests.Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _raises(
        ApiUnavailable,
        lambda: send_remix(_client(session, f"http://127.0.0.1:{port}"), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert error.sent is False
    assert "could not connect" in error.message


def test_read_timeout_is_sent_with_unknown_outcome(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    server.set_faults(latency_s=5.0)
    client = _client(session, server.base_url, timeout_s=0.3)
    error = _raises(ApiUnavailable, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert error.sent is True
    assert "within 0.3 s" in error.message
    assert "api.timeout_s" in error.hint


def test_an_answer_dripping_in_is_cut_at_the_total_deadline(make_server: MakeServer, session: requests.Session) -> None:
    # One byte every 0.2 s never trips a per-read timeout: the ~400-byte answer would take 80 s.
    server = make_server()
    server.set_faults(drip_answers_next=1, drip_interval_s=0.2)
    client = _client(session, server.base_url, timeout_s=0.5)
    started = time.monotonic()
    error = _raises(ApiUnavailable, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert time.monotonic() - started < DEADLINE_SLACK_S
    assert error.sent is True  # it ran and was billed: the outcome is unknown to the client
    assert "within 0.5 s" in error.message
    assert server.ledger.requests == 1


def test_safety_422_is_a_permanent_rejection_with_a_hint(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    error = _raises(
        ApiRejected,
        lambda: send_remix(
            _client(session, server.base_url),
            _seed_request(prompt="a FORBIDDEN_422 scene"),
            IMAGE,
            "a.png",
            "image/png",
        ),
    )
    assert error.http_status == 422
    assert "failed safety check" in error.message
    assert "change the prompt or the image" in error.hint
    assert isinstance(error.response, dict)
    assert server.ledger.requests == 0


def test_400_carries_the_apis_detail(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    error = _raises(
        ApiRejected,
        lambda: send_remix(
            _client(session, server.base_url), _seed_request(), b"GIF89a not really", "a.gif", "image/gif"
        ),
    )
    assert error.http_status == 400
    assert error.message.startswith("the API rejected the request (400): ")
    assert len(error.message) > len("the API rejected the request (400): ") + 5  # the detail is quoted


def test_404_hints_at_the_base_url(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    error = _raises(
        ApiRejected,
        lambda: send_remix(_client(session, server.base_url + "/nope"), _seed_request(), IMAGE, "a.png", "image/png"),
    )
    assert error.http_status == 404
    assert "api.base_url" in error.hint


@pytest.mark.parametrize(("model", "status"), [("V_2", 403), ("V_3", 401)])
def test_wrong_key_is_an_auth_error_naming_the_credential(
    make_server: MakeServer, session: requests.Session, model: str, status: int
) -> None:
    server = make_server()
    client = _client(session, server.base_url, key=OTHER_KEY, key_source="$MY_IDEOGRAM_KEY")
    request = RemixRequest(prompt="x", model=model)
    error = _raises(AuthError, lambda: send_remix(client, request, IMAGE, "a.png", "image/png"))
    assert error.http_status == status
    assert "$MY_IDEOGRAM_KEY" in error.hint
    assert "Api-Key" in error.hint


def test_bearer_to_an_api_key_only_server_hints_at_the_header_style(
    make_server: MakeServer, session: requests.Session
) -> None:
    server = make_server(auth="api-key")
    client = _client(session, server.base_url, auth="bearer")
    error = _raises(AuthError, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert "accepts the Api-Key header only" in error.message
    assert "Authorization: Bearer" in error.hint
    assert "api.auth: api-key" in error.hint


def test_unsafe_items_have_no_url(make_server: MakeServer, session: requests.Session) -> None:
    for style in ("null", "empty", "absent"):
        server = make_server(unsafe_url=style)
        response = send_remix(
            _client(session, server.base_url),
            _seed_request(prompt="UNSAFE_RESULT beach", num_images=2),
            IMAGE,
            "a.png",
            "image/png",
        )
        assert [(item.url, item.is_image_safe) for item in response.data] == [(None, False), (None, False)]
        assert server.ledger.images == 2  # withheld images are billed


# --- downloads ------------------------------------------------------------------------------------------


def _remix_one(client: IdeogramClient) -> str:
    url = send_remix(client, _seed_request(), IMAGE, "a.png", "image/png").data[0].url
    assert url is not None
    return url


def test_download_returns_the_image_and_sends_no_key(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    # A result host other than the API's, as with a proxying gateway: same sandbox, another name.
    server.set_faults(url_base=server.base_url.replace("127.0.0.1", "localhost"))
    client = _client(session, server.base_url, allowed_result_hosts=("localhost",))
    url = _remix_one(client)
    assert url.startswith("http://localhost:")
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))

    data = client.download(url)

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert image.width / image.height == pytest.approx(768 / 1232, rel=0.02)  # V_1 ASPECT_10_16
    assert [record.status for record in server.downloads] == [200]
    [request] = sent
    assert request.method == "GET"
    assert "Api-Key" not in request.headers
    assert "Authorization" not in request.headers
    assert KEY not in json.dumps(dict(request.headers))


def test_expired_url_is_url_expired(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    client = _client(session, server.base_url)
    url = _remix_one(client)
    server.advance_clock(86_400 + 60)
    error = _raises(UrlExpired, lambda: client.download(url))
    assert error.http_status == 410
    assert "?" not in error.message  # the signature is not worth showing


def test_truncated_download_is_retryable(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    client = _client(session, server.base_url)
    url = _remix_one(client)
    server.set_faults(truncate_downloads_next=1)
    error = _raises(ApiUnavailable, lambda: client.download(url))
    assert error.sent is False
    assert len(client.download(url)) > 0  # the next try succeeds


def test_a_download_dripping_in_is_cut_at_its_deadline(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    client = _client(session, server.base_url, download_timeout_s=0.5)
    url = _remix_one(client)
    server.set_faults(drip_downloads_next=1, drip_interval_s=0.2)
    started = time.monotonic()
    error = _raises(ApiUnavailable, lambda: client.download(url))
    assert time.monotonic() - started < DEADLINE_SLACK_S
    assert error.sent is False  # downloads are free to retry
    assert len(client.download(url)) > 0


def test_download_over_the_size_cap_is_refused(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    client = _client(session, server.base_url, max_download_bytes=100)
    url = _remix_one(client)
    error = _raises(ApiRejected, lambda: client.download(url))
    assert "max_download_bytes" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example.net/api/images/ephemeral/x.png",
        "ftp://127.0.0.1/x.png",
        "file:///etc/passwd",
        "http://user:pass@127.0.0.1/x.png",
        "http://127.0.0.1:10/x.png",  # the API's host, another port: another service
        "http://127.0.0.1/x.png",
    ],
)
def test_disallowed_result_urls_are_refused_without_a_request(session: requests.Session, url: str) -> None:
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    client = _client(session, "http://127.0.0.1:9")
    _raises(ApiRejected, lambda: client.download(url))
    assert sent == []


def test_another_port_is_allowed_only_as_named(session: requests.Session) -> None:
    allowed = ("http://127.0.0.1:10", "localhost")
    environment = environment_of(session)
    downloader = ResultDownloader(session, "http://127.0.0.1:9", 5.0, 1000, allowed, environment=environment)
    downloader.check_url("http://127.0.0.1:10/x.png")
    downloader.check_url("http://localhost:11/x.png")  # a bare host entry allows every port
    error = _raises(ApiRejected, lambda: downloader.check_url("http://127.0.0.1:11/x.png"))
    assert "port 11" in error.message
    assert "http://127.0.0.1:11" in error.hint


def test_result_urls_from_another_host_are_refused(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    server.set_faults(url_base=server.base_url.replace("127.0.0.1", "localhost"))
    client = _client(session, server.base_url)
    error = _raises(ApiRejected, lambda: client.download(_remix_one(client)))
    assert "allowed_result_hosts" in error.hint
    assert server.downloads == []


def test_parent_domain_rule() -> None:
    assert _parent_domain("api.ideogram.ai") == "ideogram.ai"
    assert _parent_domain("ideogram.ai") == "ideogram.ai"
    assert _parent_domain("127.0.0.1") == "127.0.0.1"
    assert _parent_domain("gw.example.co.uk") == "example.co.uk"
    assert _parent_domain("example.co.uk") == "example.co.uk"  # never widen to a whole registry suffix


# --- a canned gateway: answers the sandbox never gives ----------------------------------------------------


@dataclass
class _Gateway:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    echo_headers: bool = False
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def gateway() -> Iterator[tuple[_Gateway, str]]:
    state = _Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.do_GET()

        def do_GET(self) -> None:
            headers = dict(self.headers.items())
            state.seen.append(headers)
            body = (
                json.dumps({"error": "unauthorized", "you_sent": headers}).encode()
                if state.echo_headers
                else state.body
            )
            self.send_response(state.status)
            for name, value in {"Content-Type": "application/json", **state.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/ideogram"
    server.shutdown()
    server.server_close()
    thread.join(5)


Gateway = tuple[_Gateway, str]


def _gateway_remix(session: requests.Session, base_url: str) -> Any:
    return send_remix(_client(session, base_url, auth="bearer"), _seed_request(), IMAGE, "a.png", "image/png")


def test_a_gateway_echoing_the_key_is_scrubbed(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status, state.echo_headers = 401, True
    echo_key = "sk-remixd-echo-only-in-this-test-5c1d"  # registered by this client alone
    client = _client(session, base_url, auth="bearer", key=echo_key)
    error = _raises(AuthError, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert f"Bearer {echo_key}" in json.dumps(state.seen[0])  # the gateway really did echo it
    assert echo_key not in " ".join([str(error), json.dumps(error.record().to_json())])
    assert "[REDACTED]" in json.dumps(error.record().to_json())


def test_a_gateway_wrapper_around_the_native_body_is_accepted(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    native = {
        "created": "2024-10-30T22:46:49.796902+00:00",
        "data": [
            {
                "url": "https://ideogram.ai/api/images/ephemeral/abc.png?exp=1&sig=00",
                "is_image_safe": True,
                "prompt": "p",
                "resolution": "800x1280",
                "seed": 12345,
                "style_type": None,
            }
        ],
    }
    state.body = json.dumps({"code": 0, "message": "SUCCEED", "request_id": "r1", "data": native}).encode()
    response = _gateway_remix(session, base_url)
    assert response.data[0].resolution == "800x1280"


def test_a_gateway_async_task_wrapper_is_refused_clearly(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.body = json.dumps(
        {
            "code": 0,
            "message": "SUCCEED",
            "request_id": "r1",
            "data": {"task_id": "t1", "task_status": "submitted"},
        }
    ).encode()
    error = _raises(ApiRejected, lambda: _gateway_remix(session, base_url))
    assert "asynchronous task" in error.message
    assert error.http_status == 200


@pytest.mark.parametrize("body", [b"<html>ok</html>", b'{"created": "x", "data": []}', b'{"images": []}'])
def test_200_with_an_unexpected_body_is_rejected_not_retried(
    gateway: Gateway, session: requests.Session, body: bytes
) -> None:
    state, base_url = gateway
    state.body = body
    error = _raises(ApiRejected, lambda: _gateway_remix(session, base_url))
    assert error.message.startswith("the API answered 200 with an unexpected body: ")


def test_402_pauses_like_an_auth_error(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status = 402
    answer = {"error": "Insufficient balance.", "reject_reason": "insufficient_funds"}
    state.body = json.dumps(answer).encode()
    error = _raises(PaymentRequired, lambda: _gateway_remix(session, base_url))
    assert isinstance(error, AuthError)
    assert "Insufficient balance." in error.message
    assert "top up" in error.hint


def test_retry_after_as_an_http_date(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status = 503
    state.headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}
    clock = FakeClock(start=datetime(2015, 10, 21, 7, 28, tzinfo=UTC))  # 30 s earlier
    client = _client(session, base_url, auth="bearer", clock=clock)
    error = _raises(ApiUnavailable, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert error.retry_after == pytest.approx(30.0)
    assert error.sent is True


@pytest.mark.parametrize("value", ["86400", "Thu, 21 Oct 2027 07:28:30 GMT"])
def test_a_retry_after_beyond_the_bound_is_capped_and_logged(
    gateway: Gateway, session: requests.Session, value: str
) -> None:
    state, base_url = gateway
    state.status = 503
    state.headers = {"Retry-After": value}
    clock = FakeClock(start=datetime(2015, 10, 21, 7, 28, tzinfo=UTC))
    client = _client(session, base_url, auth="bearer", clock=clock)
    with structlog.testing.capture_logs() as logs:
        error = _raises(ApiUnavailable, lambda: send_remix(client, _seed_request(), IMAGE, "a.png", "image/png"))
    assert error.retry_after == MAX_RETRY_AFTER_S
    capped = [entry for entry in logs if entry["event"] == "remixd.api.retry_after_capped"]
    assert len(capped) == 1 and capped[0]["cap_s"] == MAX_RETRY_AFTER_S and capped[0]["asked_s"] > MAX_RETRY_AFTER_S


def test_a_redirect_is_not_followed_with_the_key(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status, state.headers = 307, {"Location": "http://elsewhere.invalid/remix"}
    error = _raises(ApiRejected, lambda: _gateway_remix(session, base_url))
    assert "redirect" in error.message
    assert len(state.seen) == 1


def test_an_error_body_with_detail_is_quoted(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status = 413
    state.body = json.dumps({"detail": "image too large", "status": 413, "title": "x"}).encode()
    error = _raises(ApiRejected, lambda: _gateway_remix(session, base_url))
    assert error.message == "the API rejected the request (413): image too large"
    assert "upload limit" in error.hint


def test_api_error_is_the_common_base() -> None:
    assert issubclass(PaymentRequired, ApiError)


# --- check_key ------------------------------------------------------------------------------------------


def test_check_key_accepts_a_good_key_without_spending(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server(auth="bearer")
    _client(session, server.base_url + "/ideogram", auth="bearer").check_key()
    [received] = server.received
    assert (received.path, received.key_valid, received.status) == ("/ideogram/remix", True, 400)
    assert server.ledger.requests == 0


def test_check_key_raises_auth_error_for_a_bad_key(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    error = _raises(AuthError, lambda: _client(session, server.base_url, key=OTHER_KEY).check_key())
    assert error.http_status == 403


def test_check_key_reports_a_wrong_base_url(make_server: MakeServer, session: requests.Session) -> None:
    server = make_server()
    error = _raises(ApiRejected, lambda: _client(session, server.base_url + "/v9").check_key())
    assert error.http_status == 404


def test_check_key_reports_an_empty_balance(gateway: Gateway, session: requests.Session) -> None:
    state, base_url = gateway
    state.status, state.body = (
        402,
        json.dumps({"error": "no credit", "reject_reason": "insufficient_funds"}).encode(),
    )
    _raises(PaymentRequired, lambda: _client(session, base_url, auth="bearer").check_key())
