"""The sandbox (remixd's Ideogram emulator) over real loopback HTTP: routes, auth, validation, images, signed
URLs, the in-flight limit, the ledger, every fault switch, and a fuzz test of the body parsing."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageOps, ImageStat

from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer, serve_forever
from tests.helpers import REPO, FakeClock

KEY = "sandbox"
SEED_EXAMPLE = REPO / "tests/fixtures/reference/seed-remix-api.txt"
CREATED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")
URL = re.compile(r"^http://127\.0\.0\.1:\d+/api/images/ephemeral/[0-9A-Za-z]{22}\.png\?exp=(\d+)&sig=[0-9a-f]{64}$")
PROBLEM_KEYS = {"detail", "status", "title", "type"}


def make_image(size: tuple[int, int] = (320, 200), kind: str = "PNG") -> bytes:
    """A gradient with a bright left stripe, so crops and tints are measurable."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((250, 250, 250), (0, 0, width // 8, height))
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


PNG = make_image()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        threading.Event().wait(0.005)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_server(clock: FakeClock) -> Iterator[Callable[..., SandboxServer]]:
    servers: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        server = SandboxServer(SandboxOptions(**options), clock=clock)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., SandboxServer]) -> SandboxServer:
    return make_server()


def legacy(
    server: SandboxServer,
    request: Any,
    *,
    image: bytes | None = PNG,
    headers: dict[str, str] | None = None,
    path: str = "/remix",
    json_part_type: bool = False,
) -> requests.Response:
    text = request if isinstance(request, str) else json.dumps(request)
    files: list[tuple[str, Any]] = [
        ("image_request", (None, text, "application/json") if json_part_type else (None, text)),
    ]
    if image is not None:
        files.append(("image_file", ("in.png", image, "image/png")))
    return requests.post(
        server.base_url + path,
        files=files,
        headers={"Api-Key": KEY} if headers is None else headers,
        timeout=30,
    )


def v3(
    server: SandboxServer,
    fields: dict[str, Any],
    *,
    image: bytes | None = PNG,
    headers: dict[str, str] | None = None,
    path: str = "/v1/ideogram-v3/remix",
    extra_files: list[tuple[str, Any]] | None = None,
) -> requests.Response:
    files: list[tuple[str, Any]] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                files.append((name, (None, json.dumps(item), "application/json")))
            else:
                files.append((name, (None, str(item))))
    if image is not None:
        files.append(("image", ("in.png", image, "image/png")))
    files += extra_files or []
    return requests.post(
        server.base_url + path,
        files=files,
        headers={"Api-Key": KEY} if headers is None else headers,
        timeout=30,
    )


def assert_bad_request(response: requests.Response, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == PROBLEM_KEYS
    assert body["status"] == status and body["type"] == "about:blank" and body["detail"]


def download(url: str) -> Image.Image:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image.convert("RGB")


# ------------------------------------------------------------ routes


def test_legacy_success_shape(server: SandboxServer) -> None:
    response = legacy(server, {"prompt": "a cat", "model": "V_2", "seed": 7, "num_images": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"created", "data"} and CREATED.match(body["created"])
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert item["prompt"] == "a cat" and item["resolution"] == "1024x1024" and item["seed"] == 7
        assert item["is_image_safe"] is True and item["style_type"] == "GENERAL"
        match = URL.match(item["url"])
        assert match is not None and int(match.group(1)) == int(FakeClock().wall()) + 86_400
    record = server.received[-1]
    assert record.path == "/remix" and record.status == 200 and record.key_valid
    assert record.auth_scheme == "api-key" and record.image_part == "image_file" and record.filename == "in.png"
    assert record.fields == {"prompt": "a cat", "model": "V_2", "seed": 7, "num_images": 2}
    assert record.bytes == len(PNG) and record.content_type == "image/png" and len(record.sha256 or "") == 64


@pytest.mark.parametrize("json_part_type", [False, True])
def test_image_request_with_or_without_part_content_type(server: SandboxServer, json_part_type: bool) -> None:
    response = legacy(server, {"prompt": "x"}, json_part_type=json_part_type)
    assert response.status_code == 200, response.text
    part = server.received[-1].parts[0]
    assert part.name == "image_request"
    assert part.content_type == ("application/json" if json_part_type else None)


def test_v3_success_shape(server: SandboxServer) -> None:
    response = v3(
        server,
        {
            "prompt": "a dog",
            "aspect_ratio": "16x9",
            "rendering_speed": "TURBO",
            "seed": "5",
            "style_codes": ["abcd1234", "ABCDEF01"],
            "color_palette": {"name": "PASTEL"},
            "negative_prompt": "blur",
        },
    )
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    assert item["resolution"] == "1312x736" and item["seed"] == 5 and item["style_type"] == "GENERAL"
    record = server.received[-1]
    assert record.image_part == "image"
    assert record.fields["style_codes"] == ["abcd1234", "ABCDEF01"]
    assert record.fields["seed"] == "5" and json.loads(record.fields["color_palette"]) == {"name": "PASTEL"}


@pytest.mark.parametrize("path", ["/ideogram/remix", "/ideogram/v1/ideogram-v3/remix"])
def test_gateway_prefix(server: SandboxServer, path: str) -> None:
    response = v3(server, {"prompt": "p"}, path=path) if "v3" in path else legacy(server, {"prompt": "p"}, path=path)
    assert response.status_code == 200, response.text
    assert server.received[-1].path == path


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/generate", 404),
        ("POST", "/remix/", 404),
        ("POST", "/ideogram", 404),
        ("GET", "/", 404),
        ("GET", "/remix", 405),
        ("PUT", "/v1/ideogram-v3/remix", 405),
    ],
)
def test_unknown_routes_answer_json(server: SandboxServer, method: str, path: str, status: int) -> None:
    response = requests.request(method, server.base_url + path, headers={"Api-Key": KEY}, timeout=10)
    assert response.status_code == status
    assert response.json()["status"] == status


