"""Ideogram's remix routes as data: `request.model` picks one entry of `ROUTES`.

An entry holds everything that differs between routes: the path, the request fields the route takes, the
values of its enums, its patterns, limits, cross-field rules and price. `ideogram.requests` reads the entry and
has no per-route code, so a new route (Ideogram 4.5, once its schema is published) is an entry here and its tests
(`tests/unit/ideogram/test_routes.py` holds every entry to the OpenAPI documents). README "Choosing a route"
explains the choice to users.

Field names are remixd's request names: `magic_prompt_option` is sent as `magic_prompt` outside legacy /remix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from remixd.ideogram import enums

Family = Literal["legacy", "v1", "v2"]
RuleName = Literal[
    "aspect_xor_resolution",  # a request gives at most one of aspect_ratio and resolution
    "style_codes_alone",  # V_3: style_codes not with style_type
    "preset_alone",  # v2: style_preset not with style_codes or style references
    "character_required",  # ideogram-3-character: a character reference image is required
    "mask_needs_character",  # a character mask only beside a character reference
    "weight_keeps_shape",  # ideogram-4: image_weight only when the output keeps the source's shape (per file)
]

MIB = 1024 * 1024
MB = 1000 * 1000  # v2 limits read as decimal megabytes: the smaller reading of "50MB" (reference §8)

# Fields every route takes, beyond its own: the prompt, the model that picks the route, the image count.
COMMON_FIELDS = frozenset({"prompt", "model", "num_images"})
FILE_FIELDS = ("style_reference_images", "character_reference_images", "character_reference_mask")


@dataclass(frozen=True)
class Route:
    model: str  # the `request.model` value that picks this route
    path: str
    family: Family
    fields: frozenset[str]  # the request fields the route takes, beyond COMMON_FIELDS
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field -> values, as sent
    patterns: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    rules: frozenset[RuleName] = frozenset()
    price_usd: Mapping[str, float] = field(default_factory=dict)  # by rendering_speed; "" without speeds
    default_speed: str = ""  # what is billed when rendering_speed is unset
    max_source_bytes: int = 10 * MIB
    prompt_max_chars: int | None = None
    max_style_references: int = 0
    max_character_references: int = 0
    max_reference_bytes: int = 25 * MB  # each reference image
    seed_honoured: bool = True
    price_note: str = ""

    def __post_init__(self) -> None:
        # Entries share enum tables; each keeps the enums of the fields it takes.
        kept = {name: values for name, values in self.enums.items() if name.split(".")[0] in self.fields}
        object.__setattr__(self, "enums", kept)

    @property
    def image_part(self) -> str:
        return "image_file" if self.family == "legacy" else "image"

    @property
    def is_v2(self) -> bool:
        return self.family == "v2"

    def takes(self, name: str) -> bool:
        return name in COMMON_FIELDS or name in self.fields

    def price_per_image_usd(self, rendering_speed: str | None) -> float:
        return self.price_usd[rendering_speed or self.default_speed]


# ------------------------------------------------------------------------------------- legacy and 3.0

_LEGACY_ENUMS = {
    "aspect_ratio": enums.ASPECT_RATIOS_LEGACY,
    "resolution": enums.RESOLUTIONS_LEGACY,
    "magic_prompt_option": enums.MAGIC_PROMPT_OPTIONS,
    "style_type": enums.STYLE_TYPES_LEGACY,
    "color_palette.name": enums.COLOR_PALETTE_PRESETS,
}
_LEGACY_BASE = frozenset({"aspect_ratio", "image_weight", "magic_prompt_option", "seed"})
# Which legacy models take which fields (reference `ideogram-api.md` §1.2): 1.0 has no style types or
# palettes, 2a no negative prompt or palette, and only 2.0 takes an explicit resolution.
_LEGACY_EXTRA = {
    "V_1": {"negative_prompt"},
    "V_1_TURBO": {"negative_prompt"},
    "V_2": {"negative_prompt", "style_type", "color_palette", "resolution"},
    "V_2_TURBO": {"negative_prompt", "style_type", "color_palette", "resolution"},
    "V_2A": {"style_type"},
    "V_2A_TURBO": {"style_type"},
}
# USD per output image, https://ideogram.ai/features/api-pricing ("Last revised: Aug 6, 2025", reference
# `ideogram-api.md` §5): remix is billed at the model's Generate rate, per image returned, withheld ones included.
_LEGACY_PRICES = {"V_1": 0.06, "V_1_TURBO": 0.02, "V_2": 0.08, "V_2_TURBO": 0.05, "V_2A": 0.04, "V_2A_TURBO": 0.025}


def _legacy(model: str) -> Route:
    return Route(
        model=model,
        path="/remix",
        family="legacy",
        fields=_LEGACY_BASE | _LEGACY_EXTRA[model],
        enums=_LEGACY_ENUMS,
        rules=frozenset({"aspect_xor_resolution"}),
        price_usd={"": _LEGACY_PRICES[model]},
        price_note="price page",
    )


_V3 = Route(
    model="V_3",
    path="/v1/ideogram-v3/remix",
    family="v1",
    fields=frozenset(
        {
            "aspect_ratio",
            "resolution",
            "image_weight",
            "magic_prompt_option",
            "seed",
            "style_type",
            "negative_prompt",
            "color_palette",
            "rendering_speed",
            "style_codes",
            "style_preset",
        }
    ),
    enums={
        "aspect_ratio": enums.ASPECT_RATIOS_V3,
        "resolution": enums.RESOLUTIONS_V3,
        "magic_prompt_option": enums.MAGIC_PROMPT_OPTIONS,
        "style_type": enums.STYLE_TYPES_V3,
        "style_preset": enums.STYLE_PRESETS_V3,
        "rendering_speed": enums.RENDERING_SPEEDS,
        "color_palette.name": enums.COLOR_PALETTE_PRESETS,
    },
    rules=frozenset({"aspect_xor_resolution", "style_codes_alone"}),
    # BALANCED is in the schema but not on the price page (UNCONFIRMED): priced like DEFAULT, the speed it sits
    # beside, so budgets do not undercount it as one of the cheap speeds.
    price_usd={"FLASH": 0.03, "TURBO": 0.03, "BALANCED": 0.06, "DEFAULT": 0.06, "QUALITY": 0.09},
    default_speed="DEFAULT",
    price_note="price page",
)

# ------------------------------------------------------------------------------------------- v2 routes
# Schemas of the v2 OpenAPI excerpt (tests/fixtures/reference/ideogram-openapi-v2-remix.json). Of each
# schema's fields remixd offers those a folder rule can use; the source is always the uploaded `image`, and
# asset identifiers, saved collections, webhooks and target collections are not offered (test_routes.py lists
# them). Prices: reference `ideogram-api-2026.md` §9 (dry_run quotes of 2026-10-10 and the price page).

_V2_SHARED = frozenset({"image_weight", "private", "enable_copyright_detection"})
_V2_3_FIELDS = _V2_SHARED | {
    "aspect_ratio", "resolution", "rendering_speed", "magic_prompt_option", "negative_prompt", "seed",
    "style_reference_images",
}  # fmt: skip
_V2_3_ENUMS = {
    "aspect_ratio": enums.ASPECT_RATIOS_V3,
    "resolution": enums.RESOLUTIONS_V3,
    "rendering_speed": enums.RENDERING_SPEEDS_V2,
    "magic_prompt_option": enums.MAGIC_PROMPT_MODES,
    "style_type": enums.STYLE_TYPES_V2,
    "style_preset": enums.STYLE_PRESETS_V2,
    "color_palette.name": enums.COLOR_PALETTE_PRESETS_V2,
}
_V2_SOURCE_BYTES = 50 * MB  # "max 50MB" on every v2 remix route
_V2_3_RULES: frozenset[RuleName] = frozenset({"aspect_xor_resolution", "preset_alone"})


def _v2_path(model: str) -> str:
    return f"/v2/image/remix/{model}"


_V2_ROUTES = (
    Route(
        model="ideogram-4",
        path=_v2_path("ideogram-4"),
        family="v2",
        fields=_V2_SHARED | {"resolution", "rendering_speed"},
        enums={"resolution": enums.RESOLUTIONS_V4, "rendering_speed": enums.RENDERING_SPEEDS_V2},
        rules=frozenset({"weight_keeps_shape"}),
        price_usd={"turbo": 0.03, "default": 0.06, "quality": 0.10},
        default_speed="default",
        seed_honoured=False,  # "Remixes are not reproducible, so no seed is accepted"
        price_note="quote (default), price page (turbo, quality)",
        max_source_bytes=_V2_SOURCE_BYTES,
        prompt_max_chars=enums.PROMPT_MAX_CHARS_V2,
    ),
    Route(
        model="ideogram-3",
        path=_v2_path("ideogram-3"),
        family="v2",
        fields=_V2_3_FIELDS | {"style_type", "style_preset", "style_codes", "color_palette"},
        enums=_V2_3_ENUMS,
        rules=_V2_3_RULES,
        price_usd={"turbo": 0.03, "default": 0.06, "quality": 0.09},
        default_speed="default",
        max_style_references=10,
        price_note="quote (default), price page (turbo, quality)",
        max_source_bytes=_V2_SOURCE_BYTES,
        prompt_max_chars=enums.PROMPT_MAX_CHARS_V2,
    ),
    Route(
        model="ideogram-3-character",
        path=_v2_path("ideogram-3-character"),
        family="v2",
        fields=_V2_3_FIELDS | {"style_type", "character_reference_images", "character_reference_mask"},
        enums={**_V2_3_ENUMS, "style_type": enums.STYLE_TYPES_V2_CHARACTER},
        required=frozenset({"character_reference_images"}),
        rules=frozenset({"aspect_xor_resolution", "character_required", "mask_needs_character"}),
        price_usd={"turbo": 0.10, "default": 0.15, "quality": 0.20},
        default_speed="default",
        max_style_references=10,
        max_character_references=1,
        price_note="quote (default), price page (turbo, quality)",
        max_source_bytes=_V2_SOURCE_BYTES,
        prompt_max_chars=enums.PROMPT_MAX_CHARS_V2,
    ),
    Route(
        model="ideogram-3-custom-model",
        path=_v2_path("ideogram-3-custom-model"),
        family="v2",
        fields=_V2_3_FIELDS | {"custom_model_uri", "style_preset", "style_codes", "color_palette"},
        enums=_V2_3_ENUMS,
        patterns={"custom_model_uri": enums.CUSTOM_MODEL_URI_PATTERN},
        required=frozenset({"custom_model_uri"}),
        rules=_V2_3_RULES,
        # Not quoted (UNCONFIRMED): 3.0's rates. Unset, the server picks a speed the model supports, so the
        # budget counts the dearest one rather than undercount.
        price_usd={"turbo": 0.03, "default": 0.06, "quality": 0.09},
        default_speed="quality",
        max_style_references=10,
        price_note="UNCONFIRMED: 3.0's rates; quote it on your account",
        max_source_bytes=_V2_SOURCE_BYTES,
        prompt_max_chars=enums.PROMPT_MAX_CHARS_V2,
    ),
    Route(
        model="auto",
        path=_v2_path("auto"),
        family="v2",
        fields=_V2_SHARED
        | {
            "aspect_ratio",
            "resolution",
            "resolution_tier",
            "magic_prompt_option",
            "negative_prompt",
            "seed",
            "style_type",
            "style_preset",
            "style_codes",
            "color_palette",
        },
        enums={
            **{name: values for name, values in _V2_3_ENUMS.items() if name != "resolution"},  # a pattern here
            "aspect_ratio": enums.ASPECT_RATIOS_V4,
            "resolution_tier": enums.RESOLUTION_TIERS,
        },
        patterns={"resolution": enums.RESOLUTION_PATTERN_AUTO},
        rules=_V2_3_RULES,
        price_usd={"": 0.06},  # an estimate with an upper bound of $0.06
        seed_honoured=False,  # "only honored when the request uses a model that supports reproducible remixes"
        price_note="quote (estimate, upper bound $0.06)",
        max_source_bytes=_V2_SOURCE_BYTES,
        prompt_max_chars=enums.PROMPT_MAX_CHARS_V2,
    ),
)

ROUTES: Mapping[str, Route] = {
    route.model: route for route in (*(_legacy(model) for model in _LEGACY_PRICES), _V3, *_V2_ROUTES)
}
MODELS = tuple(ROUTES)
V2_MODELS = tuple(route.model for route in _V2_ROUTES)
LEGACY_PATH = ROUTES["V_2"].path


def models_taking(name: str) -> tuple[str, ...]:
    """The models whose route takes a field, for "use a model that takes it"."""
    return tuple(route.model for route in ROUTES.values() if route.takes(name))
