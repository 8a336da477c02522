from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import pytest
from pydantic import ValidationError

from remixd.ideogram import enums as apireference
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse, ResultItem
from remixd.ideogram.routes import MODELS
from tests.helpers import REPO

REFERENCE = REPO / "tests/fixtures/reference"
OPENAPI = REFERENCE / "ideogram-openapi.json"
SEED = REFERENCE / "seed-remix-api.txt"


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return document["components"]["schemas"]  # type: ignore[no-any-return]


def request(**fields: Any) -> RemixRequest:
    return RemixRequest.model_validate({"prompt": "a cat", **fields})


def errors(**fields: Any) -> dict[str, str]:
    """field -> message of each validation error."""
    with pytest.raises(ValidationError) as caught:
        request(**fields)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


# --- the enums and ranges are Ideogram's ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "schema"),
    [
        ("ASPECT_RATIOS_LEGACY", "AspectRatio"),
        ("ASPECT_RATIOS_V3", "AspectRatioV3"),
        ("RESOLUTIONS_LEGACY", "Resolution"),
        ("RESOLUTIONS_V3", "ResolutionV3"),
        ("STYLE_TYPES_LEGACY", "StyleType"),
        ("STYLE_TYPES_V3", "StyleTypeV3"),
        ("STYLE_PRESETS_V3", "StylePresetV3"),
        ("MAGIC_PROMPT_OPTIONS", "MagicPromptOption"),
        ("RENDERING_SPEEDS", "RenderingSpeed"),
        ("COLOR_PALETTE_PRESETS", "ColorPalettePresetName"),
    ],
)
def test_enums_match_the_openapi_schema(schemas: dict[str, Any], ours: str, schema: str) -> None:
    assert tuple(getattr(apireference, ours)) == tuple(schemas[schema]["enum"])


def test_models_are_the_openapi_models_without_auto(schemas: dict[str, Any]) -> None:
    assert set(schemas["ModelEnum"]["enum"]) - set(MODELS) == {"AUTO"}


def test_ranges_match_the_openapi_schema(schemas: dict[str, Any]) -> None:
    legacy_weight = schemas["InitialImageRequest"]["properties"]["image_weight"]
    v3 = schemas["RemixImageRequestV3"]["properties"]
    for source in (legacy_weight, v3["image_weight"]):
        assert (source["minimum"], source["maximum"]) == apireference.IMAGE_WEIGHT_RANGE
    for source in (schemas["ImageRequest"]["properties"]["num_images"], v3["num_images"]):
        assert (source["minimum"], source["maximum"]) == apireference.NUM_IMAGES_RANGE
    assert (schemas["Seed"]["minimum"], schemas["Seed"]["maximum"]) == apireference.SEED_RANGE
    member = schemas["ColorPaletteMember"]["properties"]
    assert (
        member["color_weight"]["minimum"],
        member["color_weight"]["maximum"],
    ) == apireference.COLOR_WEIGHT_RANGE
    assert member["color_hex"]["pattern"] == apireference.COLOR_HEX_PATTERN
    members = schemas["ColorPaletteWithMembers"]["properties"]["members"]
    assert (members["minItems"], members["maxItems"]) == apireference.COLOR_MEMBERS_RANGE
    assert schemas["StyleCode"]["pattern"] == apireference.STYLE_CODE_PATTERN


# --- the seed request (seed-remix-api.txt) ----------------------------------------------------------------

SEED_REQUEST = {
    "prompt": "A serene tropical beach ",
    "model": "V_1",
    "aspect_ratio": "ASPECT_10_16",
    "image_weight": 50,
    "seed": 12345,
    "magic_prompt_option": "AUTO",
    "negative_prompt": "brush strokes, painting",
}


