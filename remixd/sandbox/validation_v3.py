"""Validation of ``POST /v1/ideogram-v3/remix``: flat multipart form fields (reference §2, §8.7)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from remixd.sandbox import images, reference
from remixd.sandbox.multipart import MultipartError, Part
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.validation import (
    BadRequest,
    Order,
    Submission,
    check_image,
    color_palette_value,
    enum_value,
    group_parts,
    integer_value,
    parse_json,
    prompt_value,
    show,
    size_for,
    string_value,
)

FILE_FIELDS = frozenset(
    {"image", "style_reference_images", "character_reference_images", "character_reference_images_mask"}
)
REPEATABLE = frozenset({"style_codes"}) | FILE_FIELDS - {"image"}
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")


def extract_v3(parts: Sequence[Part]) -> Submission:
    """Raw text fields as they arrived (repeated ones as lists); unknown fields are kept for the record."""
    grouped = group_parts(parts, REPEATABLE)
    fields: dict[str, Any] = {}
    for name, group in grouped.items():
        if name in FILE_FIELDS:
            continue
        try:
            texts = [part.text() for part in group]
        except MultipartError as error:
            raise BadRequest(str(error)) from error
        fields[name] = texts if name in REPEATABLE else texts[0]
    image = grouped.get("image", [None])[0]
    return Submission(fields=fields, image=image, parts=grouped)


def form_integer(bounds: tuple[int, int]) -> Callable[[str, str], int]:
    def check(text: str, name: str) -> int:
        # Form fields are text; connexion coerces "50" to 50 but nothing else ("50.0", "true", "").
        if not _INTEGER_TEXT.fullmatch(text):
            raise BadRequest(f"{show(text)} is not of type 'integer' - {name!r}")
        return integer_value(int(text), name, bounds)

    return check


def _palette(text: str, name: str) -> dict[str, Any]:
    return color_palette_value(parse_json(text, name), name)


def _custom_model(text: str, name: str) -> str:
    if not re.fullmatch(reference.CUSTOM_MODEL_URI_PATTERN, text):
        raise BadRequest(f"{show(text)} is not of the form model/<model_name>/version/<version_name> - {name!r}")
    return text


_CHECKS: dict[str, Callable[[str, str], Any]] = {
    "image_weight": form_integer(reference.IMAGE_WEIGHT_RANGE),
    "seed": form_integer(reference.SEED_RANGE),
    "num_images": form_integer(reference.NUM_IMAGES_RANGE),
    "resolution": lambda v, n: enum_value(v, n, reference.RESOLUTIONS_V3),
    "aspect_ratio": lambda v, n: enum_value(v, n, reference.ASPECT_RATIOS_V3),
    "rendering_speed": lambda v, n: enum_value(v, n, reference.RENDERING_SPEEDS),
    "magic_prompt": lambda v, n: enum_value(v, n, reference.MAGIC_PROMPT_OPTIONS),
    "negative_prompt": string_value,
    "color_palette": _palette,
    "style_type": lambda v, n: enum_value(v, n, reference.STYLE_TYPES_V3),
    "style_preset": lambda v, n: enum_value(v, n, reference.STYLE_PRESETS_V3),
    "custom_model_uri": _custom_model,
}


# Every part of the spec's RemixImageRequestV3; anything else is ignored.
V3_FIELDS = frozenset(_CHECKS) | {"prompt", "style_codes"} | FILE_FIELDS


def validate_v3(submission: Submission, options: SandboxOptions) -> Order:
    fields = submission.fields or {}
    request: dict[str, Any] = {}
    if "prompt" not in fields:
        raise BadRequest("'prompt' is a required property")
    request["prompt"] = prompt_value(fields["prompt"], "prompt")
    for name, check in _CHECKS.items():
        if name in fields:
            request[name] = check(fields[name], name)
    if "style_codes" in fields:
        request["style_codes"] = _style_codes(fields["style_codes"])
    if "aspect_ratio" in request and "resolution" in request:
        raise BadRequest("'aspect_ratio' cannot be used in conjunction with 'resolution'")
    characters = _check_references(request, submission, options)
    speed = request.setdefault("rendering_speed", "DEFAULT")
    request.setdefault("image_weight", 50)
    request.setdefault("num_images", 1)
    if "resolution" in request:
        size = reference.v3_resolution_size(request["resolution"])
    else:
        size = reference.SIZE_FOR_RATIO[request.setdefault("aspect_ratio", "1x1")]
    if submission.image is None:
        raise BadRequest("'image' is a required property")
    source = check_image(
        submission.image, "image", options.max_image_bytes_v3, options, size_for(size, options.output_scale)
    )
    if characters:
        price, price_key = reference.PRICE_V3_CHARACTER[speed], f"V_3-character:{speed}"
    else:
        price, price_key = reference.PRICE_V3[speed], f"V_3:{speed}"
    requested_style = request.get("style_type")
    return Order(
        endpoint="v3",
        request=request,
        prompt=request["prompt"],
        magic_prompt=request.get("magic_prompt"),
        width=size[0],
        height=size[1],
        image_weight=request["image_weight"],
        seed=request.get("seed"),
        num_images=request["num_images"],
        style_type="GENERAL" if requested_style in (None, "AUTO") else requested_style,
        price_per_image=price,
        price_key=price_key,
        source=source,
    )


def _style_codes(codes: list[str]) -> list[str]:
    for index, code in enumerate(codes):
        if not re.fullmatch(reference.STYLE_CODE_PATTERN, code):
            raise BadRequest(f"{show(code)} does not match {reference.STYLE_CODE_PATTERN!r} - 'style_codes[{index}]'")
    return list(codes)


def _check_references(request: dict[str, Any], submission: Submission, options: SandboxOptions) -> list[Part]:
    """The rules on reference images; returns the character references (they change the price)."""
    references = {name: submission.parts.get(name, []) for name in FILE_FIELDS - {"image"}}
    if "style_codes" in request and ("style_type" in request or references["style_reference_images"]):
        raise BadRequest("'style_codes' cannot be used in conjunction with style_reference_images or style_type")
    characters = references["character_reference_images"]
    masks = references["character_reference_images_mask"]
    if len(characters) > 1:
        raise BadRequest("'character_reference_images' currently supports only 1 image")
    if masks and len(masks) != len(characters):
        raise BadRequest("'character_reference_images_mask' must match the number of character_reference_images")
    for name in ("style_reference_images", "character_reference_images", "character_reference_images_mask"):
        _check_group(name, references[name], options)
    return characters


def _check_group(name: str, parts: list[Part], options: SandboxOptions) -> None:
    total = sum(len(part.data) for part in parts)
    if total > options.max_reference_bytes_v3:
        raise BadRequest(
            f"{name!r} total {total} bytes; the maximum is {options.max_reference_bytes_v3}",
            options.oversize_status,
        )
    for index, part in enumerate(parts):
        # Only the format is checked: references are not used by the sandbox's image maker.
        if not part.data or images.sniff(part.data) is None:
            raise BadRequest(f"'{name}[{index}]': only JPEG, WebP and PNG formats are supported")