def test_answers_leave_without_waiting_for_the_clients_ack(server: SandboxServer) -> None:
    # Headers and body go out in two writes; with Nagle's algorithm on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on a kept-alive connection: polls measured at 50 ms instead of 1.
    with requests.Session() as session:
        session.get(server.base_url + "/v2/generations/none", headers={"Api-Key": KEY}, timeout=10)
        connections = list(server._httpd._connections)  # type: ignore[union-attr]
        assert connections
        assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in connections)


# ------------------------------------------------------------ auth


@pytest.mark.parametrize(
    ("mode", "headers", "accepted"),
    [
        ("api-key", {"Api-Key": KEY}, True),
        ("api-key", {"Authorization": f"Bearer {KEY}"}, False),
        ("bearer", {"Authorization": f"Bearer {KEY}"}, True),
        ("bearer", {"Api-Key": KEY}, False),
        ("both", {"Api-Key": KEY}, True),
        ("both", {"Authorization": f"bearer {KEY}"}, True),
        ("both", {}, False),
        ("both", {"Api-Key": "wrong"}, False),
        ("both", {"Authorization": KEY}, False),
    ],
)
def test_auth_modes(
    make_server: Callable[..., SandboxServer], mode: str, headers: dict[str, str], accepted: bool
) -> None:
    server = make_server(auth=mode)
    answers = [legacy(server, {"prompt": "p"}, headers=headers), v3(server, {"prompt": "p"}, headers=headers)]
    if accepted:
        assert [a.status_code for a in answers] == [200, 200]
    else:
        assert [a.status_code for a in answers] == [403, 401]  # legacy /remix declares 403
        for answer in answers:
            assert answer.headers["Content-Type"] == "application/json"
            assert answer.json()["error"] and KEY not in answer.text
        assert [r.key_valid for r in server.received] == [False, False]
    assert server.ledger.requests == (2 if accepted else 0)


