"""Checks of single request values against a route entry, and the colour palette value, for `ideogram.requests`.

Each raises a `problem` (a pydantic error whose message and fix `config/reader.py` shows apart), or returns the
value in the route's own spelling.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from remixd.ideogram.enums import COLOR_HEX_PATTERN, COLOR_MEMBERS_RANGE, COLOR_PALETTE_PRESETS, COLOR_WEIGHT_RANGE
from remixd.ideogram.routes import ROUTES, Route, models_taking

KEEP_ONE = "keep one of them (the API takes either, not both)"
_PREFIXES = {"aspect_ratio": "ASPECT_", "resolution": "RESOLUTION_"}
_WHAT = {
    "aspect_ratio": "an aspect ratio",
    "resolution": "a resolution",
    "color_palette.name": "a color palette preset",
}


def problem(message: str, fix: str) -> PydanticCustomError:
    """A validation error whose parts `config/reader.py` can show separately (`ctx["message"]`, `ctx["fix"]`)."""
    return PydanticCustomError("remix_request", "{message} — {fix}", {"message": message, "fix": fix})


def choices(values: tuple[str, ...], wrong: str, guess: bool = True) -> str:
    """`use one of …`, led by a did-you-mean when a value is close (not when another route has it)."""
    same = [value for value in values if value.casefold() == wrong.casefold()]  # `turbo` for TURBO
    close = same or (difflib.get_close_matches(wrong, values, n=1) if guess else [])
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}use one of {', '.join(values)}"


def route_of(info: ValidationInfo) -> Route | None:
    model = info.data.get("model")
    return ROUTES.get(model) if isinstance(model, str) else None


def route_name(route: Route) -> str:
    return f"model {route.model} (legacy /remix)" if route.family == "legacy" else f"model {route.model}"


def taken(info: ValidationInfo, name: str) -> Route | None:
    """The route, after refusing a field it does not take; None when the model itself is invalid."""
    route = route_of(info)
    if route is not None and not route.takes(name):
        shown = "magic_prompt" if name == "magic_prompt_option" and route.family != "legacy" else name
        silently = f"; POST {route.path} would ignore it silently" if route.is_v2 else ""
        raise problem(
            f"{shown} is not available for model {route.model}{silently}",
            f"remove {shown}, or use a model that takes it: {', '.join(models_taking(name))}",
        )
    return route


def spellings(value: str, name: str, route: Route) -> list[str]:
    """The ways a user may have written a value of this route's enum, the route's own first."""
    prefix = _PREFIXES.get(name)
    if prefix is None:
        return [value, value.lower()] if route.is_v2 else [value]
    if route.family == "legacy":
        return [value if value.startswith(prefix) else prefix + value.replace("x", "_")]
    flat = value.removeprefix(prefix).replace("_", "x") if value.startswith(prefix) else value
    return [flat, flat.lower()]


def enum_value(value: str, name: str, route: Route | None) -> str:
    if route is None:  # the model is invalid (reported there): nothing to check against
        return value
    allowed = route.enums[name]
    for spelling in spellings(value, name, route):
        if spelling in allowed:
            return spelling
    what = _WHAT.get(name, f"a {name.removesuffix('_option').replace('_', ' ')}")
    elsewhere = [  # where a spelling family is the mistake (16x9 on /remix), say which routes take the value
        other.model
        for other in ROUTES.values()
        if name in _PREFIXES and name in other.enums and set(spellings(value, name, other)) & set(other.enums[name])
    ]
    other = f" (only {', '.join(elsewhere)} {'has' if len(elsewhere) == 1 else 'have'} it)" if elsewhere else ""
    raise problem(
        f"'{value}' is not {what} of {route_name(route)}{other}",
        choices(allowed, spellings(value, name, route)[-1], not other),
    )


def pattern_value(value: str, name: str, route: Route | None, example: str) -> str:
    pattern = route.patterns.get(name) if route else None
    if pattern is not None and not re.fullmatch(pattern, value):
        raise problem(f"'{value}' is not of the form {example}", f"write it like {example}")
    return value


class ColorPaletteMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    color_hex: Annotated[StrictStr, Field(pattern=COLOR_HEX_PATTERN)]
    color_weight: Annotated[float, Field(strict=True, ge=COLOR_WEIGHT_RANGE[0], le=COLOR_WEIGHT_RANGE[1])] | None = None


class ColorPalette(BaseModel):
    """Exactly one of a preset `name` or 1 to 8 `members` (SPEC `ColorPaletteWithPresetNameOrMembers`).

    The preset's spelling is the route's (`PASTEL` or `pastel`): `RemixRequest` checks and translates it.
    """

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
        if value is not None and value.upper() not in COLOR_PALETTE_PRESETS:
            raise problem(f"'{value}' is not a color palette preset", choices(COLOR_PALETTE_PRESETS, value.upper()))
        return value

    @model_validator(mode="after")
    def _name_xor_members(self) -> ColorPalette:
        if (self.name is None) == (self.members is None):
            raise problem(
                "a color palette needs exactly one of 'name' or 'members'",
                "write either {name: PASTEL} or {members: [{color_hex: '#ff8800', color_weight: 0.5}]}",
            )
        return self


def reference_paths(value: tuple[str, ...], name: str, most: int | None) -> tuple[str, ...]:
    if not value:
        raise problem(f"{name} is empty", "list at least one image path, or remove the key")
    if most is not None and len(value) > most:
        raise problem(f"{name} lists {len(value)} images; the route takes at most {most}", "list fewer images")
    return value
