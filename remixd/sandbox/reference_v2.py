"""Facts about Ideogram's v2 remix routes and generation polling that the sandbox enforces, copied from the
v2 OpenAPI excerpt (tests/fixtures/reference/ideogram-openapi-v2-remix.json) and the 2026 reference notes.

Written out here rather than imported from ``remixd.ideogram`` on purpose, like ``reference.py``: the sandbox
checks the client. ``tests/unit/sandbox/test_sandbox_openapi_v2.py`` compares every value with the excerpt.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from remixd.sandbox import reference

REMIX_PREFIX: Final = "/v2/image/remix/"
GENERATIONS_PREFIX: Final = "/v2/generations/"
MB: Final = 1_000_000

# Every property of each route's request schema: what the route reads. Anything else is ignored (as Ideogram
# does: "a seed on remix/ideogram-4 prices normally") and recorded.
_SHARED = frozenset(
    {
        "prompt", "image", "image_asset_identifier", "image_weight", "num_images", "async", "webhook_url",
        "private", "target_collection_id", "enable_copyright_detection",
    }
)  # fmt: skip
_STYLE_REFS = frozenset({"style_reference_images", "style_reference_asset_identifiers"})
_V3_COMMON = _SHARED | {"aspect_ratio", "resolution", "rendering_speed", "magic_prompt", "negative_prompt", "seed"}
FIELDS: Final = {
    "ideogram-4": _SHARED | {"rendering_speed", "resolution"},
    "ideogram-3": _V3_COMMON
    | _STYLE_REFS
    | {
        "color_palette",
        "style_codes",
        "style_preset",
        "style_type",
        "style_reference_collection_id",
        "style_reference_collection_version_id",
    },
    "ideogram-3-character": _V3_COMMON
    | _STYLE_REFS
    | {
        "character_reference_asset_identifiers",
        "character_reference_collection_id",
        "character_reference_collection_version_id",
        "character_reference_images",
        "character_reference_mask",
        "style_reference_collection_id",
        "style_reference_collection_version_id",
        "style_type",
    },
    "ideogram-3-custom-model": _V3_COMMON
    | _STYLE_REFS
    | {"color_palette", "custom_model_uri", "style_codes", "style_preset"},
    "auto": (_V3_COMMON - {"rendering_speed"})
    | {
        "color_palette",
        "resolution_tier",
        "style_codes",
        "style_preset",
        "style_reference_asset_identifiers",
        "style_reference_collection_id",
        "style_reference_collection_version_id",
        "style_type",
    },
}
FILE_FIELDS: Final = frozenset(
    {"image", "style_reference_images", "character_reference_images", "character_reference_mask"}
)
REPEATABLE: Final = frozenset({"style_codes", "style_reference_images", "character_reference_images"})
JSON_FIELDS: Final = frozenset(
    {
        "color_palette", "image_asset_identifier", "style_reference_asset_identifiers",
        "character_reference_asset_identifiers",
    }
)  # fmt: skip
# Account features the sandbox keeps none of: any reference to them is "not found".
ASSET_FIELDS: Final = frozenset(
    {
        "image_asset_identifier", "style_reference_asset_identifiers", "style_reference_collection_id",
        "character_reference_asset_identifiers", "character_reference_collection_id", "target_collection_id",
    }
)  # fmt: skip

RENDERING_SPEEDS: Final = ("turbo", "default", "quality")
MAGIC_PROMPT_MODES: Final = ("auto", "on", "off")
STYLE_TYPES: Final = ("auto", "general", "realistic", "design", "custom", "fiction", "stylized")
STYLE_TYPES_CHARACTER: Final = ("auto", "realistic", "fiction")
STYLE_PRESETS: Final = tuple(preset.lower() for preset in reference.STYLE_PRESETS_V3)
COLOR_PALETTE_PRESETS: Final = tuple(name.lower() for name in reference.COLOR_PALETTE_PRESETS)
RESOLUTION_TIERS: Final = ("1k", "2k")
ASPECT_RATIOS_V4: Final = (
    "auto", "1x4", "1x3", "1x2", "9x16", "10x16", "2x3", "3x4", "4x5", "1x1", "5x4", "4x3", "3x2", "16x10",
    "16x9", "2x1", "3x1", "4x1",
)  # fmt: skip
_V4_SIZES: Final = (
    "2048x2048 1440x2880 2880x1440 1664x2496 2496x1664 1792x2240 2240x1792 1440x2560 2560x1440 1600x2560 "
    "2560x1600 1728x2304 2304x1728 1296x3168 3168x1296 1152x2944 2944x1152 1248x3328 3328x1248 1280x3072 "
    "3072x1280 1024x3072 3072x1024 1024x1024 896x1120 1120x896 864x1152 1152x864 832x1248 1248x832 800x1280 "
    "1280x800 720x1280 1280x720 720x1440 1440x720 512x1536 1536x512"
)
RESOLUTIONS_V4: Final = tuple(_V4_SIZES.split())
RESOLUTION_PATTERN_AUTO: Final = r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$"
CUSTOM_MODEL_URI_MAX: Final = 512
PROMPT_MAX: Final = 10_000
WEBHOOK_URL_MAX: Final = 2048
MAX_STYLE_REFERENCES: Final = 10
MAX_SOURCE_BYTES: Final = 50 * MB
MAX_REFERENCE_BYTES: Final = 25 * MB
DEFAULT_PIXELS: Final = 1_048_576  # without a size, the source's shape at about 1 MP (1024x1024's area)
GENERATION_ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,64}"
CHARACTER_REQUIRED: Final = (
    "A character reference is required: provide a character_reference_collection_id, "
    "character_reference_asset_identifiers, or character_reference_images"
)
REJECT_REASONS: Final = (
    "insufficient_funds", "subscription_required", "daily_limit", "priority_credit_required", "inflight_limit",
    "feature_limit",
)  # fmt: skip
FAILURE_REASON: Final = "content_policy_violation"

# USD per image by rendering speed (reference `ideogram-api-2026.md` §9); the billing identifiers of the dry_run
# quotes of 2026-10-10. The custom model's price was never quoted (UNCONFIRMED): 3.0's rates. `auto` quotes an
# estimate of $0.06 with that as its upper bound; the sandbox bills it $0.05 after the work, so clients must
# take the completed generation's usage_cost_usd_micros rather than the quote.
PRICES: Final = {
    "ideogram-4": {"turbo": Decimal("0.03"), "default": Decimal("0.06"), "quality": Decimal("0.10")},
    "ideogram-3": {"turbo": Decimal("0.03"), "default": Decimal("0.06"), "quality": Decimal("0.09")},
    "ideogram-3-character": {"turbo": Decimal("0.10"), "default": Decimal("0.15"), "quality": Decimal("0.20")},
    "ideogram-3-custom-model": {"turbo": Decimal("0.03"), "default": Decimal("0.06"), "quality": Decimal("0.09")},
    "auto": {"default": Decimal("0.06")},
}
AUTO_BILLED: Final = Decimal("0.05")
BILLING_IDENTIFIERS: Final = {
    "ideogram-4": "ideogram_v4_remix",
    "ideogram-3": "ideogram_v3_remix",
    "ideogram-3-character": "ideogram_v3_character_generation",
    "ideogram-3-custom-model": "ideogram_v3_custom_model_remix",  # UNCONFIRMED: never quoted
    "auto": "auto_remix",
}
