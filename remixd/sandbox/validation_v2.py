"""Validation of ``POST /v2/image/remix/{model}``: flat multipart fields, checked per route from the v2
excerpt (``reference_v2``). Fields a route does not read are ignored, as Ideogram ignores them, and listed in
``V2Order.ignored`` so tests can assert that remixd never sends one.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from remixd.sandbox import reference, reference_v2
from remixd.sandbox.multipart import MultipartError, Part
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.validation import (
    BadRequest,
    Order,
    check_image,
    color_palette_value,
    enum_value,
    group_parts,
    parse_json,
    show,
    string_value,
)
from remixd.sandbox.validation_v3 import form_integer

SHAPE_TOLERANCE = 0.01  # how different two aspect ratios may be and still be "the same shape"


class NotFound(BadRequest):
    """A referenced resource (asset, collection) that the sandbox does not have: 404."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 404)


@dataclass(frozen=True)
class V2Order:
    """A valid v2 remix request: the work (``order``) and what the v2 answer and the ledger need."""

    order: Order
    model: str
    is_async: bool
    ignored: tuple[str, ...]  # fields the route does not read, as sent
    billing_identifier: str
    estimate: bool  # the quote is an estimate (auto): billed after the work


@dataclass(frozen=True)
class V2Submission:
    fields: dict[str, Any]  # text fields as they arrived (repeated ones as lists)
    parts: dict[str, list[Part]]


def extract_v2(parts: Sequence[Part]) -> V2Submission:
    grouped = group_parts(parts, reference_v2.REPEATABLE)
    fields: dict[str, Any] = {}
    for name, group in grouped.items():
        if name in reference_v2.FILE_FIELDS:
            continue
        try:
            texts = [part.text() for part in group]
        except MultipartError as error:
            raise BadRequest(str(error)) from error
        fields[name] = texts if name in reference_v2.REPEATABLE else texts[0]
    return V2Submission(fields, grouped)


def _boolean(text: str, name: str) -> bool:
    if text not in ("true", "false"):
        raise BadRequest(f"{show(text)} is not of type 'boolean' - {name!r}")
    return text == "true"


def _string(most: int, least: int = 0) -> Callable[[str, str], str]:
    def check(text: str, name: str) -> str:
        if not least <= len(string_value(text, name)) <= most:
            raise BadRequest(f"{name!r} must have {least} to {most} characters")
        return text

    return check


def _pattern(pattern: str) -> Callable[[str, str], str]:
    def check(text: str, name: str) -> str:
        if not re.fullmatch(pattern, text):
            raise BadRequest(f"{show(text)} does not match {pattern!r} - {name!r}")
        return text

    return check


def _webhook(text: str, name: str) -> str:
    parts = urllib.parse.urlsplit(_string(reference_v2.WEBHOOK_URL_MAX)(text, name))
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or host in ("localhost", "169.254.169.254") or host.startswith("127."):
        raise BadRequest(f"{name!r} must be an HTTPS URL of a public host")
    return text


def _checks(model: str) -> dict[str, Callable[[Any, str], Any]]:
    v3_style = reference_v2.STYLE_TYPES_CHARACTER if model == "ideogram-3-character" else reference_v2.STYLE_TYPES
    aspect = reference_v2.ASPECT_RATIOS_V4 if model == "auto" else reference.ASPECT_RATIOS_V3
    resolutions = {"ideogram-4": reference_v2.RESOLUTIONS_V4, "auto": None}.get(model, reference.RESOLUTIONS_V3)
    checks: dict[str, Callable[[Any, str], Any]] = {
        "prompt": _string(reference_v2.PROMPT_MAX, 1),
        "image_weight": form_integer(reference.IMAGE_WEIGHT_RANGE),
        "num_images": form_integer(reference.NUM_IMAGES_RANGE),
        "seed": form_integer(reference.SEED_RANGE),
        "async": _boolean,
        "private": _boolean,
        "enable_copyright_detection": _boolean,
        "webhook_url": _webhook,
        "rendering_speed": lambda v, n: enum_value(v, n, reference_v2.RENDERING_SPEEDS),
        "magic_prompt": lambda v, n: enum_value(v, n, reference_v2.MAGIC_PROMPT_MODES),
        "negative_prompt": _string(reference_v2.PROMPT_MAX),
        "aspect_ratio": lambda v, n: enum_value(v, n, aspect),
        "resolution": (
            _pattern(reference_v2.RESOLUTION_PATTERN_AUTO)
            if resolutions is None
            else lambda v, n: enum_value(v, n, resolutions)
        ),
        "resolution_tier": lambda v, n: enum_value(v, n, reference_v2.RESOLUTION_TIERS),
        "style_type": lambda v, n: enum_value(v, n, v3_style),
        "style_preset": lambda v, n: enum_value(v, n, reference_v2.STYLE_PRESETS),
        "color_palette": lambda v, n: color_palette_value(parse_json(v, n), n, reference_v2.COLOR_PALETTE_PRESETS),
        "custom_model_uri": lambda v, n: _pattern(reference.CUSTOM_MODEL_URI_PATTERN)(
            _string(reference_v2.CUSTOM_MODEL_URI_MAX, 1)(v, n), n
        ),
        "style_codes": lambda v, n: [_pattern(reference.STYLE_CODE_PATTERN)(code, n) for code in v],
    }
    return {name: check for name, check in checks.items() if name in reference_v2.FIELDS[model]}