def test_auth_records_scheme_and_any_key_mode(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(api_keys=frozenset(), auth_status_v3=403)
    assert legacy(server, {"prompt": "p"}, headers={"Authorization": "Bearer anything"}).status_code == 200
    assert v3(server, {"prompt": "p"}, headers={"Api-Key": ""}).status_code == 403
    assert [(r.auth_scheme, r.key_valid) for r in server.received] == [("bearer", True), (None, False)]


# ------------------------------------------------------------ validation

LEGACY_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (rule, a valid request, the same rule violated)
    ("prompt required", {"prompt": "p"}, {"model": "V_2"}),
    ("prompt non-empty string", {"prompt": "p"}, {"prompt": "  "}),
    ("prompt is a string", {"prompt": "p"}, {"prompt": 5}),
    ("image_weight low", {"prompt": "p", "image_weight": 1}, {"prompt": "p", "image_weight": 0}),
    ("image_weight high", {"prompt": "p", "image_weight": 100}, {"prompt": "p", "image_weight": 101}),
    ("image_weight bool", {"prompt": "p", "image_weight": 1}, {"prompt": "p", "image_weight": True}),
    ("image_weight float", {"prompt": "p", "image_weight": 50}, {"prompt": "p", "image_weight": 50.0}),
    ("image_weight string", {"prompt": "p", "image_weight": 50}, {"prompt": "p", "image_weight": "50"}),
    ("seed low", {"prompt": "p", "seed": 0}, {"prompt": "p", "seed": -1}),
    ("seed high", {"prompt": "p", "seed": 2147483647}, {"prompt": "p", "seed": 2147483648}),
    ("seed null", {"prompt": "p", "seed": 1}, {"prompt": "p", "seed": None}),
    ("num_images low", {"prompt": "p", "num_images": 1}, {"prompt": "p", "num_images": 0}),
    ("num_images high", {"prompt": "p", "num_images": 8}, {"prompt": "p", "num_images": 9}),
    ("num_images bool", {"prompt": "p", "num_images": 1}, {"prompt": "p", "num_images": True}),
    ("model enum", {"prompt": "p", "model": "V_2A_TURBO"}, {"prompt": "p", "model": "v_2"}),
    ("model V_3 not on legacy", {"prompt": "p", "model": "V_2"}, {"prompt": "p", "model": "V_3"}),
    ("model AUTO not on legacy", {"prompt": "p", "model": "V_1_TURBO"}, {"prompt": "p", "model": "AUTO"}),
    (
        "aspect enum",
        {"prompt": "p", "aspect_ratio": "ASPECT_3_1"},
        {"prompt": "p", "aspect_ratio": "ASPECT_2_1"},
    ),
    (
        "aspect v3 spelling",
        {"prompt": "p", "aspect_ratio": "ASPECT_16_9"},
        {"prompt": "p", "aspect_ratio": "16x9"},
    ),
    (
        "resolution enum",
        {"prompt": "p", "resolution": "RESOLUTION_1280_720"},
        {"prompt": "p", "resolution": "1280x720"},
    ),
    (
        "aspect XOR resolution",
        {"prompt": "p", "resolution": "RESOLUTION_1024_1024"},
        {"prompt": "p", "resolution": "RESOLUTION_1024_1024", "aspect_ratio": "ASPECT_1_1"},
    ),
    (
        "resolution only V_2",
        {"prompt": "p", "model": "V_2_TURBO", "resolution": "RESOLUTION_768_1232"},
        {"prompt": "p", "model": "V_2A", "resolution": "RESOLUTION_768_1232"},
    ),
    (
        "resolution not V_1",
        {"prompt": "p", "model": "V_1"},
        {"prompt": "p", "model": "V_1", "resolution": "RESOLUTION_768_1232"},
    ),
    ("style_type enum", {"prompt": "p", "style_type": "RENDER_3D"}, {"prompt": "p", "style_type": "PHOTO"}),
    (
        "style_type not V_1",
        {"prompt": "p", "model": "V_2", "style_type": "ANIME"},
        {"prompt": "p", "model": "V_1_TURBO", "style_type": "ANIME"},
    ),
    (
        "negative_prompt not V_2A",
        {"prompt": "p", "model": "V_1", "negative_prompt": "n"},
        {"prompt": "p", "model": "V_2A", "negative_prompt": "n"},
    ),
    (
        "negative_prompt string",
        {"prompt": "p", "negative_prompt": "n"},
        {"prompt": "p", "negative_prompt": ["n"]},
    ),
    (
        "magic enum",
        {"prompt": "p", "magic_prompt_option": "ON"},
        {"prompt": "p", "magic_prompt_option": "on"},
    ),
    (
        "magic version enum",
        {"prompt": "p", "magic_prompt_version": "V_0_3"},
        {"prompt": "p", "magic_prompt_version": "V_1"},
    ),
    (
        "palette preset",
        {"prompt": "p", "color_palette": {"name": "EMBER"}},
        {"prompt": "p", "color_palette": {"name": "CRIMSON"}},
    ),
    (
        "palette name XOR members",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#abc"}]}},
        {"prompt": "p", "color_palette": {"name": "EMBER", "members": [{"color_hex": "#abc"}]}},
    ),
    (
        "palette needs one",
        {"prompt": "p", "color_palette": {"name": "MAGIC"}},
        {"prompt": "p", "color_palette": {}},
    ),
    (
        "palette hex",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#A1B2C3"}]}},
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#A1B2C"}]}},
    ),
    (
        "palette weight low",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff", "color_weight": 0.05}]}},
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff", "color_weight": 0.04}]}},
    ),
    (
        "palette weight high",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff", "color_weight": 1}]}},
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff", "color_weight": 1.01}]}},
    ),
    (
        "palette members count",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff"}] * 8}},
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#fff"}] * 9}},
    ),
    (
        "palette members non-empty",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#000"}]}},
        {"prompt": "p", "color_palette": {"members": []}},
    ),
    (
        "palette not V_1",
        {"prompt": "p", "model": "V_2", "color_palette": {"name": "MELON"}},
        {"prompt": "p", "model": "V_1", "color_palette": {"name": "MELON"}},
    ),
    (
        "palette not V_2A",
        {"prompt": "p", "model": "V_2_TURBO", "color_palette": {"name": "MELON"}},
        {"prompt": "p", "model": "V_2A_TURBO", "color_palette": {"name": "MELON"}},
    ),
    (
        "unknown fields ignored",
        {"prompt": "p", "invented": [1, 2]},
        {"prompt": "p", "invented": 1, "seed": "1"},
    ),
]


@pytest.mark.parametrize(("valid", "invalid"), [c[1:] for c in LEGACY_CASES], ids=[c[0] for c in LEGACY_CASES])
def test_legacy_validation_rule(server: SandboxServer, valid: dict[str, Any], invalid: dict[str, Any]) -> None:
    assert legacy(server, valid).status_code == 200
    assert_bad_request(legacy(server, invalid))
    assert server.ledger.requests == 1  # the 400 is not billed


V3_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("prompt required", {"prompt": "p"}, {"seed": "1"}),
    ("prompt non-empty", {"prompt": "p"}, {"prompt": ""}),
    ("aspect enum", {"prompt": "p", "aspect_ratio": "4x5"}, {"prompt": "p", "aspect_ratio": "ASPECT_4_5"}),
    ("resolution enum", {"prompt": "p", "resolution": "800x1280"}, {"prompt": "p", "resolution": "1280x720"}),
    (
        "aspect XOR resolution",
        {"prompt": "p", "resolution": "1024x1024"},
        {"prompt": "p", "resolution": "1024x1024", "aspect_ratio": "1x1"},
    ),
    (
        "rendering speed",
        {"prompt": "p", "rendering_speed": "FLASH"},
        {"prompt": "p", "rendering_speed": "FAST"},
    ),
    ("magic prompt", {"prompt": "p", "magic_prompt": "OFF"}, {"prompt": "p", "magic_prompt": "NO"}),
    ("style type v3", {"prompt": "p", "style_type": "FICTION"}, {"prompt": "p", "style_type": "RENDER_3D"}),
    (
        "style preset",
        {"prompt": "p", "style_preset": "WATERCOLOR"},
        {"prompt": "p", "style_preset": "CINEMATIC"},
    ),
    (
        "style codes pattern",
        {"prompt": "p", "style_codes": ["0123abcd"]},
        {"prompt": "p", "style_codes": ["0123abc"]},
    ),
    (
        "style codes not with style type",
        {"prompt": "p", "style_codes": ["0123abcd"]},
        {"prompt": "p", "style_codes": ["0123abcd"], "style_type": "GENERAL"},
    ),
    (
        "image_weight integer text",
        {"prompt": "p", "image_weight": "100"},
        {"prompt": "p", "image_weight": "50.0"},
    ),
    ("image_weight range", {"prompt": "p", "image_weight": "1"}, {"prompt": "p", "image_weight": "0"}),
    ("seed range", {"prompt": "p", "seed": "2147483647"}, {"prompt": "p", "seed": "2147483648"}),
    ("num_images range", {"prompt": "p", "num_images": "8"}, {"prompt": "p", "num_images": "9"}),
    (
        "color palette json",
        {"prompt": "p", "color_palette": {"members": [{"color_hex": "#123456"}]}},
        {"prompt": "p", "color_palette": "PASTEL"},
    ),
    (
        "custom model uri",
        {"prompt": "p", "custom_model_uri": "model/mine/version/1"},
        {"prompt": "p", "custom_model_uri": "mine:1"},
    ),
    ("single prompt", {"prompt": "p"}, {"prompt": ["p", "q"]}),
    (
        "unknown fields ignored",
        {"prompt": "p", "model": "whatever"},
        {"prompt": "p", "model": "x", "seed": "-1"},
    ),
]