def test_seed_request_goes_to_legacy_remix_as_in_the_seed_example() -> None:
    remix = RemixRequest.model_validate(SEED_REQUEST)
    assert remix.endpoint_path() == "/remix"
    assert remix.image_part_name() == "image_file"
    assert not remix.is_v3()
    assert remix.wire_fields() == SEED_REQUEST
    assert remix.price_per_image_usd() == 0.06
    # the documented image_request, its URL-encoded strings decoded
    match = re.search(r'\{"image_weight".*?\}', SEED.read_text(encoding="utf-8"))
    assert match is not None
    documented = json.loads(match.group(0))
    for key in ("prompt", "negative_prompt"):
        documented[key] = urllib.parse.unquote(documented[key])
    assert remix.wire_fields() == documented


# --- spelling: either is accepted, the endpoint's own is sent ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "given", "sent"),
    [
        ("V_2", "16x9", "ASPECT_16_9"),
        ("V_2", "ASPECT_16_9", "ASPECT_16_9"),
        ("V_3", "ASPECT_16_9", "16x9"),
        ("V_3", "16x9", "16x9"),
        ("V_3", "ASPECT_2_1", "2x1"),
        ("V_1_TURBO", "10x16", "ASPECT_10_16"),
    ],
)
def test_aspect_ratio_is_sent_in_the_endpoints_spelling(model: str, given: str, sent: str) -> None:
    assert request(model=model, aspect_ratio=given).wire_fields()["aspect_ratio"] == sent


@pytest.mark.parametrize(
    ("model", "given", "sent"),
    [
        ("V_2", "1024x1024", "RESOLUTION_1024_1024"),
        ("V_2_TURBO", "RESOLUTION_1280_800", "RESOLUTION_1280_800"),
        ("V_3", "RESOLUTION_1024_1024", "1024x1024"),
        ("V_3", "800x1280", "800x1280"),
    ],
)
def test_resolution_is_sent_in_the_endpoints_spelling(model: str, given: str, sent: str) -> None:
    assert request(model=model, resolution=given).wire_fields()["resolution"] == sent


@pytest.mark.parametrize("spelling", ["magic_prompt", "magic_prompt_option"])
def test_magic_prompt_is_sent_under_the_endpoints_name(spelling: str) -> None:
    legacy = request(model="V_2", **{spelling: "ON"}).wire_fields()
    v3 = request(model="V_3", **{spelling: "ON"}).wire_fields()
    assert (legacy["magic_prompt_option"], "magic_prompt" in legacy) == ("ON", False)
    assert (v3["magic_prompt"], "magic_prompt_option" in v3) == ("ON", False)


def test_both_magic_prompt_spellings_at_once_are_refused() -> None:
    with pytest.raises(ValidationError, match="both magic_prompt and magic_prompt_option are set"):
        request(magic_prompt="ON", magic_prompt_option="ON")


# --- values an endpoint does not take name what it does take ----------------------------------------------


def test_aspect_ratio_only_v3_has_names_the_legacy_values() -> None:
    message = errors(model="V_2", aspect_ratio="ASPECT_2_1")["aspect_ratio"]
    assert message.startswith(
        "'ASPECT_2_1' is not an aspect ratio of model V_2 (legacy /remix) (only V_3, ideogram-3, "
        "ideogram-3-character, ideogram-3-custom-model, auto have it)"
    )
    assert ", ".join(apireference.ASPECT_RATIOS_LEGACY) in message


def test_a_typo_in_an_enum_gets_a_did_you_mean() -> None:
    assert "did you mean 'ASPECT_16_9'?" in errors(aspect_ratio="ASPECT_16_09")["aspect_ratio"]
    assert "did you mean 'RENDER_3D'?" in errors(style_type="RENDER3D")["style_type"]


def test_render_3d_is_not_a_v3_style() -> None:
    message = errors(model="V_3", style_type="RENDER_3D")["style_type"]
    assert message == (
        "'RENDER_3D' is not a style type of model V_3 — use one of AUTO, GENERAL, REALISTIC, DESIGN, CUSTOM, "
        "FICTION, STYLIZED"
    )