def validate_v2(model: str, submission: V2Submission, options: SandboxOptions) -> V2Order:
    fields, parts = submission.fields, submission.parts
    known = reference_v2.FIELDS[model]
    ignored = tuple(sorted({name for name in (*fields, *parts) if name not in known}))
    request: dict[str, Any] = {}
    if "prompt" not in fields:
        raise BadRequest("'prompt' is a required property")
    for name, check in _checks(model).items():
        if name in fields:
            request[name] = check(fields[name], name)
    for name in sorted(reference_v2.ASSET_FIELDS & set(fields)):
        raise NotFound(f"A referenced resource was not found: {name}")
    if "aspect_ratio" in request and "resolution" in request:
        raise BadRequest("'aspect_ratio' cannot be combined with 'resolution'")
    if "style_preset" in request and (request.get("style_codes") or parts.get("style_reference_images")):
        raise BadRequest("'style_preset' cannot be combined with style codes or style references")
    image = parts.get("image", [None])[0]
    if image is None:
        raise BadRequest("'image' or 'image_asset_identifier' is required")
    _check_references(model, parts, options)
    source = check_image(image, "image", options.max_image_bytes_v2, options, (2048, 2048))
    width, height = _output_size(model, request, source.size)
    shape_changed = abs((width / height) / (source.width / source.height) - 1) > SHAPE_TOLERANCE
    if model == "ideogram-4" and "image_weight" in request and "resolution" in request and shape_changed:
        raise BadRequest(
            "'image_weight' cannot be combined with a resolution whose aspect ratio differs from the image's"
        )
    speed = request.get("rendering_speed", "default")
    price = reference_v2.PRICES[model].get(speed, reference_v2.PRICES[model]["default"]) * options.account_price_factor
    request.setdefault("num_images", 1)
    is_async = bool(request.get("async")) or "webhook_url" in request
    order = Order(
        endpoint="v2",
        request=request,
        prompt=request["prompt"],
        magic_prompt=str(request.get("magic_prompt", "auto")).upper(),
        width=width,
        height=height,
        image_weight=request.get("image_weight", 50),  # v2 picks it from the prompt; 50 stands for that here
        seed=request.get("seed"),
        num_images=request["num_images"],
        style_type=None,
        price_per_image=price,
        price_key=f"{model}:{speed}",
        source=source,
    )
    return V2Order(order, model, is_async, ignored, reference_v2.BILLING_IDENTIFIERS[model], model == "auto")


def _check_references(model: str, parts: dict[str, list[Part]], options: SandboxOptions) -> None:
    styles = parts.get("style_reference_images", [])
    characters = parts.get("character_reference_images", [])
    masks = parts.get("character_reference_mask", [])
    if len(styles) > reference_v2.MAX_STYLE_REFERENCES:
        raise BadRequest(f"'style_reference_images' has {len(styles)} items; at most 10 are allowed")
    if model == "ideogram-3-character":
        if not characters:
            raise BadRequest(reference_v2.CHARACTER_REQUIRED)
        if len(characters) > 1:
            raise BadRequest("'character_reference_images' has more than 1 item")
    checked = {}
    for name, group in (("style_reference_images", styles), ("character_reference_images", characters)):
        for index, part in enumerate(group):
            if name in reference_v2.FIELDS[model]:
                checked[name] = check_image(
                    part, f"{name}[{index}]", reference_v2.MAX_REFERENCE_BYTES, options, (64, 64)
                )
    if masks and "character_reference_mask" in reference_v2.FIELDS[model]:
        mask = check_image(masks[0], "character_reference_mask", reference_v2.MAX_REFERENCE_BYTES, options, (64, 64))
        if mask.size != checked["character_reference_images"].size:
            raise BadRequest("'character_reference_mask' must have the size of the character reference image")


def _output_size(model: str, request: dict[str, Any], source: tuple[int, int]) -> tuple[int, int]:
    if "resolution" in request:
        width, height = request["resolution"].split("x")
        return int(width), int(height)
    ratio = request.get("aspect_ratio", "auto")
    if ratio != "auto" and model != "ideogram-4":
        if ratio in reference.SIZE_FOR_RATIO:
            return reference.SIZE_FOR_RATIO[ratio]
        across, down = ratio.split("x")
        return _about_one_megapixel(int(across), int(down))
    return _about_one_megapixel(*source)


def _about_one_megapixel(width: int, height: int) -> tuple[int, int]:
    """The shape of width x height at about 1 MP, each side a multiple of 16."""
    scale = math.sqrt(reference_v2.DEFAULT_PIXELS / (width * height))
    return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


def usd_micros(amount: Decimal) -> int:
    return int(amount * 1_000_000)
