"""Facts about Ideogram's Remix API that the sandbox enforces, copied from the reference.

Written out here rather than imported from ``remixd.ideogram.enums`` on purpose: the sandbox checks the client, so
it must not share the client's mistakes. ``tests/test_sandbox_openapi.py`` compares every tuple below with
Ideogram's OpenAPI document.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

LEGACY_PATH: Final = "/remix"
V3_PATH: Final = "/v1/ideogram-v3/remix"
GATEWAY_PREFIX: Final = "/ideogram"
IMAGE_PATH_PREFIX: Final = "/api/images/ephemeral/"

MODELS_LEGACY: Final = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO")
# In the shared ModelEnum but meant for their own endpoints; legacy /remix accepts them only behind a switch.
MODELS_LEGACY_EXTRA: Final = ("V_3", "AUTO")
MODELS_V1: Final = ("V_1", "V_1_TURBO")
MODELS_V2A: Final = ("V_2A", "V_2A_TURBO")
MODELS_WITH_RESOLUTION: Final = ("V_2", "V_2_TURBO")

ASPECT_RATIOS_LEGACY: Final = (
    "ASPECT_10_16",
    "ASPECT_16_10",
    "ASPECT_9_16",
    "ASPECT_16_9",
    "ASPECT_3_2",
    "ASPECT_2_3",
    "ASPECT_4_3",
    "ASPECT_3_4",
    "ASPECT_1_1",
    "ASPECT_1_3",
    "ASPECT_3_1",
)
ASPECT_RATIOS_V3: Final = (
    "1x3",
    "3x1",
    "1x2",
    "2x1",
    "9x16",
    "16x9",
    "10x16",
    "16x10",
    "2x3",
    "3x2",
    "3x4",
    "4x3",
    "4x5",
    "5x4",
    "1x1",
)

_LEGACY_SIZES: Final = (
    "512_1536 576_1408 576_1472 576_1536 640_1024 640_1344 640_1408 640_1472 640_1536 704_1152 704_1216 "
    "704_1280 704_1344 704_1408 704_1472 720_1280 736_1312 768_1024 768_1088 768_1152 768_1216 768_1232 "
    "768_1280 768_1344 832_960 832_1024 832_1088 832_1152 832_1216 832_1248 864_1152 896_960 896_1024 "
    "896_1088 896_1120 896_1152 960_832 960_896 960_1024 960_1088 1024_640 1024_768 1024_832 1024_896 "
    "1024_960 1024_1024 1088_768 1088_832 1088_896 1088_960 1120_896 1152_704 1152_768 1152_832 1152_864 "
    "1152_896 1216_704 1216_768 1216_832 1232_768 1248_832 1280_704 1280_720 1280_768 1280_800 1312_736 "
    "1344_640 1344_704 1344_768 1408_576 1408_640 1408_704 1472_576 1472_640 1472_704 1536_512 1536_576 "
    "1536_640"
)
RESOLUTIONS_LEGACY: Final = tuple(f"RESOLUTION_{size}" for size in _LEGACY_SIZES.split())

_V3_SIZES: Final = (
    "512x1536 576x1408 576x1472 576x1536 640x1344 640x1408 640x1472 640x1536 704x1152 704x1216 704x1280 "
    "704x1344 704x1408 704x1472 736x1312 768x1088 768x1216 768x1280 768x1344 800x1280 832x960 832x1024 "
    "832x1088 832x1152 832x1216 832x1248 864x1152 896x960 896x1024 896x1088 896x1120 896x1152 960x832 "
    "960x896 960x1024 960x1088 1024x832 1024x896 1024x960 1024x1024 1088x768 1088x832 1088x896 1088x960 "
    "1120x896 1152x704 1152x832 1152x864 1152x896 1216x704 1216x768 1216x832 1248x832 1280x704 1280x768 "
    "1280x800 1312x736 1344x640 1344x704 1344x768 1408x576 1408x640 1408x704 1472x576 1472x640 1472x704 "
    "1536x512 1536x576 1536x640"
)
RESOLUTIONS_V3: Final = tuple(_V3_SIZES.split())

STYLE_TYPES_LEGACY: Final = (
    "AUTO",
    "GENERAL",
    "FICTION",
    "REALISTIC",
    "DESIGN",
    "RENDER_3D",
    "ANIME",
    "CUSTOM",
    "STYLIZED",
)
STYLE_TYPES_V3: Final = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "CUSTOM", "FICTION", "STYLIZED")
STYLE_PRESETS_V3: Final = (
    "80S_ILLUSTRATION",
    "90S_NOSTALGIA",
    "ABSTRACT_ORGANIC",
    "ANALOG_NOSTALGIA",
    "ART_BRUT",
    "ART_DECO",
    "ART_POSTER",
    "AURA",
    "AVANT_GARDE",
    "BAUHAUS",
    "BLUEPRINT",
    "BLURRY_MOTION",
    "BRIGHT_ART",
    "C4D_CARTOON",
    "CHILDRENS_BOOK",
    "COLLAGE",
    "COLORING_BOOK_I",
    "COLORING_BOOK_II",
    "CUBISM",
    "DARK_AURA",
    "DOODLE",
    "DOUBLE_EXPOSURE",
    "DRAMATIC_CINEMA",
    "EDITORIAL",
    "EMOTIONAL_MINIMAL",
    "ETHEREAL_PARTY",
    "EXPIRED_FILM",
    "FLAT_ART",
    "FLAT_VECTOR",
    "FOREST_REVERIE",
    "GEO_MINIMALIST",
    "GLASS_PRISM",
    "GOLDEN_HOUR",
    "GRAFFITI_I",
    "GRAFFITI_II",
    "HALFTONE_PRINT",
    "HIGH_CONTRAST",
    "HIPPIE_ERA",
    "ICONIC",
    "JAPANDI_FUSION",
    "JAZZY",
    "LONG_EXPOSURE",
    "MAGAZINE_EDITORIAL",
    "MINIMAL_ILLUSTRATION",
    "MIXED_MEDIA",
    "MONOCHROME",
    "NIGHTLIFE",
    "OIL_PAINTING",
    "OLD_CARTOONS",
    "PAINT_GESTURE",
    "POP_ART",
    "RETRO_ETCHING",
    "RIVIERA_POP",
    "SPOTLIGHT_80S",
    "STYLIZED_RED",
    "SURREAL_COLLAGE",
    "TRAVEL_POSTER",
    "VINTAGE_GEO",
    "VINTAGE_POSTER",
    "WATERCOLOR",
    "WEIRD",
    "WOODBLOCK_PRINT",
)
MAGIC_PROMPT_OPTIONS: Final = ("AUTO", "ON", "OFF")
MAGIC_PROMPT_VERSIONS: Final = ("V_0", "V_0_1", "V_0_2", "V_0_3", "V_0_4", "V_0_5", "V_0_6", "V_0_7", "V_0_8")
RENDERING_SPEEDS: Final = ("FLASH", "TURBO", "BALANCED", "DEFAULT", "QUALITY")
COLOR_PALETTE_PRESETS: Final = (
    "EMBER",
    "FRESH",
    "JUNGLE",
    "MAGIC",
    "MELON",
    "MOSAIC",
    "PASTEL",
    "ULTRAMARINE",
)

IMAGE_WEIGHT_RANGE: Final = (1, 100)
SEED_RANGE: Final = (0, 2_147_483_647)
NUM_IMAGES_RANGE: Final = (1, 8)
COLOR_WEIGHT_RANGE: Final = (0.05, 1.0)
PALETTE_MEMBERS_RANGE: Final = (1, 8)
COLOR_HEX_PATTERN: Final = r"^#(?:[0-9a-fA-F]{3}){1,2}$"
STYLE_CODE_PATTERN: Final = r"^[0-9a-fA-F]{8}$"
CUSTOM_MODEL_URI_PATTERN: Final = r"^model/[^/]+/version/[^/]+$"

# USD per output image (reference §5, "PRICE"). Decimal so a ledger of thousands of images adds up exactly.
PRICE_LEGACY: Final = {
    "V_1": Decimal("0.06"),
    "V_1_TURBO": Decimal("0.02"),
    "V_2": Decimal("0.08"),
    "V_2_TURBO": Decimal("0.05"),
    "V_2A": Decimal("0.04"),
    "V_2A_TURBO": Decimal("0.025"),
    # Only reachable with legacy_allow_v3; the price table has no row for them on /remix, so 3.0 Default.
    "V_3": Decimal("0.06"),
    "AUTO": Decimal("0.06"),
}
# 3.0 by rendering speed. BALANCED is in the spec's enum but not in the price table: billed as DEFAULT.
PRICE_V3: Final = {
    "FLASH": Decimal("0.03"),
    "TURBO": Decimal("0.03"),
    "BALANCED": Decimal("0.06"),
    "DEFAULT": Decimal("0.06"),
    "QUALITY": Decimal("0.09"),
}
# 3.0 with a character reference; FLASH has no row (billed as TURBO), BALANCED as DEFAULT.
PRICE_V3_CHARACTER: Final = {
    "FLASH": Decimal("0.10"),
    "TURBO": Decimal("0.10"),
    "BALANCED": Decimal("0.15"),
    "DEFAULT": Decimal("0.15"),
    "QUALITY": Decimal("0.20"),
}

# Output size for an aspect ratio when no resolution is given. Samples in the reference: 1x1 -> 1024x1024,
# 10x16 -> 800x1280 (V_2 era) and 768x1232 (V_1); the rest is inferred, each picked from ResolutionV3 with the
# ratio as close as that list allows.
SIZE_FOR_RATIO: Final = {
    "1x1": (1024, 1024),
    "10x16": (800, 1280),
    "16x10": (1280, 800),
    "9x16": (736, 1312),
    "16x9": (1312, 736),
    "2x3": (832, 1248),
    "3x2": (1248, 832),
    "3x4": (864, 1152),
    "4x3": (1152, 864),
    "1x3": (512, 1536),
    "3x1": (1536, 512),
    "1x2": (704, 1408),
    "2x1": (1408, 704),
    "4x5": (896, 1120),
    "5x4": (1120, 896),
}
# The V_1 sample in seed-remix-api.txt answered ASPECT_10_16 with 768x1232.
SIZE_FOR_RATIO_V1: Final = {**SIZE_FOR_RATIO, "10x16": (768, 1232), "16x10": (1232, 768)}

SAFETY_ERROR: Final = "Prompt provided failed safety check due to the inclusion of prohibited content."


def legacy_ratio_key(aspect_ratio: str) -> str:
    """``ASPECT_10_16`` -> ``10x16``: both endpoints share one size table."""
    return aspect_ratio.removeprefix("ASPECT_").replace("_", "x")


def legacy_resolution_size(resolution: str) -> tuple[int, int]:
    width, height = resolution.removeprefix("RESOLUTION_").split("_")
    return int(width), int(height)


def v3_resolution_size(resolution: str) -> tuple[int, int]:
    width, height = resolution.split("x")
    return int(width), int(height)
