"""What Ideogram's Remix API answers: a response's images, each with its URL, seed and safety flag.

Both endpoints answer in this shape (reference `ideogram-api.md` §3: `GenerateImageResponse`, and
`ImageGenerationResponseV3` for V_3); fields remixd does not read are ignored rather than refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

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
    """An answer with its images. Legacy and V_3 answer `{created, data}`; v2 answers `{generation_id, seed,
    data}` (no `created`), and an async v2 submission only `{generation_id, seed}`: `accepted` is then true, and
    the images come from polling the generation (`GenerationState`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    created: StrictStr | None = None
    data: tuple[ResultItem, ...] = ()
    generation_id: StrictStr | None = None
    seed: int | None = None  # v2: the seed the request resolved to
    usage_cost_usd_micros: int | None = None  # a completed generation billed by usage (auto)

    @model_validator(mode="after")
    def _images_or_a_generation(self) -> RemixResponse:
        if self.generation_id is None and (self.created is None or not self.data):
            raise ValueError("an answer needs `created` and images, or a `generation_id`")
        return self

    @property
    def accepted(self) -> bool:
        """An async acknowledgement: a generation to poll, no images yet."""
        return self.generation_id is not None and not self.data


class GenerationState(BaseModel):
    """`GET /v2/generations/{id}`: pending, completed (with its images) or failed (with a reason)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    generation_id: StrictStr
    status: StrictStr  # pending | completed | failed; anything else is treated as pending
    created: StrictStr | None = None
    data: tuple[ResultItem, ...] = ()
    failure_reason: StrictStr | None = None
    usage_cost_usd_micros: int | None = None

    def as_response(self, seed: int | None) -> RemixResponse:
        """A completed generation as the answer the results stage writes from."""
        return RemixResponse(
            created=self.created,
            data=self.data,
            generation_id=self.generation_id,
            seed=seed,
            usage_cost_usd_micros=self.usage_cost_usd_micros,
        )


class PriceQuote(BaseModel):
    """A `dry_run` answer: what the request would cost, without generating or billing anything."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    object: Literal["price_quote"]
    billing_identifier: StrictStr
    quantity: int
    usd_micros: Annotated[int, Field(ge=0)]
    qualifier: StrictStr  # exact | estimate
    upper_bound_usd_micros: int | None = None

    @property
    def usd(self) -> float:
        """The most it may cost: the upper bound of an estimate."""
        return (self.upper_bound_usd_micros or self.usd_micros) / 1_000_000
