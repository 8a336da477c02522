"""Request validation for both remix endpoints, written from the reference (§1.2, §1.3, §2, §8.5-8.7).

Independent of ``remixd.ideogram.requests`` on purpose: when the client and the sandbox disagree, a test fails.
Every refusal is a ``BadRequest`` carrying the text for the 400 (or 413) body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from PIL import Image

from remixd.sandbox import images, reference
from remixd.sandbox.multipart import MultipartError, Part
from remixd.sandbox.options import SandboxOptions


class BadRequest(Exception):
    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class Order:
    """A valid remix request, reduced to what the work and the answer need."""

    endpoint: str  # "legacy" or "v3"
    request: dict[str, Any]  # the validated fields, typed, with the defaults the API applies
    prompt: str
    magic_prompt: str | None
    width: int  # the declared resolution of every output
    height: int
    image_weight: int
    seed: int | None
    num_images: int
    style_type: str | None  # as answered
    price_per_image: Decimal
    price_key: str  # "V_2", "V3:TURBO", "V3-character:DEFAULT": what the ledger bills by
    source: Image.Image


@dataclass(frozen=True)
class Submission:
    """What arrived, before validation: the raw fields for the record and the parts by name."""

    fields: dict[str, Any] | None
    image: Part | None
    parts: dict[str, list[Part]]


# ---------------------------------------------------------------- field checks shared by both endpoints


def show(value: Any, limit: int = 80) -> str:
    """A value for an error message: repr, cut short so a huge input cannot make a huge answer."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def enum_value(value: Any, name: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"{show(value)} is not one of {list(allowed)} - {name!r}")
    return value


def integer_value(value: Any, name: str, bounds: tuple[int, int]) -> int:
    # bool is an int subclass in Python, but not an integer in JSON Schema: True must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{show(value)} is not of type 'integer' - {name!r}")
    low, high = bounds
    if not low <= value <= high:
        raise BadRequest(f"{value} is not within [{low}, {high}] - {name!r}")
    return value


def string_value(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{show(value)} is not of type 'string' - {name!r}")
    return value


def prompt_value(value: Any, name: str) -> str:
    text = string_value(value, name)
    if not text.strip():
        raise BadRequest(f"{name!r} must not be empty")
    return text


def color_palette_value(
    value: Any, name: str, presets: Sequence[str] = reference.COLOR_PALETTE_PRESETS
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{show(value)} is not of type 'object' - {name!r}")
    has_name, has_members = "name" in value, "members" in value
    if has_name == has_members:
        raise BadRequest(f"{name!r} needs exactly one of 'name' (a preset) or 'members' (a list of colours)")
    if has_name:
        return {"name": enum_value(value["name"], f"{name}.name", presets)}
    members = value["members"]
    low, high = reference.PALETTE_MEMBERS_RANGE
    if not isinstance(members, list) or not low <= len(members) <= high:
        raise BadRequest(f"{name}.members must be a list of {low} to {high} colours")
    checked = []
    for index, member in enumerate(members):
        where = f"{name}.members[{index}]"
        if not isinstance(member, dict) or "color_hex" not in member:
            raise BadRequest(f"{where} must be an object with 'color_hex'")
        hex_value = string_value(member["color_hex"], f"{where}.color_hex")
        if not re.fullmatch(reference.COLOR_HEX_PATTERN, hex_value):
            raise BadRequest(f"{show(hex_value)} does not match {reference.COLOR_HEX_PATTERN!r} - '{where}.color_hex'")
        item: dict[str, Any] = {"color_hex": hex_value}
        if "color_weight" in member:
            weight = member["color_weight"]
            lowest, highest = reference.COLOR_WEIGHT_RANGE
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise BadRequest(f"{show(weight)} is not of type 'number' - '{where}.color_weight'")
            if not lowest <= weight <= highest:
                raise BadRequest(f"{weight} is not within [{lowest}, {highest}] - '{where}.color_weight'")
            item["color_weight"] = weight
        checked.append(item)
    return {"members": checked}


def parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"{name!r} is not valid JSON: {error}") from error


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # NaN/Infinity are Python extensions, not JSON


def check_image(part: Part, name: str, cap: int, options: SandboxOptions, draft: tuple[int, int]) -> Image.Image:
    data = part.data
    if not data:
        raise BadRequest(f"{name!r} is empty")
    if len(data) > cap:
        raise BadRequest(f"{name!r} is {len(data)} bytes; the maximum is {cap}", options.oversize_status)
    try:
        return images.decode(data, options.max_input_pixels, draft)
    except images.ImageProblem as problem:
        raise BadRequest(f"{name!r}: {problem}") from problem


def group_parts(parts: Sequence[Part], repeatable: frozenset[str]) -> dict[str, list[Part]]:
    grouped: dict[str, list[Part]] = {}
    for part in parts:
        grouped.setdefault(part.name, []).append(part)
    for name, group in grouped.items():
        if len(group) > 1 and name not in repeatable:
            raise BadRequest(f"form field {show(name)} was sent {len(group)} times")
    return grouped


def size_for(width_height: tuple[int, int], scale: float) -> tuple[int, int]:
    return images.output_size(*width_height, scale)


# ---------------------------------------------------------------- legacy POST /remix


def extract_legacy(parts: Sequence[Part]) -> Submission:
    grouped = group_parts(parts, frozenset())
    if "image_request" not in grouped:
        raise BadRequest("'image_request' is a required property")
    # With or without a part Content-Type: clients commonly send it as a plain text form field.
    try:
        text = grouped["image_request"][0].text()
    except MultipartError as error:
        raise BadRequest(str(error)) from error
    fields = parse_json(text, "image_request")
    if not isinstance(fields, dict):
        raise BadRequest(f"{show(fields)} is not of type 'object' - 'image_request'")
    image = grouped.get("image_file", [None])[0]
    return Submission(fields=fields, image=image, parts=grouped)


# Every field of the spec's InitialImageRequest that the sandbox reads; anything else is ignored.
LEGACY_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "aspect_ratio",
        "resolution",
        "image_weight",
        "seed",
        "num_images",
        "magic_prompt_option",
        "magic_prompt_version",
        "style_type",
        "negative_prompt",
        "color_palette",
    }
)


