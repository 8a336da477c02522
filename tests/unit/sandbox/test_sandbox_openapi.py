"""The sandbox against Ideogram's OpenAPI document: same enums, same ranges, same field names, and success
answers that validate against the response schemas."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from PIL import Image

from remixd.sandbox import reference
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from remixd.sandbox.validation import LEGACY_FIELDS
from remixd.sandbox.validation_v3 import V3_FIELDS
from tests.helpers import REPO, FakeClock

SPEC_PATH = REPO / "tests/fixtures/reference/ideogram-openapi.json"
KEY = "sandbox"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(SPEC_PATH.read_text()))


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def enum(spec: dict[str, Any], name: str) -> tuple[str, ...]:
    return tuple(schema(spec, name)["enum"])


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(
        SandboxOptions(), clock=FakeClock(datetime(2025, 6, 15, 15, 6, 40, 500_000, tzinfo=UTC))
    ) as running:
        yield running


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------ enums


@pytest.mark.parametrize(
    ("ours", "spec_name"),
    [
        (reference.ASPECT_RATIOS_LEGACY, "AspectRatio"),
        (reference.ASPECT_RATIOS_V3, "AspectRatioV3"),
        (reference.RESOLUTIONS_LEGACY, "Resolution"),
        (reference.RESOLUTIONS_V3, "ResolutionV3"),
        (reference.STYLE_TYPES_LEGACY, "StyleType"),
        (reference.STYLE_TYPES_V3, "StyleTypeV3"),
        (reference.STYLE_PRESETS_V3, "StylePresetV3"),
        (reference.MAGIC_PROMPT_OPTIONS, "MagicPromptOption"),
        (reference.MAGIC_PROMPT_VERSIONS, "MagicPromptVersionEnum"),
        (reference.RENDERING_SPEEDS, "RenderingSpeed"),
        (reference.COLOR_PALETTE_PRESETS, "ColorPalettePresetName"),
    ],
)
def test_enum_equals_spec(spec: dict[str, Any], ours: tuple[str, ...], spec_name: str) -> None:
    assert ours == enum(spec, spec_name)


def test_resolution_spellings(spec: dict[str, Any]) -> None:
    assert all(re.fullmatch(r"RESOLUTION_\d+_\d+", value) for value in enum(spec, "Resolution"))
    assert all(re.fullmatch(r"\d+x\d+", value) for value in enum(spec, "ResolutionV3"))


def test_models(spec: dict[str, Any]) -> None:
    models = enum(spec, "ModelEnum")
    assert tuple(m for m in models if m not in ("V_3", "AUTO")) == reference.MODELS_LEGACY
    assert set(reference.MODELS_LEGACY_EXTRA) == set(models) - set(reference.MODELS_LEGACY)
    assert schema(spec, "ModelEnum")["default"] == "V_2"
    assert set(reference.PRICE_LEGACY) == set(models)
    assert set(reference.PRICE_V3) == set(reference.PRICE_V3_CHARACTER) == set(enum(spec, "RenderingSpeed"))


def test_default_sizes_are_real_sizes(spec: dict[str, Any]) -> None:
    v3_sizes = set(enum(spec, "ResolutionV3"))
    assert set(reference.SIZE_FOR_RATIO) == set(enum(spec, "AspectRatioV3"))
    assert {f"{w}x{h}" for w, h in reference.SIZE_FOR_RATIO.values()} <= v3_sizes
    legacy_ratios = {reference.legacy_ratio_key(ratio) for ratio in enum(spec, "AspectRatio")}
    assert legacy_ratios <= set(reference.SIZE_FOR_RATIO)
    legacy_sizes = {value.removeprefix("RESOLUTION_").replace("_", "x") for value in enum(spec, "Resolution")}
    assert {f"{w}x{h}" for w, h in reference.SIZE_FOR_RATIO_V1.values()} <= legacy_sizes | v3_sizes


# ------------------------------------------------------------ fields and ranges


def test_field_names(spec: dict[str, Any]) -> None:
    legacy = set(schema(spec, "ImageRequest")["properties"]) | set(schema(spec, "InitialImageRequest")["properties"])
    assert legacy == LEGACY_FIELDS
    v3 = schema(spec, "RemixImageRequestV3")
    assert set(v3["properties"]) == V3_FIELDS
    assert set(v3["required"]) == {"image", "prompt"}
    remix = schema(spec, "RemixImageRequest")
    assert set(remix["required"]) == {"image_file", "image_request"}
    assert {reference.LEGACY_PATH, reference.V3_PATH} <= set(spec["paths"])


def test_ranges(spec: dict[str, Any]) -> None:
    def bounds(prop: dict[str, Any]) -> tuple[Any, Any]:
        return prop["minimum"], prop["maximum"]

    legacy = schema(spec, "ImageRequest")["properties"]
    initial = schema(spec, "InitialImageRequest")["properties"]
    v3 = schema(spec, "RemixImageRequestV3")["properties"]
    assert bounds(initial["image_weight"]) == bounds(v3["image_weight"]) == reference.IMAGE_WEIGHT_RANGE
    assert initial["image_weight"]["default"] == v3["image_weight"]["default"] == 50
    assert bounds(legacy["seed"]) == bounds(schema(spec, "Seed")) == reference.SEED_RANGE
    assert bounds(legacy["num_images"]) == bounds(v3["num_images"]) == reference.NUM_IMAGES_RANGE
    member = schema(spec, "ColorPaletteMember")["properties"]
    assert bounds(member["color_weight"]) == reference.COLOR_WEIGHT_RANGE
    assert member["color_hex"]["pattern"] == reference.COLOR_HEX_PATTERN
    members = schema(spec, "ColorPaletteMembers")
    assert (members["minItems"], members["maxItems"]) == reference.PALETTE_MEMBERS_RANGE
    assert schema(spec, "StyleCode")["pattern"] == reference.STYLE_CODE_PATTERN


def post_legacy(server: SandboxServer, request: dict[str, Any]) -> requests.Response:
    files: dict[str, Any] = {
        "image_request": (None, json.dumps(request)),
        "image_file": ("a.png", png(), "image/png"),
    }
    return requests.post(server.base_url + "/remix", files=files, headers={"Api-Key": KEY}, timeout=30)


def post_v3(server: SandboxServer, fields: dict[str, str]) -> requests.Response:
    files: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields.items()]
    files.append(("image", ("a.png", png(), "image/png")))
    return requests.post(server.base_url + "/v1/ideogram-v3/remix", files=files, headers={"Api-Key": KEY}, timeout=30)


@pytest.mark.parametrize("field", ["image_weight", "seed", "num_images"])
def test_sandbox_enforces_the_spec_ranges(spec: dict[str, Any], server: SandboxServer, field: str) -> None:
    props = {
        **schema(spec, "ImageRequest")["properties"],
        **schema(spec, "InitialImageRequest")["properties"],
    }
    low, high = props[field]["minimum"], props[field]["maximum"]
    for value, status in ((low, 200), (high, 200), (low - 1, 400), (high + 1, 400)):
        assert post_legacy(server, {"prompt": "p", field: value}).status_code == status, (field, value)
        assert post_v3(server, {"prompt": "p", field: str(value)}).status_code == status, (field, value)


# ------------------------------------------------------------ responses


def check(  # noqa: PLR0912 - one branch per JSON Schema keyword
    spec: dict[str, Any], node: dict[str, Any], value: Any, where: str, allow_null: frozenset[str]
) -> None:
    """A tiny JSON Schema subset: $ref, allOf, type, nullable, enum, pattern, bounds, required, items."""
    if "$ref" in node:
        check(spec, schema(spec, node["$ref"].rsplit("/", 1)[1]), value, where, allow_null)
        return
    for part in node.get("allOf", []):
        check(spec, part, value, where, allow_null)
    if value is None:
        assert node.get("nullable") or where.rsplit(".", 1)[-1] in allow_null, f"{where} is null"
        return
    kind = node.get("type")
    types: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "array": list,
        "object": dict,
    }
    if kind is not None:
        assert isinstance(value, types[kind]), f"{where}: {value!r} is not {kind}"
        if kind in ("integer", "number"):
            assert not isinstance(value, bool), f"{where}: bool is not {kind}"
    if "enum" in node:
        assert value in node["enum"], f"{where}: {value!r} not in enum"
    if "pattern" in node:
        assert re.search(node["pattern"], value), f"{where}: {value!r} !~ {node['pattern']}"
    if node.get("format") == "date-time":
        datetime.fromisoformat(value)
    if "minimum" in node:
        assert value >= node["minimum"], where
    if "maximum" in node:
        assert value <= node["maximum"], where
    for name in node.get("required", []):
        assert name in value, f"{where}.{name} is required"
    for name, sub in node.get("properties", {}).items():
        if isinstance(value, dict) and name in value:
            check(spec, sub, value[name], f"{where}.{name}", allow_null)
    if "items" in node:
        for index, item in enumerate(value):
            check(spec, node["items"], item, f"{where}[{index}]", allow_null)


# The spec declares style_type non-nullable, but the reference's V_1 sample (GW-KEY4U) answers null: allowed.
NULL_STYLE = frozenset({"style_type"})


def test_checker_can_fail(spec: dict[str, Any]) -> None:
    response_schema = schema(spec, "GenerateImageResponse")
    good: dict[str, Any] = {
        "created": "2024-08-27T15:40:31.101790+00:00",
        "data": [{"prompt": "p", "resolution": "1x1", "is_image_safe": True, "seed": 1, "url": None}],
    }
    check(spec, response_schema, good, "response", NULL_STYLE)
    broken_answers: list[dict[str, Any]] = [
        {"data": []},
        {**good, "data": [{**good["data"][0], "seed": True}]},
        {**good, "data": [{**good["data"][0], "seed": -1}]},
        {**good, "data": [{"prompt": "p"}]},
    ]
    for broken in broken_answers:
        with pytest.raises(AssertionError):
            check(spec, response_schema, broken, "response", NULL_STYLE)


@pytest.mark.parametrize(
    "request_fields",
    [
        {"prompt": "p"},
        {"prompt": "p", "model": "V_1", "aspect_ratio": "ASPECT_10_16", "seed": 12345, "num_images": 2},
        {"prompt": "p", "model": "V_2", "resolution": "RESOLUTION_1280_800", "style_type": "AUTO"},
        {"prompt": "UNSAFE_RESULT p", "model": "V_2A_TURBO", "magic_prompt_option": "ON"},
    ],
)
def test_legacy_answers_match_generate_image_response(
    spec: dict[str, Any], server: SandboxServer, request_fields: dict[str, Any]
) -> None:
    response = post_legacy(server, request_fields)
    assert response.status_code == 200, response.text
    body = response.json()
    check(spec, schema(spec, "GenerateImageResponse"), body, "response", NULL_STYLE)
    assert len(body["data"]) == request_fields.get("num_images", 1)


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": "p"},
        {"prompt": "p", "resolution": "1280x800", "rendering_speed": "TURBO", "style_type": "REALISTIC"},
        {"prompt": "UNSAFE_RESULT", "num_images": "3"},
    ],
)
def test_v3_answers_match_the_v3_response(spec: dict[str, Any], server: SandboxServer, fields: dict[str, str]) -> None:
    response = post_v3(server, fields)
    assert response.status_code == 200, response.text
    body = response.json()
    check(spec, schema(spec, "ImageGenerationResponseV3"), body, "response", frozenset())
    assert all(item["resolution"] in enum(spec, "ResolutionV3") for item in body["data"])


def test_safety_error_matches_spec(spec: dict[str, Any], server: SandboxServer) -> None:
    response = post_legacy(server, {"prompt": "FORBIDDEN_422"})
    assert response.status_code == 422
    check(spec, schema(spec, "GenerateImageSafetyError"), response.json(), "error", frozenset())
