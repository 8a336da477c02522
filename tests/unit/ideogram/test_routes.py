"""The route table against Ideogram's v2 OpenAPI excerpt, and the per-route rules it drives."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from remixd.config.load import load_config
from remixd.errors import ConfigError
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.routes import MB, ROUTES, V2_MODELS, Route
from tests.helpers import REPO

V2_SPEC = REPO / "tests/fixtures/reference/ideogram-openapi-v2-remix.json"
SCHEMAS = {
    "ideogram-4": "RemixImageIdeogramV4Request",
    "ideogram-3": "RemixImageIdeogramV3Request",
    "ideogram-3-character": "RemixImageIdeogramV3CharacterRequest",
    "ideogram-3-custom-model": "RemixImageIdeogramV3CustomModelRequest",
    "auto": "ToolRemixRequest",
}
# Fields of the v2 schemas that remixd does not offer in a rule, and why: the source is always the uploaded
# file; `async` is api.async; assets, saved collections, webhooks and target collections are account features
# a folder rule has no use for yet.
NOT_OFFERED = {
    "image": "the input file itself",
    "async": "api.async",
    "webhook_url": "a folder daemon has no public HTTPS endpoint; it polls",
    "image_asset_identifier": "the source is the uploaded file",
    "target_collection_id": "account collections",
    "style_reference_asset_identifiers": "references are files",
    "style_reference_collection_id": "saved styles",
    "style_reference_collection_version_id": "saved styles",
    "character_reference_asset_identifiers": "references are files",
    "character_reference_collection_id": "saved characters",
    "character_reference_collection_version_id": "saved characters",
}
WIRE_NAMES = {"magic_prompt_option": "magic_prompt"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(json.loads(V2_SPEC.read_text(encoding="utf-8")))


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A property with its $ref / allOf followed, so enums and patterns are at hand."""
    while True:
        if "$ref" in node:
            node = {
                **spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]],
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        elif "allOf" in node:
            inner = node["allOf"][0]
            node = {**{k: v for k, v in node.items() if k != "allOf"}, **resolve(spec, inner)}
        else:
            return node


def properties(spec: dict[str, Any], model: str) -> dict[str, dict[str, Any]]:
    schema = spec["components"]["schemas"][SCHEMAS[model]]
    return {name: resolve(spec, prop) for name, prop in schema["properties"].items()}


def offered(route: Route) -> set[str]:
    return {WIRE_NAMES.get(name, name) for name in route.fields} | {"prompt", "num_images"}


@pytest.mark.parametrize("model", list(SCHEMAS))
def test_each_v2_route_offers_exactly_its_schemas_fields(spec: dict[str, Any], model: str) -> None:
    route = ROUTES[model]
    assert route.path == f"/v2/image/remix/{model}"
    assert route.path in spec["paths"]
    schema_fields = set(properties(spec, model))
    assert offered(route) <= schema_fields, offered(route) - schema_fields
    assert schema_fields - offered(route) == set(NOT_OFFERED) & schema_fields


def test_the_table_has_the_five_v2_routes_of_the_excerpt(spec: dict[str, Any]) -> None:
    in_spec = {path.rsplit("/", 1)[1] for path in spec["paths"] if path.startswith("/v2/image/remix/")}
    assert set(V2_MODELS) == in_spec == set(SCHEMAS)
    assert {route.family for route in ROUTES.values()} == {"legacy", "v1", "v2"}


@pytest.mark.parametrize("model", list(SCHEMAS))
def test_enums_patterns_and_limits_are_the_schemas(spec: dict[str, Any], model: str) -> None:
    route, props = ROUTES[model], properties(spec, model)
    for name, values in route.enums.items():
        if name == "color_palette.name":
            if "color_palette" in props:
                names = resolve(spec, {"$ref": "#/components/schemas/IdeogramColorPalettePresetName"})
                assert values == tuple(names["enum"])
            continue
        wire = WIRE_NAMES.get(name, name)
        if wire in props:
            assert values == tuple(props[wire]["enum"]), name
    for name, pattern in route.patterns.items():
        assert props[name]["pattern"] == pattern
    assert props["prompt"]["maxLength"] == route.prompt_max_chars == 10_000
    assert (props["num_images"]["minimum"], props["num_images"]["maximum"]) == (1, 8)
    assert (props["image_weight"]["minimum"], props["image_weight"]["maximum"]) == (1, 100)
    if "seed" in props:
        assert (props["seed"]["minimum"], props["seed"]["maximum"]) == (0, 2_147_483_647)
    assert props.get("style_reference_images", {}).get("maxItems", 0) == route.max_style_references
    assert props.get("character_reference_images", {}).get("maxItems", 0) == route.max_character_references
    required = set(spec["components"]["schemas"][SCHEMAS[model]]["required"]) - {"prompt"}
    assert required == route.required - {"character_reference_images"}
    speed = props.get("rendering_speed", {}).get("default")
    if speed is not None:
        assert route.default_speed == speed
    assert route.max_source_bytes == 50 * MB


