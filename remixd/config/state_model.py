"""The sections of the config every command reads, and what `remixd status` reads of them (`config.state`).

Apart from the other sections' models (`config.model`): status validates only these, and defining the others was
a part of its start; on a valid config it needs none of them (`config.state_quick`). What they come to is in
`config.state_values`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from remixd.output_name import DEFAULT as DEFAULT_OUTPUT_NAME

Seconds = Annotated[float, Field(strict=True, gt=0)]  # strict float still takes ints; never bools/strings
# Each section's validator is built at its first use, not at import: `remixd status` validates only the
# sections it reads (config.state.load_state), and building the others was most of its start.
SECTION = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class BudgetSchema(BaseModel):
    """budget: as written (`config.state_values.BudgetConfig` is what it comes to)."""

    model_config = SECTION

    max_images_per_day: Annotated[StrictInt, Field(ge=0)] | None = None
    max_usd_per_day: Annotated[float, Field(strict=True, ge=0)] | None = None


class JournalSchema(BaseModel):
    """journal: as written (`config.state_values.JournalConfig`)."""

    model_config = SECTION

    keep_days: Annotated[StrictInt, Field(ge=1)] = 90
    min_free_mb: Annotated[StrictInt, Field(ge=0)] = 64


# The shapes of an inbox and of the top level as written; `config.load` builds the frozen objects of
# `config.model` from them after its cross-field checks.
class InboxSchema(BaseModel):
    model_config = SECTION

    path: StrictStr
    output: StrictStr
    done_dir: StrictStr | None = None
    failed_dir: StrictStr
    after: Literal["move", "delete", "keep"] = "move"
    recursive: StrictBool = False
    settle_s: Seconds = 2.0
    detect: Literal["auto", "native", "poll"] = "auto"
    rules: tuple[StrictStr, ...] | None = None
    ignore: tuple[StrictStr, ...] = ()
    rescan_s: Seconds = 60.0
    poll_s: Seconds = 1.0
    outputs: dict[str, Any] | None = None  # checked on its own as OutputsConfig
    output_name: StrictStr = DEFAULT_OUTPUT_NAME
    companions: Literal["off", "optional", "required"] = "off"
    companion_wait_s: Seconds = 2.0

    @field_validator("companions", mode="before")
    @classmethod
    def _unquoted_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads `companions: off` as the boolean false


class DocumentSchema(BaseModel):
    """The top level only; each section is validated on its own so one bad section hides nothing else."""

    model_config = SECTION

    api: dict[str, Any] | None = None
    state_dir: StrictStr = "./state"
    budget: dict[str, Any] | None = None
    journal: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    ui: dict[str, Any] | None = None
    defaults: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    inboxes: Annotated[list[Any], Field(min_length=1)]
    rules: Annotated[list[Any], Field(min_length=1)]
    shutdown_grace_s: Seconds = 30.0
