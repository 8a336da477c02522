"""What Ideogram's Remix API answers: a response's images, each with its URL, seed and safety flag.

Both endpoints answer in this shape (reference `ideogram-api.md` §3: `GenerateImageResponse`, and
`ImageGenerationResponseV3` for V_3); fields remixd does not read are ignored rather than refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator


class ResultItem(BaseModel):
    """One image of a response. `url` null, empty or absent all mean "no image" (withheld as unsafe)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str | None = None
    prompt: str | None = None
    resolution: str | None = None
    seed: int | None = None
    is_image_safe: bool = True
    style_type: str | None = None

    @field_validator("url")
    @classmethod
    def _empty_url_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="before")
    @classmethod
    def _safety_defaults_to_url(cls, data: Any) -> Any:
        # SPEC marks is_image_safe required; if a gateway drops it, an item without a URL is not "safe".
        if isinstance(data, dict) and "is_image_safe" not in data:
            data = {**data, "is_image_safe": bool(data.get("url"))}
        return data

    @property
    def has_image(self) -> bool:
        return self.url is not None


class RemixResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    created: StrictStr
    data: Annotated[tuple[ResultItem, ...], Field(min_length=1)]