@pytest.mark.parametrize(("valid", "invalid"), [c[1:] for c in V3_CASES], ids=[c[0] for c in V3_CASES])
def test_v3_validation_rule(server: SandboxServer, valid: dict[str, Any], invalid: dict[str, Any]) -> None:
    assert v3(server, valid).status_code == 200
    assert_bad_request(v3(server, invalid))


def test_v3_reference_images(server: SandboxServer) -> None:
    one = [("character_reference_images", ("c.png", PNG, "image/png"))]
    assert v3(server, {"prompt": "p"}, extra_files=one).status_code == 200
    assert server.ledger.by_price == (("V_3-character:DEFAULT", 1),)
    assert_bad_request(v3(server, {"prompt": "p"}, extra_files=one * 2))
    mask = [("character_reference_images_mask", ("m.png", PNG, "image/png"))]
    assert_bad_request(v3(server, {"prompt": "p"}, extra_files=mask))
    style = [("style_reference_images", ("s.gif", b"GIF89a....", "image/gif"))]
    assert_bad_request(v3(server, {"prompt": "p"}, extra_files=style))
    style_ok = [("style_reference_images", ("s.png", PNG, "image/png"))]
    assert_bad_request(v3(server, {"prompt": "p", "style_codes": ["0123abcd"]}, extra_files=style_ok))