def validate_legacy(submission: Submission, options: SandboxOptions) -> Order:
    fields = submission.fields or {}
    strict = options.strict_model_fields
    request: dict[str, Any] = {}
    if "prompt" not in fields:
        raise BadRequest("'prompt' is a required property - 'image_request'")
    request["prompt"] = prompt_value(fields["prompt"], "image_request.prompt")
    models = reference.MODELS_LEGACY + (reference.MODELS_LEGACY_EXTRA if options.legacy_allow_v3 else ())
    model = request["model"] = enum_value(fields.get("model", "V_2"), "image_request.model", models)
    checks: dict[str, Callable[[Any, str], Any]] = {
        "aspect_ratio": lambda v, n: enum_value(v, n, reference.ASPECT_RATIOS_LEGACY),
        "resolution": lambda v, n: enum_value(v, n, reference.RESOLUTIONS_LEGACY),
        "image_weight": lambda v, n: integer_value(v, n, reference.IMAGE_WEIGHT_RANGE),
        "seed": lambda v, n: integer_value(v, n, reference.SEED_RANGE),
        "num_images": lambda v, n: integer_value(v, n, reference.NUM_IMAGES_RANGE),
        "magic_prompt_option": lambda v, n: enum_value(v, n, reference.MAGIC_PROMPT_OPTIONS),
        "magic_prompt_version": lambda v, n: enum_value(v, n, reference.MAGIC_PROMPT_VERSIONS),
        "style_type": lambda v, n: enum_value(v, n, reference.STYLE_TYPES_LEGACY),
        "negative_prompt": string_value,
        "color_palette": color_palette_value,
    }
    for name, check in checks.items():
        if name in fields:
            request[name] = check(fields[name], f"image_request.{name}")
    if "aspect_ratio" in request and "resolution" in request:
        raise BadRequest("'aspect_ratio' cannot be used in conjunction with 'resolution'")
    not_for_model = {
        "resolution": model not in reference.MODELS_WITH_RESOLUTION + reference.MODELS_LEGACY_EXTRA,
        "style_type": model in reference.MODELS_V1,
        "negative_prompt": model in reference.MODELS_V2A,
        "color_palette": model in reference.MODELS_V1 + reference.MODELS_V2A,
    }
    for name, refused in not_for_model.items():
        if refused and name in request:
            if strict:
                raise BadRequest(f"'{name}' is not supported by model {model}")
            del request[name]  # lenient mode: the field is silently ignored
    request.setdefault("image_weight", 50)
    request.setdefault("num_images", 1)
    if "resolution" in request:
        size = reference.legacy_resolution_size(request["resolution"])
    else:
        ratio = reference.legacy_ratio_key(request.setdefault("aspect_ratio", "ASPECT_1_1"))
        table = reference.SIZE_FOR_RATIO_V1 if model in reference.MODELS_V1 else reference.SIZE_FOR_RATIO
        size = table[ratio]
    if submission.image is None:
        raise BadRequest("'image_file' is a required property")
    source = check_image(
        submission.image, "image_file", options.max_image_bytes, options, size_for(size, options.output_scale)
    )
    style = None if model in reference.MODELS_V1 else _answered_style(request.get("style_type"))
    return Order(
        endpoint="legacy",
        request=request,
        prompt=request["prompt"],
        magic_prompt=request.get("magic_prompt_option"),
        width=size[0],
        height=size[1],
        image_weight=request["image_weight"],
        seed=request.get("seed"),
        num_images=request["num_images"],
        style_type=style,
        price_per_image=reference.PRICE_LEGACY[model],
        price_key=model,
        source=source,
    )


def _answered_style(requested: str | None) -> str:
    # The answer names the style used; AUTO is resolved (to GENERAL here, as the gateway samples show).
    return "GENERAL" if requested in (None, "AUTO") else requested