def test_resolution_v3_only_value_is_refused_for_legacy() -> None:
    assert "(only V_3, ideogram-4, ideogram-3, " in errors(model="V_2", resolution="800x1280")["resolution"]


@pytest.mark.parametrize(
    ("fields", "field", "allowed"),
    [
        (
            {"model": "V_2", "rendering_speed": "TURBO"},
            "rendering_speed",
            "V_3, ideogram-4, ideogram-3, ideogram-3-character, ideogram-3-custom-model",
        ),
        (
            {"model": "V_2", "style_preset": "WATERCOLOR"},
            "style_preset",
            "V_3, ideogram-3, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_2", "style_codes": ["AAFF5733"]},
            "style_codes",
            "V_3, ideogram-3, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_1", "style_type": "GENERAL"},
            "style_type",
            "V_2, V_2_TURBO, V_2A, V_2A_TURBO, V_3, ideogram-3, ideogram-3-character, auto",
        ),
        (
            {"model": "V_1_TURBO", "style_type": "GENERAL"},
            "style_type",
            "V_2, V_2_TURBO, V_2A, V_2A_TURBO, V_3, ideogram-3, ideogram-3-character, auto",
        ),
        (
            {"model": "V_2A", "negative_prompt": "x"},
            "negative_prompt",
            "V_1, V_1_TURBO, V_2, V_2_TURBO, V_3, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_2A_TURBO", "negative_prompt": "x"},
            "negative_prompt",
            "V_1, V_1_TURBO, V_2, V_2_TURBO, V_3, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_1", "color_palette": {"name": "PASTEL"}},
            "color_palette",
            "V_2, V_2_TURBO, V_3, ideogram-3, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_2A", "color_palette": {"name": "PASTEL"}},
            "color_palette",
            "V_2, V_2_TURBO, V_3, ideogram-3, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_1", "resolution": "RESOLUTION_1024_1024"},
            "resolution",
            "V_2, V_2_TURBO, V_3, ideogram-4, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_2A", "resolution": "RESOLUTION_1024_1024"},
            "resolution",
            "V_2, V_2_TURBO, V_3, ideogram-4, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto",
        ),
        (
            {"model": "V_2A_TURBO", "resolution": "1024x1024"},
            "resolution",
            "V_2, V_2_TURBO, V_3, ideogram-4, ideogram-3, ideogram-3-character, ideogram-3-custom-model, auto",
        ),
    ],
)
def test_fields_a_model_does_not_take(fields: dict[str, Any], field: str, allowed: str) -> None:
    message = errors(**fields)[field]
    assert message == (
        f"{field} is not available for model {fields['model']} — remove {field}, "
        f"or use a model that takes it: {allowed}"
    )


def test_aspect_ratio_xor_resolution() -> None:
    message = errors(aspect_ratio="ASPECT_1_1", resolution="RESOLUTION_1024_1024")["resolution"]
    assert message.startswith("aspect_ratio and resolution are both set")


def test_style_codes_xor_style_type() -> None:
    message = errors(model="V_3", style_type="GENERAL", style_codes=["AAFF5733"])["style_codes"]
    assert message.startswith("style_codes and style_type are both set")


def test_legacy_auto_model_is_refused_with_the_remix_models() -> None:
    message = errors(model="AUTO")["model"]
    assert "use one of V_1, V_1_TURBO, V_2, V_2_TURBO, V_2A, V_2A_TURBO, V_3, ideogram-4, " in message


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("image_weight", 1, 100), ("seed", 0, 2147483647), ("num_images", 1, 8)],
)
def test_integer_ranges(field: str, low: int, high: int) -> None:
    assert request(**{field: low}).wire_fields()[field] == low
    assert request(**{field: high}).wire_fields()[field] == high
    assert field in errors(**{field: low - 1})
    assert field in errors(**{field: high + 1})