@pytest.mark.parametrize("model", list(SCHEMAS))
def test_every_speed_has_a_price(model: str) -> None:
    route = ROUTES[model]
    speeds = route.enums.get("rendering_speed", ("",))
    assert set(route.price_usd) == set(speeds)
    assert route.default_speed in route.price_usd


# ------------------------------------------------------------------------------------ the rules


def request(**fields: Any) -> RemixRequest:
    return RemixRequest.model_validate({"prompt": "a cat", **fields})


def errors(**fields: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        request(**fields)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


def test_a_field_the_route_ignores_is_refused_naming_field_and_route() -> None:
    message = errors(model="ideogram-4", seed=7)["seed"]
    assert message.startswith(
        "seed is not available for model ideogram-4; POST /v2/image/remix/ideogram-4 would ignore it silently"
    )
    assert "use a model that takes it: V_1" in message
    assert set(errors(model="ideogram-4", seed=7, magic_prompt="on", negative_prompt="x")) == {
        "seed",
        "magic_prompt_option",
        "negative_prompt",
    }
    assert (
        "magic_prompt is not available for model ideogram-4"
        in errors(model="ideogram-4", magic_prompt="on")["magic_prompt_option"]
    )


@pytest.mark.parametrize(
    ("model", "field", "given", "sent"),
    [
        ("ideogram-4", "rendering_speed", "TURBO", "turbo"),
        ("ideogram-4", "rendering_speed", "quality", "quality"),
        ("ideogram-3", "style_preset", "WATERCOLOR", "watercolor"),
        ("ideogram-3", "style_type", "REALISTIC", "realistic"),
        ("ideogram-3", "aspect_ratio", "ASPECT_16_9", "16x9"),
        ("ideogram-3", "resolution", "RESOLUTION_1024_1024", "1024x1024"),
        ("ideogram-3", "magic_prompt", "ON", "on"),
        ("auto", "aspect_ratio", "AUTO", "auto"),
        ("auto", "resolution_tier", "2K", "2k"),
    ],
)
def test_enums_are_sent_in_the_routes_spelling(model: str, field: str, given: str, sent: str) -> None:
    wire = request(model=model, **{field: given}).wire_fields()
    assert wire[field] == sent
    assert "model" not in wire  # the path names the model outside legacy /remix


def test_a_palette_preset_is_translated() -> None:
    assert request(model="ideogram-3", color_palette={"name": "PASTEL"}).wire_fields()["color_palette"] == {
        "name": "pastel"
    }
    assert "did you mean 'PASTEL'?" in errors(model="V_2", color_palette={"name": "pastel"})["color_palette"]


def test_resolution_lists_differ_by_route() -> None:
    assert request(model="ideogram-4", resolution="2048x2048").wire_fields()["resolution"] == "2048x2048"
    assert "resolution" in errors(model="ideogram-4", resolution="1536x640")  # a 3.0 size, not a 4.0 one
    assert "resolution" in errors(model="ideogram-3", resolution="2048x2048")
    assert request(model="auto", resolution="1000x1500").wire_fields()["resolution"] == "1000x1500"
    assert "resolution" in errors(model="auto", resolution="1000 x 1500")


def test_v2_prompt_and_image_count_limits() -> None:
    assert request(model="ideogram-4", prompt="x" * 10_000).prompt
    assert "10001 characters" in errors(model="ideogram-4", prompt="x" * 10_001)["prompt"]
    assert request(model="V_2", prompt="x" * 10_001).prompt  # legacy documents no limit
    assert "num_images" in errors(model="ideogram-3", num_images=9)


@pytest.mark.parametrize(
    ("fields", "where", "says"),
    [
        ({"model": "ideogram-3", "aspect_ratio": "1x1", "resolution": "1024x1024"}, "resolution", "both set"),
        ({"model": "auto", "aspect_ratio": "1x1", "resolution": "1024x1024"}, "resolution", "both set"),
        (
            {"model": "ideogram-3", "style_codes": ["AAFF5733"], "style_preset": "watercolor"},
            "style_preset",
            "style_preset and style_codes are both set",
        ),
        (
            {"model": "ideogram-3", "style_reference_images": ["a.png"], "style_preset": "watercolor"},
            "style_preset",
            "style_preset and style_reference_images are both set",
        ),
        ({"model": "ideogram-3-character"}, "character_reference_images", "needs a character reference image"),
        (
            {"model": "ideogram-3-character", "character_reference_images": ["a.png", "b.png"]},
            "character_reference_images",
            "at most 1",
        ),
        (
            {"model": "ideogram-3-character", "character_reference_images": ["a.png"], "style_preset": "x"},
            "style_preset",
            "not available for model ideogram-3-character",
        ),
        ({"model": "ideogram-3-custom-model"}, "custom_model_uri", "needs custom_model_uri"),
        (
            {"model": "ideogram-3-custom-model", "custom_model_uri": "my-model"},
            "custom_model_uri",
            "not of the form model/NAME/version/VERSION",
        ),
        ({"model": "ideogram-3", "style_reference_images": ["r.png"] * 11}, "style_reference_images", "at most 10"),
        ({"model": "auto", "style_reference_images": ["r.png"]}, "style_reference_images", "not available"),
    ],
)
def test_cross_field_rules(fields: dict[str, Any], where: str, says: str) -> None:
    assert says in errors(**fields)[where]


def test_a_custom_model_uri_of_the_right_form_passes() -> None:
    remix = request(model="ideogram-3-custom-model", custom_model_uri="model/shop/version/2")
    assert remix.wire_fields()["custom_model_uri"] == "model/shop/version/2"


def test_image_weight_with_a_shape_change_is_refused_per_file_on_ideogram_4() -> None:
    remix = request(model="ideogram-4", image_weight=40, resolution="1024x1024")
    assert remix.input_problem(2000, 2000) is None
    problem = remix.input_problem(4000, 3000)
    assert problem is not None
    assert "refuses image_weight with resolution 1024x1024: the source is 4000x3000" in problem[0]
    assert request(model="ideogram-4", image_weight=40).input_problem(4000, 3000) is None
    assert request(model="ideogram-3", image_weight=40, resolution="1024x1024").input_problem(4000, 3000) is None


@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"model": "ideogram-4"}, 0.06),
        ({"model": "ideogram-4", "rendering_speed": "turbo"}, 0.03),
        ({"model": "ideogram-4", "rendering_speed": "QUALITY"}, 0.10),
        ({"model": "ideogram-3"}, 0.06),
        ({"model": "ideogram-3", "rendering_speed": "quality"}, 0.09),
        ({"model": "ideogram-3-character", "character_reference_images": ["c.png"]}, 0.15),
        ({"model": "ideogram-3-custom-model", "custom_model_uri": "model/a/version/1"}, 0.09),
        ({"model": "auto"}, 0.06),
    ],
)
def test_v2_prices(fields: dict[str, Any], price: float) -> None:
    assert request(**fields).price_per_image_usd() == price


