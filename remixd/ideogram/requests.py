"""Ideogram's Remix API as values: a validated `RemixRequest`, its wire encoding, and its price.

Two endpoints with different spellings of the same request (reference `ideogram-api.md` §1, §2):
legacy models (V_1 … V_2A_TURBO) go to `POST /remix` as an `image_request` JSON part (`ASPECT_16_9`,
`RESOLUTION_1024_1024`, `magic_prompt_option`); V_3 goes to `POST /v1/ideogram-v3/remix` as flat form
fields (`16x9`, `1024x1024`, `magic_prompt`). Users may write either spelling; the request is normalised
to the spelling of its model's endpoint at validation time, so a value that the endpoint does not know
fails at load time and costs nothing (the real API would answer 400 only after an upload).

Every check is a field validator that sees the already-validated `model` (fields validate in definition
order), so pydantic reports every bad field at once and each error is located at the field that is wrong.
The values checked against (enums, ranges, patterns) and the prices are the reference's, kept in
`ideogram.enums`; the responses are in `ideogram.responses`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from remixd.ideogram.enums import (
    ASPECT_RATIOS_LEGACY,
    ASPECT_RATIOS_V3,
    COLOR_HEX_PATTERN,
    COLOR_MEMBERS_RANGE,
    COLOR_PALETTE_PRESETS,
    COLOR_WEIGHT_RANGE,
    IMAGE_WEIGHT_RANGE,
    LEGACY_PATH,
    MAGIC_PROMPT_OPTIONS,
    MODEL_V3,
    MODELS,
    NUM_IMAGES_RANGE,
    PRICE_PER_IMAGE_USD,
    PRICE_PER_IMAGE_V3_USD,
    RENDERING_SPEEDS,
    RESOLUTIONS_LEGACY,
    RESOLUTIONS_V3,
    SEED_RANGE,
    STYLE_CODE_PATTERN,
    STYLE_PRESETS_V3,
    STYLE_TYPES_LEGACY,
    STYLE_TYPES_V3,
    V3_PATH,
)

_KEEP_ONE = "keep one of them (the API takes either, not both)"


def _problem(message: str, fix: str) -> PydanticCustomError:
    """A validation error whose parts `config/reader.py` can show separately (`ctx["message"]`, `ctx["fix"]`)."""
    return PydanticCustomError("remix_request", "{message} — {fix}", {"message": message, "fix": fix})


def _choices(values: tuple[str, ...], wrong: str, guess: bool = True) -> str:
    """`use one of …`, led by a did-you-mean when a value is close (not when the other endpoint has it)."""
    same = [value for value in values if value.casefold() == wrong.casefold()]  # `turbo` for TURBO
    close = same or (difflib.get_close_matches(wrong, values, n=1) if guess else [])
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}use one of {', '.join(values)}"


def _to_v3(value: str, prefix: str) -> str:
    """`ASPECT_16_9` -> `16x9`, `RESOLUTION_1024_1024` -> `1024x1024`."""
    return value.removeprefix(prefix).replace("_", "x")


def _to_legacy(value: str, prefix: str) -> str:
    return prefix + value.replace("x", "_")


def _endpoint_enum(value: str, info: ValidationInfo, what: str, legacy: tuple[str, ...], v3: tuple[str, ...]) -> str:
    """Accept either spelling; return the model's endpoint's spelling, or explain what that endpoint takes."""
    prefix = "ASPECT_" if what == "aspect ratio" else "RESOLUTION_"
    model = info.data.get("model")
    as_legacy = value if value.startswith(prefix) else _to_legacy(value, prefix)
    as_v3 = _to_v3(value, prefix) if value.startswith(prefix) else value
    if model is None:  # the model itself is invalid (reported there); still catch values no endpoint knows
        if as_legacy in legacy or as_v3 in v3:
            return value
        raise _problem(f"'{value}' is not an {what}", _choices((*legacy, *v3), value))
    if model == MODEL_V3:
        if as_v3 in v3:
            return as_v3
        other = " (only the legacy models V_1 … V_2A_TURBO have it)" if as_legacy in legacy else ""
        raise _problem(f"'{value}' is not an {what} of model V_3{other}", _choices(v3, as_v3, other == ""))
    if as_legacy in legacy:
        return as_legacy
    other = " (only V_3 has it)" if as_v3 in v3 else ""
    raise _problem(
        f"'{value}' is not an {what} of model {model} (legacy /remix){other}",
        _choices(legacy, as_legacy, other == ""),
    )


def _only_for(info: ValidationInfo, field: str, allowed: tuple[str, ...]) -> None:
    model = info.data.get("model")
    if model is not None and model not in allowed:
        raise _problem(
            f"{field} is not available for model {model}",
            f"remove {field}, or use a model that takes it: {', '.join(allowed)}",
        )


class ColorPaletteMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    color_hex: Annotated[StrictStr, Field(pattern=COLOR_HEX_PATTERN)]
    color_weight: Annotated[float, Field(strict=True, ge=COLOR_WEIGHT_RANGE[0], le=COLOR_WEIGHT_RANGE[1])] | None = None


class ColorPalette(BaseModel):
    """Exactly one of a preset `name` or 1 to 8 `members` (SPEC `ColorPaletteWithPresetNameOrMembers`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrictStr | None = None
    members: (
        Annotated[
            tuple[ColorPaletteMember, ...],
            Field(min_length=COLOR_MEMBERS_RANGE[0], max_length=COLOR_MEMBERS_RANGE[1]),
        ]
        | None
    ) = None

    @field_validator("name")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in COLOR_PALETTE_PRESETS:
            raise _problem(f"'{value}' is not a color palette preset", _choices(COLOR_PALETTE_PRESETS, value))
        return value

    @model_validator(mode="after")
    def _name_xor_members(self) -> ColorPalette:
        if (self.name is None) == (self.members is None):
            raise _problem(
                "a color palette needs exactly one of 'name' or 'members'",
                "write either {name: PASTEL} or {members: [{color_hex: '#ff8800', color_weight: 0.5}]}",
            )
        return self


class RemixRequest(BaseModel):
    """One remix request with Ideogram's field names, valid for the endpoint its model is sent to.

    Only the fields a user set are sent (`wire_fields`), so the API's own defaults apply to the rest.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: StrictStr
    model: StrictStr = "V_2"  # first after prompt: every later validator reads it from info.data
    aspect_ratio: StrictStr | None = None
    resolution: StrictStr | None = None
    image_weight: Annotated[StrictInt, Field(ge=IMAGE_WEIGHT_RANGE[0], le=IMAGE_WEIGHT_RANGE[1])] | None = (
        None  # the API's default is 50; unset means "let the API decide", and nothing is sent
    )
    magic_prompt_option: StrictStr | None = None  # also accepted as `magic_prompt` (the V_3 name)
    seed: Annotated[StrictInt, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1])] | None = None
    style_type: StrictStr | None = None
    negative_prompt: StrictStr | None = None
    num_images: Annotated[StrictInt, Field(ge=NUM_IMAGES_RANGE[0], le=NUM_IMAGES_RANGE[1])] = 1
    color_palette: ColorPalette | None = None
    rendering_speed: StrictStr | None = None
    style_codes: tuple[Annotated[StrictStr, Field(pattern=STYLE_CODE_PATTERN)], ...] | None = None
    style_preset: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _magic_prompt_alias(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # null means "not set" (so a rule can clear a default), except where a value is required.
            data = {key: value for key, value in data.items() if value is not None or key in ("prompt", "num_images")}
        if isinstance(data, dict) and "magic_prompt" in data:
            if "magic_prompt_option" in data:
                raise _problem(
                    "both magic_prompt and magic_prompt_option are set", "keep one (they are the same field)"
                )
            data = {("magic_prompt_option" if key == "magic_prompt" else key): v for key, v in data.items()}
        return data

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _problem("the prompt is empty", "write what the remix should show")
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            # AUTO is in the shared enum, but whether /remix runs it is UNCONFIRMED and it has no price.
            raise _problem(f"'{value}' is not a remix model", _choices(MODELS, value))
        return value

    @field_validator("aspect_ratio")
    @classmethod
    def _aspect_ratio(cls, value: str, info: ValidationInfo) -> str:
        return _endpoint_enum(value, info, "aspect ratio", ASPECT_RATIOS_LEGACY, ASPECT_RATIOS_V3)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("aspect_ratio") is not None:
            raise _problem("aspect_ratio and resolution are both set", _KEEP_ONE)
        _only_for(info, "resolution", ("V_2", "V_2_TURBO", MODEL_V3))
        return _endpoint_enum(value, info, "resolution", RESOLUTIONS_LEGACY, RESOLUTIONS_V3)

    @field_validator("magic_prompt_option")
    @classmethod
    def _magic_prompt(cls, value: str) -> str:
        if value not in MAGIC_PROMPT_OPTIONS:
            raise _problem(f"'{value}' is not a magic prompt option", _choices(MAGIC_PROMPT_OPTIONS, value))
        return value

    @field_validator("style_type")
    @classmethod
    def _style_type(cls, value: str, info: ValidationInfo) -> str:
        _only_for(info, "style_type", ("V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO", MODEL_V3))
        model = info.data.get("model")
        allowed = STYLE_TYPES_V3 if model == MODEL_V3 else STYLE_TYPES_LEGACY
        if value not in allowed:
            raise _problem(f"'{value}' is not a style type of model {model}", _choices(allowed, value))
        return value

    @field_validator("negative_prompt")
    @classmethod
    def _negative_prompt(cls, value: str, info: ValidationInfo) -> str:
        _only_for(info, "negative_prompt", ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO", MODEL_V3))
        return value

    @field_validator("color_palette")
    @classmethod
    def _color_palette(cls, value: ColorPalette, info: ValidationInfo) -> ColorPalette:
        _only_for(info, "color_palette", ("V_2", "V_2_TURBO", MODEL_V3))
        return value

    @field_validator("rendering_speed")
    @classmethod
    def _rendering_speed(cls, value: str, info: ValidationInfo) -> str:
        _only_for(info, "rendering_speed", (MODEL_V3,))
        if value not in RENDERING_SPEEDS:
            raise _problem(f"'{value}' is not a rendering speed", _choices(RENDERING_SPEEDS, value))
        return value

    @field_validator("style_codes")
    @classmethod
    def _style_codes(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _only_for(info, "style_codes", (MODEL_V3,))
        if info.data.get("style_type") is not None:
            raise _problem("style_codes and style_type are both set", _KEEP_ONE)
        if not value:
            raise _problem("style_codes is empty", "list at least one 8-hex-digit code, or remove the key")
        return value

    @field_validator("style_preset")
    @classmethod
    def _style_preset(cls, value: str, info: ValidationInfo) -> str:
        _only_for(info, "style_preset", (MODEL_V3,))
        if value not in STYLE_PRESETS_V3:
            raise _problem(f"'{value}' is not a style preset", _choices(STYLE_PRESETS_V3, value))
        return value

    def is_v3(self) -> bool:
        return self.model == MODEL_V3

    def endpoint_path(self) -> str:
        return V3_PATH if self.is_v3() else LEGACY_PATH

    def image_part_name(self) -> str:
        return "image" if self.is_v3() else "image_file"

    def wire_fields(self) -> dict[str, Any]:
        """Exactly what is sent: the `image_request` object (legacy) or the flat form fields (V_3).

        Only fields the user set, so the API applies its own defaults to the rest. Legacy always names the
        model: remixd's default model must be what is billed, whatever the endpoint's default becomes.
        """
        fields = self.model_dump(mode="json", exclude_unset=True, exclude_none=True, exclude={"model"})
        if self.is_v3():
            if "magic_prompt_option" in fields:
                fields["magic_prompt"] = fields.pop("magic_prompt_option")
        else:
            fields["model"] = self.model
        return fields

    def price_per_image_usd(self) -> float:
        if self.is_v3():
            return PRICE_PER_IMAGE_V3_USD[self.rendering_speed or "DEFAULT"]
        return PRICE_PER_IMAGE_USD[self.model]

    def cost_usd(self) -> float:
        return round(self.price_per_image_usd() * self.num_images, 6)  # 0.025 * 3 without float noise

    def fingerprint(self) -> str:
        """sha256 hex of canonical JSON of (endpoint path, wire fields): equal iff the same would be sent."""
        canonical = json.dumps(
            [self.endpoint_path(), self.wire_fields()],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def with_prompt(self, text: str) -> RemixRequest:
        """The same request with another prompt (a rendered template), validated again."""
        data = self.model_dump(exclude_unset=True)
        data["prompt"] = text
        return RemixRequest.model_validate(data)