@pytest.mark.parametrize("value", [True, 5.0, "5"])
@pytest.mark.parametrize("field", ["image_weight", "seed", "num_images"])
def test_integers_are_strict(field: str, value: object) -> None:
    assert field in errors(**{field: value})


def test_null_means_unset_so_a_rule_can_clear_a_default() -> None:
    assert request(seed=None, image_weight=None).wire_fields() == {"prompt": "a cat", "model": "V_2"}
    assert "num_images" in errors(num_images=None)


@pytest.mark.parametrize(
    ("palette", "location"),
    [
        ({"name": "PASTEL", "members": [{"color_hex": "#fff"}]}, "color_palette"),
        ({}, "color_palette"),
        ({"members": []}, "color_palette.members"),
        ({"members": [{"color_hex": "#fff"}] * 9}, "color_palette.members"),
        ({"members": [{"color_hex": "fff"}]}, "color_palette.members.0.color_hex"),
        ({"members": [{"color_hex": "#ffff"}]}, "color_palette.members.0.color_hex"),
        ({"members": [{"color_hex": "#fff", "color_weight": 0.01}]}, "color_palette.members.0.color_weight"),
        ({"members": [{"color_hex": "#fff", "color_weight": 1.5}]}, "color_palette.members.0.color_weight"),
        ({"name": "PASTELL"}, "color_palette.name"),
        ({"name": None}, "color_palette"),
    ],
)
def test_color_palette_rules(palette: dict[str, Any], location: str) -> None:
    assert location in errors(model="V_2", color_palette=palette)


def test_a_null_palette_name_is_no_name() -> None:
    palette = {"name": None, "members": [{"color_hex": "#abc"}]}
    assert request(model="V_2", color_palette=palette).wire_fields()["color_palette"] == {"members": palette["members"]}


def test_color_palette_members_are_sent_as_objects() -> None:
    palette = {"members": [{"color_hex": "#b470b3", "color_weight": 0.49}, {"color_hex": "#ABC"}]}
    assert request(model="V_3", color_palette=palette).wire_fields()["color_palette"] == palette
    assert request(model="V_2", color_palette={"name": "EMBER"}).wire_fields()["color_palette"] == {"name": "EMBER"}


def test_style_codes_pattern_and_wire_form() -> None:
    assert "style_codes.0" in errors(model="V_3", style_codes=["XYZ"])
    assert request(model="V_3", style_codes=["AAFF5733", "0133ff57"]).wire_fields()["style_codes"] == [
        "AAFF5733",
        "0133ff57",
    ]


def test_unknown_fields_and_blank_prompts_are_refused() -> None:
    assert errors(aspect="ASPECT_1_1")["aspect"] == "Extra inputs are not permitted"
    assert errors(prompt="  ")["prompt"].startswith("the prompt is empty")


# --- wire fields, prices, fingerprints --------------------------------------------------------------------


def test_wire_fields_hold_only_what_was_set() -> None:
    assert request().wire_fields() == {"prompt": "a cat", "model": "V_2"}
    assert request(model="V_3").wire_fields() == {"prompt": "a cat"}
    assert request(num_images=2).wire_fields() == {"prompt": "a cat", "model": "V_2", "num_images": 2}


def test_v3_request_shape() -> None:
    remix = request(model="V_3", rendering_speed="QUALITY", style_preset="WATERCOLOR", seed=7)
    assert (remix.is_v3(), remix.endpoint_path(), remix.image_part_name()) == (
        True,
        "/v1/ideogram-v3/remix",
        "image",
    )
    assert remix.wire_fields() == {
        "prompt": "a cat",
        "rendering_speed": "QUALITY",
        "style_preset": "WATERCOLOR",
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("fields", "price"),
    [
        ({"model": "V_1"}, 0.06),
        ({"model": "V_1_TURBO"}, 0.02),
        ({"model": "V_2"}, 0.08),
        ({"model": "V_2_TURBO"}, 0.05),
        ({"model": "V_2A"}, 0.04),
        ({"model": "V_2A_TURBO"}, 0.025),
        ({"model": "V_3"}, 0.06),
        ({"model": "V_3", "rendering_speed": "FLASH"}, 0.03),
        ({"model": "V_3", "rendering_speed": "TURBO"}, 0.03),
        ({"model": "V_3", "rendering_speed": "BALANCED"}, 0.06),
        ({"model": "V_3", "rendering_speed": "DEFAULT"}, 0.06),
        ({"model": "V_3", "rendering_speed": "QUALITY"}, 0.09),
    ],
)
def test_prices(fields: dict[str, Any], price: float) -> None:
    remix = request(**fields)
    assert remix.price_per_image_usd() == price
    assert request(**fields, num_images=3).cost_usd() == round(price * 3, 6)