def test_reference_files_are_not_text_fields_and_change_the_fingerprint() -> None:
    remix = request(model="ideogram-3", style_reference_images=["/r/a.png", "/r/b.png"])
    assert "style_reference_images" not in remix.wire_fields()
    assert remix.reference_files() == [("style_reference_images", "/r/a.png"), ("style_reference_images", "/r/b.png")]
    other = request(model="ideogram-3", style_reference_images=["/r/a.png"])
    assert remix.fingerprint() != other.fingerprint() != request(model="ideogram-3").fingerprint()


# ------------------------------------------------------------------------ reference images at load


def png(size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def config(tmp_path: Path, request_yaml: str) -> Path:
    path = tmp_path / "remixd.yaml"
    path.write_text(
        "api:\n  sandbox: true\nstate_dir: ./state\ninboxes:\n  - path: ./inbox\n    output: ./out\n"
        "    failed_dir: ./failed\n    after: keep\nrules:\n  - name: brand\n    match: ['*.png']\n    request:\n"
        "      prompt: p\n" + request_yaml,
        encoding="utf-8",
    )
    return path


def test_reference_images_are_checked_at_load_and_made_absolute(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs/look.png").write_bytes(png())
    path = config(tmp_path, "      model: ideogram-3\n      style_reference_images: [refs/look.png]\n")
    rule = load_config(path).rules[0]
    assert rule.request.style_reference_images == (str(tmp_path / "refs/look.png"),)


def test_bad_reference_images_are_each_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image", encoding="utf-8")
    (tmp_path / "face.png").write_bytes(png((8, 8)))
    (tmp_path / "mask.png").write_bytes(png((4, 4), "L"))
    path = config(
        tmp_path,
        "      model: ideogram-3-character\n      style_reference_images: [missing.png, notes.png]\n"
        "      character_reference_images: [face.png]\n      character_reference_mask: mask.png\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert f"rules[0].request.style_reference_images[0]: {tmp_path / 'missing.png'} does not exist" in text
    assert f"rules[0].request.style_reference_images[1]: {tmp_path / 'notes.png'} is not an image" in text
    assert "rules[0].request.character_reference_mask: the mask is 4x4, the character reference 8x8" in text