def test_lenient_mode_ignores_fields_the_model_lacks(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(strict_model_fields=False)
    response = legacy(
        server, {"prompt": "p", "model": "V_1", "style_type": "ANIME", "color_palette": {"name": "EMBER"}}
    )
    assert response.status_code == 200 and response.json()["data"][0]["style_type"] is None


def test_legacy_v3_model_behind_switch(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(legacy_allow_v3=True)
    assert legacy(server, {"prompt": "p", "model": "V_3"}).status_code == 200


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (b"GIF89a" + b"\0" * 64, "gif"),
        (b"hello, not an image", "text"),
        (b"", "empty"),
        (PNG[: len(PNG) // 2], "truncated png"),
        (b"RIFF\0\0\0\0WEBPVP8 garbage", "broken webp"),
        (b"\xff\xd8\xff" + b"\0" * 100, "broken jpeg"),
    ],
)
def test_image_format_is_sniffed(server: SandboxServer, image: bytes, why: str) -> None:
    assert_bad_request(legacy(server, {"prompt": why}, image=image))
    assert_bad_request(v3(server, {"prompt": why}, image=image))


@pytest.mark.parametrize("kind", ["JPEG", "WEBP", "PNG"])
def test_accepted_formats(server: SandboxServer, kind: str) -> None:
    assert legacy(server, {"prompt": "p"}, image=make_image(kind=kind)).status_code == 200


def test_image_size_cap(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(max_image_bytes=len(PNG) - 1, max_image_bytes_v3=len(PNG))
    assert_bad_request(legacy(server, {"prompt": "p"}))
    assert v3(server, {"prompt": "p"}).status_code == 200
    strict = make_server(max_image_bytes=len(PNG) - 1, oversize_status=413)
    assert_bad_request(legacy(strict, {"prompt": "p"}), status=413)


def test_error_style_and_short_details(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(bad_request_style="error")
    response = legacy(server, {"prompt": "p", "model": "x" * 10_000})
    assert response.status_code == 400 and set(response.json()) == {"error"}
    assert len(response.json()["error"]) < 1000


def test_default_cap_is_ten_mebibytes(server: SandboxServer) -> None:
    big = PNG + b"\0" * (10 * 1024 * 1024 - len(PNG) + 1)
    response = legacy(server, {"prompt": "p"}, image=big)
    assert_bad_request(response)
    assert str(10 * 1024 * 1024) in response.json()["detail"]


@pytest.mark.parametrize("case", ["missing image_request", "missing image_file", "twice", "not json", "array"])
def test_legacy_parts(server: SandboxServer, case: str) -> None:
    image: tuple[str, Any] = ("image_file", ("a.png", PNG, "image/png"))
    request: tuple[str, Any] = ("image_request", (None, '{"prompt": "p"}'))
    cases: dict[str, list[tuple[str, Any]]] = {
        "missing image_request": [image],
        "missing image_file": [request],
        "twice": [request, image, image],
        "not json": [("image_request", (None, "prompt=p")), image],
        "array": [("image_request", (None, '[{"prompt": "p"}]')), image],
    }
    assert_bad_request(
        requests.post(server.base_url + "/remix", files=cases[case], headers={"Api-Key": KEY}, timeout=10)
    )


@pytest.mark.parametrize("body", [b'{"image_request": {"prompt": "p"}}', b"", b"prompt=p"])
def test_not_multipart(server: SandboxServer, body: bytes) -> None:
    for path in ("/remix", "/v1/ideogram-v3/remix"):
        response = requests.post(
            server.base_url + path,
            data=body,
            headers={"Api-Key": KEY, "Content-Type": "application/json"},
            timeout=10,
        )
        assert_bad_request(response)


# ------------------------------------------------------------ answers and images


def seed_example_request() -> dict[str, Any]:
    match = re.search(r'\{"image_weight".*?\}', SEED_EXAMPLE.read_text())
    assert match is not None
    return dict(json.loads(match.group(0)))


def test_seed_example_request(server: SandboxServer) -> None:
    request = seed_example_request()
    assert request["model"] == "V_1" and request["seed"] == 12345
    response = legacy(server, request, path="/ideogram/remix", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    assert item["resolution"] in ("768x1232", "800x1280")
    assert item["seed"] == 12345 and item["style_type"] is None and item["prompt"] == request["prompt"]
    image = download(item["url"])
    assert image.width * 1232 == image.height * 768
    assert server.ledger.usd == pytest.approx(0.06)


@pytest.mark.parametrize(
    ("fields", "resolution"),
    [
        ({"aspect_ratio": "ASPECT_1_3"}, "512x1536"),
        ({"aspect_ratio": "ASPECT_16_9"}, "1312x736"),
        ({"aspect_ratio": "ASPECT_10_16"}, "800x1280"),
        ({"model": "V_2", "resolution": "RESOLUTION_1280_720"}, "1280x720"),
        ({}, "1024x1024"),
    ],
)
def test_output_has_the_declared_aspect(server: SandboxServer, fields: dict[str, Any], resolution: str) -> None:
    item = legacy(server, {"prompt": "p", **fields}).json()["data"][0]
    assert item["resolution"] == resolution
    width, height = map(int, resolution.split("x"))
    image = download(item["url"])
    assert image.size == (width, height)  # what the answer declares: never a smaller image, silently


def test_v3_sizes_come_from_the_v3_list(server: SandboxServer) -> None:
    for ratio in ("9x16", "4x5", "2x1"):
        item = v3(server, {"prompt": "p", "aspect_ratio": ratio}).json()["data"][0]
        width, height = map(int, item["resolution"].split("x"))
        image = download(item["url"])
        assert image.width * height == image.height * width


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(first, second)).mean))


def test_images_differ_by_seed_and_weight(server: SandboxServer) -> None:
    def result(seed: int, weight: int) -> Image.Image:
        answer = legacy(server, {"prompt": "p", "seed": seed, "image_weight": weight})
        return download(answer.json()["data"][0]["url"])

    base = result(1, 50)
    assert mean_difference(base, result(1, 50)) == 0  # deterministic for the same request
    assert mean_difference(base, result(2, 50)) > 5
    source = ImageOps.fit(Image.open(io.BytesIO(PNG)).convert("RGB"), base.size)
    assert mean_difference(result(1, 95), source) < mean_difference(result(1, 5), source)


def test_multiple_images_and_seeds(make_server: Callable[..., SandboxServer]) -> None:
    same = make_server()
    data = legacy(same, {"prompt": "p", "seed": 10, "num_images": 3}).json()["data"]
    assert [item["seed"] for item in data] == [10, 10, 10] and len({item["url"] for item in data}) == 3
    increment = make_server(multi_seed="increment")
    data = legacy(increment, {"prompt": "p", "seed": 2147483647, "num_images": 2}).json()["data"]
    assert [item["seed"] for item in data] == [2147483647, 0]
    data = legacy(same, {"prompt": "p", "num_images": 2}).json()["data"]
    assert all(0 <= item["seed"] <= 2147483647 for item in data)


def test_magic_prompt_on_rewrites(server: SandboxServer) -> None:
    on = legacy(server, {"prompt": "a cat", "magic_prompt_option": "ON"}).json()["data"][0]["prompt"]
    off = legacy(server, {"prompt": "a cat", "magic_prompt_option": "OFF"}).json()["data"][0]["prompt"]
    v3_on = v3(server, {"prompt": "a cat", "magic_prompt": "ON"}).json()["data"][0]["prompt"]
    assert off == "a cat" and on != "a cat" and on.startswith("a cat") and v3_on == on


# ------------------------------------------------------------ safety


def test_forbidden_prompt_is_422_and_not_billed(server: SandboxServer) -> None:
    for response in (
        legacy(server, {"prompt": "x FORBIDDEN_422 y"}),
        v3(server, {"prompt": "FORBIDDEN_422"}),
    ):
        assert response.status_code == 422
        assert response.json() == {
            "error": "Prompt provided failed safety check due to the inclusion of prohibited content."
        }
    assert server.ledger.requests == 0


@pytest.mark.parametrize(("unsafe_url", "expected"), [("null", None), ("empty", ""), ("absent", "absent")])
def test_unsafe_result_is_withheld_and_billed(
    make_server: Callable[..., SandboxServer], unsafe_url: str, expected: str | None
) -> None:
    server = make_server(unsafe_url=unsafe_url)
    response = legacy(server, {"prompt": "UNSAFE_RESULT", "num_images": 2, "model": "V_2_TURBO"})
    assert response.status_code == 200
    for item in response.json()["data"]:
        assert item["is_image_safe"] is False
        assert item.get("url", "absent") == expected
    assert server.ledger.images == 2 and server.ledger.usd == pytest.approx(0.10)
    assert server.stored_images == 0


# ------------------------------------------------------------ signed URLs


def test_url_expiry_with_the_fake_clock(server: SandboxServer, clock: FakeClock) -> None:
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    clock.advance(86_400)
    assert requests.get(url, timeout=10).status_code == 200  # the last valid second
    clock.advance(1)
    response = requests.get(url, timeout=10)
    assert response.status_code == 410 and response.json()["error"]
    assert server.stored_images == 0  # forgotten once expired


def test_expired_status_is_configurable(make_server: Callable[..., SandboxServer], clock: FakeClock) -> None:
    server = make_server(expired_status=403, url_ttl_s=60)
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    clock.advance(61)
    assert requests.get(url, timeout=10).status_code == 403


def test_bad_signatures(server: SandboxServer) -> None:
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    base, query = url.split("?")
    expires = re.search(r"exp=(\d+)", query).group(1)  # type: ignore[union-attr]
    signature = re.search(r"sig=([0-9a-f]+)", query).group(1)  # type: ignore[union-attr]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for forged in (
        f"{base}?exp={expires}&sig={flipped}",
        f"{base}?exp={int(expires) + 1}&sig={signature}",
        f"{base}?exp={expires}",
        base,
        f"{base}?exp=x&sig={signature}",
    ):
        response = requests.get(forged, timeout=10)
        assert response.status_code == 403, forged
    other = base[:-10] + ("A" if base[-10] != "A" else "B") + base[-9:]
    assert requests.get(f"{other}?exp={expires}&sig={signature}", timeout=10).status_code == 403
    assert requests.get(url, timeout=10).status_code == 200


def test_store_and_records_are_bounded_by_bytes(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(max_stored_bytes=1, max_records=2)
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    assert server.stored_images == 0 and requests.get(url, timeout=10).status_code == 404
    for _ in range(3):
        legacy(server, {"prompt": "p", "seed": 1})
    assert len(server.received) == 2 and len(server.downloads) == 1


def test_store_is_bounded(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(max_stored_images=2)
    urls = [item["url"] for item in legacy(server, {"prompt": "p", "num_images": 3}).json()["data"]]
    assert server.stored_images == 2
    assert [requests.get(url, timeout=10).status_code for url in urls] == [404, 200, 200]


# ------------------------------------------------------------ in-flight limit


def test_inflight_limit_counts_images_across_keys(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(api_keys=frozenset({"one", "two"}))
    server.hold()
    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [
            pool.submit(legacy, server, {"prompt": "p"}, headers={"Api-Key": "one" if i % 2 else "two"})
            for i in range(10)
        ]
        wait_for(lambda: server.in_flight == 10)
        over = legacy(server, {"prompt": "p"}, headers={"Api-Key": "one"})
        over_v3 = v3(server, {"prompt": "p"}, headers={"Authorization": "Bearer two"})
        server.release()
        statuses = [future.result().status_code for future in futures]
    assert statuses == [200] * 10
    for response in (over, over_v3):
        assert response.status_code == 429 and "Retry-After" not in response.headers
        assert response.json() == {
            "error": response.json()["error"],
            "reject_reason": "inflight_limit",
            "max_inflight_requests": 10,
        }
    assert server.ledger.images == 10 and server.in_flight == 0


def test_inflight_limit_with_many_images_and_retry_after(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(inflight_retry_after_s=3)
    server.hold()
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(legacy, server, {"prompt": "p", "num_images": 8})
        wait_for(lambda: server.in_flight == 8)
        over = legacy(server, {"prompt": "p", "num_images": 3})  # 8 + 3 > 10
        fits = pool.submit(v3, server, {"prompt": "p", "num_images": "2"})  # 8 + 2 = 10
        wait_for(lambda: server.in_flight == 10)
        server.release()
        assert (held.result().status_code, fits.result().status_code) == (200, 200)
    assert over.status_code == 429 and over.headers["Retry-After"] == "3"
    assert server.ledger.images == 10


# ------------------------------------------------------------ ledger


@pytest.mark.parametrize(
    ("send", "usd"),
    [
        (lambda s: legacy(s, {"prompt": "p", "model": "V_1", "num_images": 2}), 0.12),
        (lambda s: legacy(s, {"prompt": "p", "model": "V_1_TURBO"}), 0.02),
        (lambda s: legacy(s, {"prompt": "p", "num_images": 3}), 0.24),
        (lambda s: legacy(s, {"prompt": "p", "model": "V_2_TURBO"}), 0.05),
        (lambda s: legacy(s, {"prompt": "p", "model": "V_2A", "num_images": 2}), 0.08),
        (lambda s: legacy(s, {"prompt": "p", "model": "V_2A_TURBO", "num_images": 4}), 0.10),
        (lambda s: v3(s, {"prompt": "p"}), 0.06),
        (lambda s: v3(s, {"prompt": "p", "rendering_speed": "FLASH", "num_images": "2"}), 0.06),
        (lambda s: v3(s, {"prompt": "p", "rendering_speed": "TURBO"}), 0.03),
        (lambda s: v3(s, {"prompt": "p", "rendering_speed": "QUALITY", "num_images": "2"}), 0.18),
    ],
)
def test_ledger_prices(server: SandboxServer, send: Callable[[SandboxServer], requests.Response], usd: float) -> None:
    assert send(server).status_code == 200
    assert server.ledger.usd == pytest.approx(usd) and server.ledger.requests == 1
    assert server.received[-1].billed_usd == pytest.approx(usd)


def test_ledger_over_http_and_unbilled_failures(server: SandboxServer) -> None:
    legacy(server, {"prompt": "p", "num_images": 2})
    legacy(server, {"prompt": "p", "num_images": 0})  # 400
    legacy(server, {"prompt": "FORBIDDEN_422"})  # 422
    legacy(server, {"prompt": "p"}, headers={})  # 403
    state = requests.get(server.base_url + "/_sandbox/state", timeout=10).json()
    assert state["ledger"] == {"requests": 1, "images": 2, "usd": pytest.approx(0.16), "by_price": {"V_2": 2}}
    assert [r["status"] for r in state["received"]] == [200, 400, 422, 403]
    assert state["received"][0]["fields"] == {"prompt": "p", "num_images": 2}


# ------------------------------------------------------------ faults


def test_latency(server: SandboxServer) -> None:
    server.set_faults(latency_s=0.3)
    started = time.monotonic()
    assert legacy(server, {"prompt": "p"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_fault_rate_limit_next(server: SandboxServer) -> None:
    server.set_faults(rate_limit_next=2)
    statuses = [legacy(server, {"prompt": "p"}).status_code for _ in range(3)]
    assert statuses == [429, 429, 200] and server.ledger.requests == 1


@pytest.mark.parametrize("status", [500, 503])
def test_fault_fail_before_work(server: SandboxServer, status: int) -> None:
    server.set_faults(fail_before_next=1, fail_before_status=status)
    response = v3(server, {"prompt": "p"})
    assert response.status_code == status and response.json()["error"]
    assert server.ledger.requests == 0
    assert v3(server, {"prompt": "p"}).status_code == 200


def test_fault_fail_after_work_is_billed(server: SandboxServer) -> None:
    server.set_faults(fail_after_next=1)
    response = legacy(server, {"prompt": "p", "num_images": 2})
    assert response.status_code == 500
    assert server.ledger.requests == 1 and server.ledger.usd == pytest.approx(0.16)
    assert server.received[-1].status == 500 and server.faults.fail_after_next == 0


def test_fault_reset_after_work_is_billed(server: SandboxServer) -> None:
    server.set_faults(reset_after_next=1)
    with pytest.raises(requests.ConnectionError):
        legacy(server, {"prompt": "p"})
    assert server.ledger.requests == 1 and server.received[-1].status is None
    assert legacy(server, {"prompt": "p"}).status_code == 200


def test_fault_truncated_download(server: SandboxServer) -> None:
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    server.set_faults(truncate_downloads_next=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    assert [d.truncated for d in server.downloads] == [True]
    download(url)  # the next one is whole


def test_fault_unsafe_next_items(server: SandboxServer) -> None:
    server.set_faults(unsafe_next=1, unsafe_items=1)
    data = legacy(server, {"prompt": "p", "num_images": 2}).json()["data"]
    assert [item["is_image_safe"] for item in data] == [False, True]
    assert data[0]["url"] is None and URL.match(data[1]["url"])
    assert all(item["is_image_safe"] for item in legacy(server, {"prompt": "p"}).json()["data"])


def test_fault_url_host_rewrite(server: SandboxServer) -> None:
    gateway = server.base_url.replace("127.0.0.1", "localhost") + "/proxied"
    server.set_faults(url_base=gateway)
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    assert url.startswith(gateway + "/api/images/ephemeral/")


def test_faults_over_http(server: SandboxServer, clock: FakeClock) -> None:
    control = server.base_url + "/_sandbox/"
    answer = requests.post(control + "faults", json={"fail_before_next": 1, "fail_before_status": 500}, timeout=10)
    assert answer.status_code == 200 and answer.json()["fail_before_next"] == 1
    assert legacy(server, {"prompt": "p"}).status_code == 500
    url = legacy(server, {"prompt": "p"}).json()["data"][0]["url"]
    assert requests.post(control + "clock", json={"advance_s": 86_401}, timeout=10).status_code == 200
    assert requests.get(url, timeout=10).status_code == 410
    for bad in ({"no_such_fault": 1}, {"reset_after_next": -1}, {"rate_limit_next": True}, [1]):
        assert requests.post(control + "faults", json=bad, timeout=10).status_code == 400
    assert requests.post(control + "hold", timeout=10).status_code == 200
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(legacy, server, {"prompt": "p"})
        wait_for(lambda: requests.get(control + "state", timeout=10).json()["in_flight_images"] == 1)
        requests.post(control + "release", timeout=10)
        assert held.result().status_code == 200
    assert requests.post(control + "reset", timeout=10).json() == {"ok": True}
    state = requests.get(control + "state", timeout=10).json()
    assert state["received"] == [] and state["ledger"]["requests"] == 0 and state["stored_images"] == 0
    assert state["now"] == clock.wall()


def test_control_endpoints_can_be_off(make_server: Callable[..., SandboxServer]) -> None:
    server = make_server(control_endpoints=False)
    assert requests.get(server.base_url + "/_sandbox/state", timeout=10).status_code == 404


# ------------------------------------------------------------ lifecycle


def test_stop_leaves_no_threads() -> None:
    before = {t.ident for t in threading.enumerate()}
    server = SandboxServer()
    server.start()
    session = requests.Session()  # a kept-alive connection must not keep a handler thread alive
    assert (
        session.post(
            server.base_url + "/remix",
            files=[("image_request", (None, '{"prompt": "p"}')), ("image_file", ("a.png", PNG))],
            headers={"Api-Key": KEY},
            timeout=10,
        ).status_code
        == 200
    )
    server.stop()
    session.close()
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leaked == []


def test_malformed_http_gets_json(server: SandboxServer) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    headers = b"".join(b"X-Filler-%d: 1\r\n" % n for n in range(120))  # http.server allows 100
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /remix HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].startswith(b"HTTP/1.1 431 ")
    assert b"Content-Type: application/json" in head and json.loads(body)["status"] == 431


def test_standalone_stops_cleanly_on_sigterm() -> None:
    code = (
        "from remixd.sandbox.server import serve_forever; "
        "raise SystemExit(serve_forever('127.0.0.1', 0, on_ready=lambda u: print('READY', u, flush=True)))"
    )
    command = [sys.executable, "-c", code]
    # our own interpreter running our own code: nothing untrusted reaches the command line
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = (process.stdout.readline() for _ in range(50))  # the log lines come first
            ready = next(line for line in lines if line.startswith("READY") or not line)
            base_url = ready.split()[1]
            assert requests.get(base_url + "/_sandbox/state", timeout=10).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_serve_forever_until_stopped() -> None:
    stop = threading.Event()
    ready: list[str] = []
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(serve_forever("127.0.0.1", 0, SandboxOptions(), stop=stop, on_ready=ready.append))
    )
    thread.start()
    wait_for(lambda: bool(ready))
    assert requests.get(ready[0] + "/nothing", timeout=10).status_code == 404
    stop.set()
    thread.join(10)
    assert result == [0]


# ------------------------------------------------------------ fuzz


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxOptions(output_scale=0.02)) as server:
        yield server


def valid_legacy_body() -> tuple[bytes, str]:
    prepared = requests.Request(
        "POST",
        "http://x/remix",
        files=[
            ("image_request", (None, json.dumps({"prompt": "p", "model": "V_2", "seed": 1}))),
            ("image_file", ("a.png", make_image((16, 16)), "image/png")),
        ],
    ).prepare()
    return prepared.body, prepared.headers["Content-Type"]  # type: ignore[return-value]


VALID_BODY, VALID_TYPE = valid_legacy_body()
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def post_raw(server: SandboxServer, path: str, body: bytes, content_type: str) -> requests.Response:
    return requests.post(
        server.base_url + path, data=body, timeout=30, headers={"Api-Key": KEY, "Content-Type": content_type}
    )


def assert_json_answer(response: requests.Response, allowed: set[int]) -> None:
    assert response.status_code in allowed, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json(), dict)


@FUZZ
@given(body=st.binary(max_size=2048), path=st.sampled_from(["/remix", "/v1/ideogram-v3/remix"]))
def test_fuzz_random_bodies(fuzz_server: SandboxServer, body: bytes, path: str) -> None:
    assert_json_answer(post_raw(fuzz_server, path, body, VALID_TYPE), {400})


@FUZZ
@given(content_type=st.text(max_size=120).filter(lambda t: "\n" not in t and "\r" not in t))
def test_fuzz_content_type(fuzz_server: SandboxServer, content_type: str) -> None:
    try:
        header = content_type.encode("latin-1").decode("latin-1")
    except UnicodeEncodeError:
        header = content_type.encode("utf-8", "replace").decode("latin-1")
    assert_json_answer(post_raw(fuzz_server, "/remix", VALID_BODY, header.strip() or "x"), {200, 400})


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_valid_body(fuzz_server: SandboxServer, data: st.DataObject) -> None:
    body = bytearray(VALID_BODY)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, max(0, len(body) - 1)))
        operation = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if operation == "flip" and body:
            body[position] = data.draw(st.integers(0, 255))
        elif operation == "delete":
            del body[position : position + data.draw(st.integers(1, 40))]
        elif operation == "insert":
            body[position:position] = data.draw(st.binary(min_size=1, max_size=40))
        else:
            del body[position:]
    # A mutation may leave the body valid (a changed prompt byte): then 200 is right, and 422 for
    # nothing; what must never happen is a 5xx or a non-JSON answer.
    assert_json_answer(post_raw(fuzz_server, "/remix", bytes(body), VALID_TYPE), {200, 400})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
LEGACY_NAMES = st.sampled_from(
    [
        "model",
        "aspect_ratio",
        "resolution",
        "image_weight",
        "seed",
        "num_images",
        "magic_prompt_option",
        "style_type",
        "negative_prompt",
        "color_palette",
        "other",
    ]
)


@FUZZ
@given(fields=st.dictionaries(LEGACY_NAMES, JSON_VALUES, max_size=5), prompt=JSON_VALUES | st.just("p"))
def test_fuzz_image_request_json(fuzz_server: SandboxServer, fields: dict[str, Any], prompt: Any) -> None:
    response = legacy(fuzz_server, {"prompt": prompt, **fields}, image=make_image((16, 16)))
    assert_json_answer(response, {200, 400})


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "image_weight",
                "seed",
                "resolution",
                "aspect_ratio",
                "rendering_speed",
                "num_images",
                "magic_prompt",
                "color_palette",
                "style_codes",
                "style_type",
                "style_preset",
            ]
        ),
        st.text(max_size=30) | JSON_VALUES.map(json.dumps),
        max_size=6,
    )
)
def test_fuzz_v3_fields(fuzz_server: SandboxServer, fields: dict[str, str]) -> None:
    response = v3(fuzz_server, fields, image=make_image((16, 16)))
    assert_json_answer(response, {200, 400})