def test_cost_has_no_float_noise() -> None:
    assert request(model="V_2A_TURBO", num_images=3).cost_usd() == 0.075


def test_fingerprint_is_stable_across_spellings_and_key_order() -> None:
    first = RemixRequest.model_validate({"prompt": "p", "model": "V_3", "aspect_ratio": "ASPECT_16_9", "seed": 1})
    second = RemixRequest.model_validate({"seed": 1, "aspect_ratio": "16x9", "model": "V_3", "prompt": "p"})
    assert first.fingerprint() == second.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint())


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "another"},
        {"model": "V_2_TURBO"},
        {"aspect_ratio": "ASPECT_1_1"},
        {"image_weight": 51},
        {"seed": 12346},
        {"magic_prompt_option": "ON"},
        {"negative_prompt": "oil"},
        {"num_images": 2},
    ],
)
def test_fingerprint_changes_with_any_field(change: dict[str, Any]) -> None:
    base = RemixRequest.model_validate(SEED_REQUEST)
    assert RemixRequest.model_validate({**SEED_REQUEST, **change}).fingerprint() != base.fingerprint()


def test_with_prompt_keeps_everything_else() -> None:
    base = RemixRequest.model_validate(SEED_REQUEST)
    rendered = base.with_prompt("A beach, IMG_1")
    assert rendered.wire_fields() == {**SEED_REQUEST, "prompt": "A beach, IMG_1"}
    assert "num_images" not in rendered.wire_fields()
    with pytest.raises(ValidationError):
        base.with_prompt("")


def test_requests_are_frozen() -> None:
    remix = request()
    with pytest.raises(ValidationError):
        remix.seed = 3  # frozen: assignment is refused


# --- responses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", [{"url": None}, {"url": ""}, {}])
def test_missing_url_means_no_image(item: dict[str, Any]) -> None:
    parsed = ResultItem.model_validate({"is_image_safe": False, **item})
    assert (parsed.url, parsed.has_image) == (None, False)


def test_safety_flag_defaults_to_whether_there_is_an_image() -> None:
    assert ResultItem.model_validate({"url": "https://x/y.png"}).is_image_safe is True
    assert ResultItem.model_validate({}).is_image_safe is False


def test_response_parses_the_seed_example_and_ignores_extra_keys() -> None:
    body = {
        "created": "2024-08-27T15:40:31.101790+00:00",
        "data": [
            {
                "is_image_safe": True,
                "prompt": "A serene…",
                "resolution": "768x1232",
                "seed": 12345,
                "url": "https://ideogram.ai/api/images/ephemeral/T.png?exp=1&sig=ab",
                "upscaled_resolution": "1x1",
            }
        ],
        "extra": 1,
    }
    response = RemixResponse.model_validate(body)
    assert response.created == body["created"]
    assert (response.data[0].seed, response.data[0].resolution, response.data[0].style_type) == (
        12345,
        "768x1232",
        None,
    )


@pytest.mark.parametrize(
    "body",
    [{"created": "x", "data": []}, {"data": [{}]}, {"created": 5, "data": [{}]}, {"created": "x"}],
)
def test_malformed_responses_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RemixResponse.model_validate(body)
