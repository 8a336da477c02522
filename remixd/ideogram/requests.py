"""Ideogram's Remix API as values: a validated `RemixRequest`, its wire encoding, and its price.

`model` picks the route (`ideogram.routes.ROUTES`), and every check reads that route's entry: whether the
route takes a field, the values of its enums, its patterns, limits and cross-field rules. A field the route
does not take is refused by name: the v2 routes silently ignore unknown fields (a seed sent to ideogram-4 is
accepted and dropped), so sending one would pay for a request the user did not mean.

Enum spellings differ by route: legacy /remix says `ASPECT_16_9`, `RESOLUTION_1024_1024`; V_3 says `16x9`,
`TURBO`; v2 says `16x9`, `turbo`. Users may write any of them; the request is normalised to the route's own
spelling at validation time, so a value the route does not know fails at load time and costs nothing.

Every check is a field validator that sees the already-validated `model` (fields validate in definition
order), so pydantic reports every bad field at once and each error is located at the field that is wrong.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from remixd.ideogram.checks import (
    KEEP_ONE,
    ColorPalette,
    choices,
    enum_value,
    pattern_value,
    problem,
    reference_paths,
    route_of,
    taken,
)
from remixd.ideogram.enums import (
    IMAGE_WEIGHT_RANGE,
    NUM_IMAGES_RANGE,
    SEED_RANGE,
    STYLE_CODE_PATTERN,
)
from remixd.ideogram.routes import FILE_FIELDS, MODELS, ROUTES, Route

# A source and an output "keep the shape" within this much difference of aspect ratio (ideogram-4 refuses
# image_weight with a shape change; how close the API calls equal is UNCONFIRMED, so 1 % both ways).
SHAPE_TOLERANCE = 0.01

ReferencePaths = tuple[StrictStr, ...]


class RemixRequest(BaseModel):
    """One remix request with Ideogram's field names, valid for the route its model picks.

    Only the fields a user set are sent (`wire_fields`), so the API's own defaults apply to the rest. Reference
    images are paths (absolute once `config.load` has checked them) sent as files (`reference_files`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: StrictStr = "V_2"  # first: every later validator reads its route from info.data
    prompt: StrictStr
    aspect_ratio: StrictStr | None = None
    resolution: StrictStr | None = None
    resolution_tier: StrictStr | None = None
    image_weight: Annotated[StrictInt, Field(ge=IMAGE_WEIGHT_RANGE[0], le=IMAGE_WEIGHT_RANGE[1])] | None = (
        None  # unset means "let the API decide" (50 on legacy, chosen from the prompt on v2): nothing is sent
    )
    magic_prompt_option: StrictStr | None = None  # also accepted as `magic_prompt` (the name outside /remix)
    seed: Annotated[StrictInt, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1])] | None = None
    style_type: StrictStr | None = None
    negative_prompt: StrictStr | None = None
    num_images: Annotated[StrictInt, Field(ge=NUM_IMAGES_RANGE[0], le=NUM_IMAGES_RANGE[1])] = 1
    color_palette: ColorPalette | None = None
    rendering_speed: StrictStr | None = None
    style_codes: tuple[Annotated[StrictStr, Field(pattern=STYLE_CODE_PATTERN)], ...] | None = None
    style_reference_images: ReferencePaths | None = None
    style_preset: StrictStr | None = None  # after style_codes and style references: it may not join them
    character_reference_images: Annotated[ReferencePaths | None, Field(validate_default=True)] = None
    character_reference_mask: StrictStr | None = None
    custom_model_uri: Annotated[StrictStr | None, Field(validate_default=True)] = None
    private: StrictBool | None = None
    enable_copyright_detection: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _magic_prompt_alias(cls, data: Any) -> Any:
        if isinstance(data, dict):
            # null means "not set" (so a rule can clear a default), except where a value is required.
            data = {key: value for key, value in data.items() if value is not None or key in ("prompt", "num_images")}
        if isinstance(data, dict) and "magic_prompt" in data:
            if "magic_prompt_option" in data:
                raise problem("both magic_prompt and magic_prompt_option are set", "keep one (they are the same field)")
            data = {("magic_prompt_option" if key == "magic_prompt" else key): v for key, v in data.items()}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            # AUTO is in the legacy enum, but whether /remix runs it is UNCONFIRMED and it has no price; the
            # v2 route `auto` is the supported way to let Ideogram choose.
            raise problem(f"'{value}' is not a remix model", choices(MODELS, value))
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise problem("the prompt is empty", "write what the remix should show")
        route = route_of(info)
        if route is not None and route.prompt_max_chars is not None and len(value) > route.prompt_max_chars:
            raise problem(
                f"the prompt has {len(value)} characters; model {route.model} takes at most {route.prompt_max_chars}",
                "shorten the prompt",
            )
        return value

    @field_validator("aspect_ratio", "style_type", "rendering_speed", "magic_prompt_option", "resolution_tier")
    @classmethod
    def _enum_field(cls, value: str, info: ValidationInfo) -> str:
        name = str(info.field_name)
        return enum_value(value, name, taken(info, name))

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str, info: ValidationInfo) -> str:
        route = taken(info, "resolution")
        if route is not None and "aspect_xor_resolution" in route.rules and info.data.get("aspect_ratio") is not None:
            raise problem("aspect_ratio and resolution are both set", KEEP_ONE)
        if route is not None and "resolution" in route.patterns:
            return pattern_value(value, "resolution", route, "1024x1024 (width x height)")
        return enum_value(value, "resolution", route)

    @field_validator("image_weight", "seed", "negative_prompt", "private", "enable_copyright_detection")
    @classmethod
    def _plain_field(cls, value: Any, info: ValidationInfo) -> Any:
        taken(info, str(info.field_name))
        return value

    @field_validator("color_palette")
    @classmethod
    def _color_palette(cls, value: ColorPalette, info: ValidationInfo) -> ColorPalette:
        route = taken(info, "color_palette")
        if value.name is None or route is None:
            return value
        return ColorPalette(name=enum_value(value.name, "color_palette.name", route))

    @field_validator("style_codes")
    @classmethod
    def _style_codes(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        route = taken(info, "style_codes")
        if route is not None and "style_codes_alone" in route.rules and info.data.get("style_type") is not None:
            raise problem("style_codes and style_type are both set", KEEP_ONE)
        if not value:
            raise problem("style_codes is empty", "list at least one 8-hex-digit code, or remove the key")
        return value

    @field_validator("style_reference_images")
    @classmethod
    def _style_references(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        route = taken(info, "style_reference_images")
        return reference_paths(value, "style_reference_images", route.max_style_references if route else None)

    @field_validator("style_preset")
    @classmethod
    def _style_preset(cls, value: str, info: ValidationInfo) -> str:
        route = taken(info, "style_preset")
        if route is not None and "preset_alone" in route.rules:
            for other in ("style_codes", "style_reference_images"):
                if info.data.get(other):
                    raise problem(f"style_preset and {other} are both set", "a preset stands alone; keep one")
        return enum_value(value, "style_preset", route)

    @field_validator("character_reference_images")
    @classmethod
    def _characters(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        route = route_of(info) if value is None else taken(info, "character_reference_images")
        if value is None:
            if route is not None and "character_required" in route.rules:
                raise problem(
                    f"model {route.model} needs a character reference image",
                    "add character_reference_images: [path/to/character.jpg] (relative to the config file)",
                )
            return None
        return reference_paths(value, "character_reference_images", route.max_character_references if route else None)

    @field_validator("character_reference_mask")
    @classmethod
    def _mask(cls, value: str, info: ValidationInfo) -> str:
        route = taken(info, "character_reference_mask")
        if (
            route is not None
            and "mask_needs_character" in route.rules
            and not info.data.get("character_reference_images")
        ):
            raise problem(
                "character_reference_mask without character_reference_images", "add the reference the mask belongs to"
            )
        return value

    @field_validator("custom_model_uri")
    @classmethod
    def _custom_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        route = route_of(info) if value is None else taken(info, "custom_model_uri")
        if value is None:
            if route is not None and "custom_model_uri" in route.required:
                raise problem(
                    f"model {route.model} needs custom_model_uri", "add custom_model_uri: model/NAME/version/VERSION"
                )
            return None
        return pattern_value(value, "custom_model_uri", route, "model/NAME/version/VERSION")

    # ------------------------------------------------------------------------------------- what is sent

    @property
    def route(self) -> Route:
        return ROUTES[self.model]

    def is_v3(self) -> bool:
        """Flat form fields (V_3 and v2), as opposed to legacy's `image_request` JSON part."""
        return self.route.family != "legacy"

    def endpoint_path(self) -> str:
        return self.route.path

    def image_part_name(self) -> str:
        return self.route.image_part

    def wire_fields(self) -> dict[str, Any]:
        """Exactly what is sent as text: the `image_request` object (legacy) or the flat form fields.

        Only fields the user set, so the API applies its own defaults to the rest. Legacy always names the
        model: remixd's default model must be what is billed, whatever the endpoint's default becomes. The
        route's path names the model everywhere else. Reference images are files (`reference_files`).
        """
        fields = self.model_dump(mode="json", exclude_unset=True, exclude_none=True, exclude={"model", *FILE_FIELDS})
        if self.is_v3():
            if "magic_prompt_option" in fields:
                fields["magic_prompt"] = fields.pop("magic_prompt_option")
        else:
            fields["model"] = self.model
        return fields

    def reference_files(self) -> list[tuple[str, str]]:
        """(part name, path) of every reference image, in the order given."""
        files = [("style_reference_images", path) for path in self.style_reference_images or ()]
        files += [("character_reference_images", path) for path in self.character_reference_images or ()]
        if self.character_reference_mask is not None:
            files.append(("character_reference_mask", self.character_reference_mask))
        return files

    def input_problem(self, width: int, height: int) -> tuple[str, str] | None:
        """(message, fix) when this request cannot be sent with a source of this size (checked per file)."""
        if "weight_keeps_shape" not in self.route.rules or self.image_weight is None or self.resolution is None:
            return None
        out_w, out_h = (int(side) for side in self.resolution.split("x"))
        if abs((out_w / out_h) / (width / height) - 1) <= SHAPE_TOLERANCE:
            return None
        return (
            f"model {self.model} refuses image_weight with resolution {self.resolution}: the source is "
            f"{width}x{height}, another shape",
            "remove image_weight or resolution for this rule, or use a source of the resolution's shape",
        )

    def price_per_image_usd(self) -> float:
        return self.route.price_per_image_usd(self.rendering_speed)

    def cost_usd(self) -> float:
        return round(self.price_per_image_usd() * self.num_images, 6)  # 0.025 * 3 without float noise

    def fingerprint(self) -> str:
        """sha256 hex of canonical JSON of (path, wire fields[, reference files]): equal iff the same is sent."""
        sent: list[Any] = [self.endpoint_path(), self.wire_fields()]
        if self.reference_files():  # only then: journals keep the fingerprints of requests without any
            sent.append(self.reference_files())
        canonical = json.dumps(
            sent,
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
