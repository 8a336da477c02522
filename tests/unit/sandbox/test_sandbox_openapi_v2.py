"""The sandbox's v2 routes against Ideogram's v2 OpenAPI excerpt: the same fields per route, enums, patterns
and limits, and answers that validate against the response schemas."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from PIL import Image

from remixd.sandbox import reference, reference_v2
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import REPO
from tests.unit.sandbox.test_sandbox_openapi import check

SPEC_PATH = REPO / "tests/fixtures/reference/ideogram-openapi-v2-remix.json"
KEY = "sandbox"
REQUESTS = {
    "ideogram-4": "RemixImageIdeogramV4",
    "ideogram-3": "RemixImageIdeogramV3",
    "ideogram-3-character": "RemixImageIdeogramV3Character",
    "ideogram-3-custom-model": "RemixImageIdeogramV3CustomModel",
    "auto": "ToolRemix",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def prop(spec: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    node = dict(schema(spec, REQUESTS[model] + "Request")["properties"][name])
    while "$ref" in node or "allOf" in node:
        ref = node.pop("$ref", None) or node.pop("allOf")[0]["$ref"]
        node = {**schema(spec, ref.rsplit("/", 1)[1]), **node}
    return node


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxOptions()) as running:
        yield running


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def post(
    server: SandboxServer, model: str, fields: dict[str, str], files: tuple[str, ...] = ("image",), query: str = ""
) -> requests.Response:
    parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields.items()]
    parts += [(name, (f"{name}.png", png(), "image/png")) for name in files]
    url = f"{server.base_url}/v2/image/remix/{model}{query}"
    return requests.post(url, files=parts, headers={"Api-Key": KEY}, timeout=30)


# ------------------------------------------------------------ fields, enums, limits


@pytest.mark.parametrize("model", list(REQUESTS))
def test_each_route_reads_exactly_its_schemas_fields(spec: dict[str, Any], model: str) -> None:
    assert reference_v2.FIELDS[model] == set(schema(spec, REQUESTS[model] + "Request")["properties"])
    assert reference_v2.REMIX_PREFIX + model in spec["paths"]
    encoding = spec["paths"][reference_v2.REMIX_PREFIX + model]["post"]["requestBody"]["content"]
    json_parts = set(encoding["multipart/form-data"]["encoding"])
    assert json_parts == reference_v2.JSON_FIELDS & reference_v2.FIELDS[model]


def test_routes_are_the_excerpts(spec: dict[str, Any]) -> None:
    routes = {path.removeprefix(reference_v2.REMIX_PREFIX) for path in spec["paths"] if "/v2/image/remix/" in path}
    assert routes == set(reference_v2.FIELDS) == set(reference_v2.PRICES) == set(reference_v2.BILLING_IDENTIFIERS)
    assert reference_v2.GENERATIONS_PREFIX + "{generation_id}" in spec["paths"]


def test_enums_and_patterns(spec: dict[str, Any]) -> None:
    assert tuple(prop(spec, "ideogram-4", "rendering_speed")["enum"]) == reference_v2.RENDERING_SPEEDS
    assert tuple(prop(spec, "ideogram-4", "resolution")["enum"]) == reference_v2.RESOLUTIONS_V4
    assert tuple(prop(spec, "ideogram-3", "resolution")["enum"]) == reference.RESOLUTIONS_V3
    assert tuple(prop(spec, "ideogram-3", "aspect_ratio")["enum"]) == reference.ASPECT_RATIOS_V3
    assert tuple(prop(spec, "ideogram-3", "magic_prompt")["enum"]) == reference_v2.MAGIC_PROMPT_MODES
    assert tuple(prop(spec, "ideogram-3", "style_type")["enum"]) == reference_v2.STYLE_TYPES
    assert tuple(prop(spec, "ideogram-3", "style_preset")["enum"]) == reference_v2.STYLE_PRESETS
    assert tuple(prop(spec, "ideogram-3-character", "style_type")["enum"]) == reference_v2.STYLE_TYPES_CHARACTER
    assert tuple(prop(spec, "auto", "aspect_ratio")["enum"]) == reference_v2.ASPECT_RATIOS_V4
    assert tuple(prop(spec, "auto", "resolution_tier")["enum"]) == reference_v2.RESOLUTION_TIERS
    assert prop(spec, "auto", "resolution")["pattern"] == reference_v2.RESOLUTION_PATTERN_AUTO
    uri = prop(spec, "ideogram-3-custom-model", "custom_model_uri")
    assert (uri["pattern"], uri["maxLength"]) == (reference.CUSTOM_MODEL_URI_PATTERN, reference_v2.CUSTOM_MODEL_URI_MAX)
    presets = schema(spec, "IdeogramColorPalettePresetName")["enum"]
    assert tuple(presets) == reference_v2.COLOR_PALETTE_PRESETS
    assert tuple(schema(spec, "GenerationRejectReason")["enum"]) == reference_v2.REJECT_REASONS
    for model in REQUESTS:
        assert prop(spec, model, "prompt")["maxLength"] == reference_v2.PROMPT_MAX
        assert prop(spec, model, "webhook_url")["maxLength"] == reference_v2.WEBHOOK_URL_MAX
        weight, count = prop(spec, model, "image_weight"), prop(spec, model, "num_images")
        assert (weight["minimum"], weight["maximum"]) == reference.IMAGE_WEIGHT_RANGE
        assert (count["minimum"], count["maximum"]) == reference.NUM_IMAGES_RANGE
    assert prop(spec, "ideogram-3", "style_reference_images")["maxItems"] == reference_v2.MAX_STYLE_REFERENCES
    assert prop(spec, "ideogram-3-character", "character_reference_images")["maxItems"] == 1


@pytest.mark.parametrize("model", list(REQUESTS))
def test_the_sandbox_enforces_the_ranges(spec: dict[str, Any], server: SandboxServer, model: str) -> None:
    extra = {"custom_model_uri": "model/a/version/1"} if model == "ideogram-3-custom-model" else {}
    files = ("image", "character_reference_images") if model == "ideogram-3-character" else ("image",)
    for name in ("image_weight", "num_images"):
        low, high = prop(spec, model, name)["minimum"], prop(spec, model, name)["maximum"]
        for value, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
            fields = {"prompt": "p", name: str(value), **extra}
            assert post(server, model, fields, files).status_code == status, (model, name, value)
    assert post(server, model, {"prompt": "x" * 10_001, **extra}, files).status_code == 400
    assert post(server, model, {"prompt": "", **extra}, files).status_code == 400


# ------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("model", "fields", "files"),
    [
        ("ideogram-4", {"prompt": "p", "rendering_speed": "turbo", "num_images": "2"}, ("image",)),
        ("ideogram-3", {"prompt": "p", "aspect_ratio": "16x9", "style_type": "realistic"}, ("image",)),
        ("ideogram-3-character", {"prompt": "p"}, ("image", "character_reference_images")),
        ("ideogram-3-custom-model", {"prompt": "p", "custom_model_uri": "model/m/version/1"}, ("image",)),
        ("auto", {"prompt": "UNSAFE_RESULT", "resolution": "1000x1500"}, ("image",)),
    ],
)
def test_sync_answers_match_the_routes_response(
    spec: dict[str, Any], server: SandboxServer, model: str, fields: dict[str, str], files: tuple[str, ...]
) -> None:
    response = post(server, model, fields, files)
    assert response.status_code == 200, response.text
    body = response.json()
    check(spec, schema(spec, REQUESTS[model] + "Response"), body, "response", frozenset())
    assert len(body["data"]) == int(fields.get("num_images", "1"))
    assert "created" not in body  # v2 answers carry no `created`, unlike v1


def test_async_acknowledgement_and_generation_match_the_spec(spec: dict[str, Any], server: SandboxServer) -> None:
    answer = post(server, "ideogram-4", {"prompt": "p", "async": "true"})
    assert answer.status_code == 200, answer.text
    ack = answer.json()
    check(spec, schema(spec, "RemixImageIdeogramV4Response"), ack, "ack", frozenset())
    assert "data" not in ack
    polled = requests.get(
        f"{server.base_url}/v2/generations/{ack['generation_id']}", headers={"Api-Key": KEY}, timeout=30
    )
    body = polled.json()
    assert body["status"] == "completed"  # no latency configured: done at once
    check(spec, schema(spec, "GenerationResponse"), body, "generation", frozenset())
    for index, item in enumerate(body["data"]):
        check(spec, schema(spec, "ImageGenerationObject"), item, f"data[{index}]", frozenset())


def test_error_bodies_match_generation_error_response(spec: dict[str, Any], server: SandboxServer) -> None:
    server.set_faults(payment_required="insufficient_funds")
    try:
        refused = post(server, "ideogram-3", {"prompt": "p"})
    finally:
        server.set_faults(payment_required=None)
    assert refused.status_code == 402
    check(spec, schema(spec, "GenerationErrorResponse"), refused.json(), "402", frozenset())
    server.set_faults(rate_limit_next=1)
    busy = post(server, "ideogram-3", {"prompt": "p"})
    assert busy.status_code == 429
    check(spec, schema(spec, "GenerationErrorResponse"), busy.json(), "429", frozenset())
