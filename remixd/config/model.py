"""The config as validated, frozen objects: the schema of each section, and what is read from it.

Every stage reads its settings from these objects; `config.load` is the one place that turns a YAML file
into them (every problem at once, located); `config.warnings` says what about a valid config deserves a look.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, field_validator

from remixd.config.state_model import SECTION, Seconds
from remixd.config.state_values import BudgetConfig, JournalConfig
from remixd.output_name import DEFAULT as DEFAULT_OUTPUT_NAME

if TYPE_CHECKING:  # the request model and the route table under it: only rules need them; status reads none
    from remixd.ideogram.requests import RemixRequest


class ApiConfig(BaseModel):
    model_config = SECTION

    base_url: StrictStr = "https://api.ideogram.ai"
    auth: Literal["api-key", "bearer"] = "api-key"
    api_key_env: Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "IDEOGRAM_API_KEY"
    api_key_file: Path | None = None  # absolute after loading
    sandbox: StrictBool = False
    max_in_flight_images: Annotated[StrictInt, Field(ge=1, le=64)] = 8
    timeout_s: Seconds = 180.0
    download_timeout_s: Seconds = 60.0
    # A legacy or 3.0 request caught in flight by a crash may have been billed and cannot be looked up:
    # resend it (counted twice) or hold it as "outcome unknown" for `remixd retry` (README, "After a crash").
    after_crash: Literal["resend", "hold"] = "resend"
    max_download_bytes: Annotated[StrictInt, Field(gt=0)] = 50 * 1024 * 1024
    # Hosts (or URLs) result links may point at besides the API's host and its parent domain.
    allowed_result_hosts: tuple[StrictStr, ...] = ()
    # v2 routes: submit with async=true, keep the generation_id, poll for the result (README, "Async
    # generations"); false for gateways without the polling route.
    async_: StrictBool = Field(default=True, alias="async")
    poll_interval_s: Annotated[float, Field(strict=True, gt=0, le=60)] = 1.0

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", value):
            raise ValueError("base_url must be an http(s) URL without query, e.g. https://api.ideogram.ai")
        if "@" in value.split("/", 3)[2]:  # https://user:KEY@gw/…: a key written into the config file
            raise ValueError(
                "base_url must not carry a user or password: never put an API key in a config file; "
                "name a file (api_key_file) or a variable (api_key_env)"
            )
        return value.rstrip("/")  # remixd appends /remix itself


class MetricsConfig(BaseModel):
    """Optional Prometheus endpoint; loopback unless the operator says otherwise."""

    model_config = SECTION

    listen: Annotated[StrictStr, Field(pattern=r"^[^\s:]+:\d{1,5}$")] = "127.0.0.1:9464"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class OutputsConfig(BaseModel):
    """How results are written (README, "Output format"); at the top level, and overridden per inbox or rule."""

    model_config = SECTION

    embed_metadata: StrictBool = True
    format: Literal["original", "png", "jpeg", "webp"] = "original"
    quality: Annotated[StrictInt, Field(ge=1, le=100)] = 90
    max_side: Annotated[StrictInt, Field(ge=16)] | None = None
    keep_download: StrictBool = False

    def under(self, override: OutputsConfig | None) -> OutputsConfig:
        """These settings with the keys `override` sets on top."""
        if override is None:
            return self
        return self.model_copy(update={key: getattr(override, key) for key in override.model_fields_set})


MAX_PORT = 65535


class UiConfig(BaseModel):
    """The review page (README, "The review page"): loopback unless a token guards it."""

    model_config = SECTION

    listen: StrictStr = "127.0.0.1:8765"
    token_file: Path | None = None  # absolute after loading

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        well_formed = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}", value)
        if not well_formed or int(value.rsplit(":", 1)[1]) > MAX_PORT:
            raise ValueError(f"{value!r} is not HOST:PORT; write e.g. 127.0.0.1:8765 (port 0: any free port)")
        return value

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name other than localhost may resolve anywhere


# The shape of a rule as written (an inbox's and the top level's: `config.state_model`); `config.load` builds
# the frozen objects below from them after its cross-field checks.
class RuleSchema(BaseModel):
    model_config = SECTION

    name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9_-]+$")]
    match: Annotated[tuple[StrictStr, ...], Field(min_length=1)]
    continue_: StrictBool = Field(default=False, alias="continue")
    request: dict[str, Any]
    outputs: dict[str, Any] | None = None  # checked on its own as OutputsConfig


@dataclass(frozen=True)
class InboxConfig:
    path: Path
    output: Path
    done_dir: Path | None
    failed_dir: Path
    after: Literal["move", "delete", "keep"]
    recursive: bool
    settle_s: float
    detect: Literal["auto", "native", "poll"]
    rules: tuple[str, ...]  # names, in the order they are tried
    ignore: tuple[str, ...]  # user globs, extra to the built-in ignore list
    excluded_dirs: tuple[Path, ...]  # remixd's own folders inside this inbox: the watcher skips them
    rescan_s: float = 60.0
    poll_s: float = 1.0
    outputs: OutputsConfig = field(default_factory=OutputsConfig)  # the top level's with this inbox's keys on top
    output_name: str = DEFAULT_OUTPUT_NAME  # checked by config.output_name.problems
    rule_outputs: tuple[tuple[str, OutputsConfig], ...] = ()  # where a rule sets its own keys, on top of those
    companions: Literal["off", "optional", "required"] = "off"  # README "Companions"
    companion_wait_s: float = 2.0

    def outputs_for(self, rule: str) -> OutputsConfig:
        return dict(self.rule_outputs).get(rule, self.outputs)


@dataclass(frozen=True)
class Rule:
    name: str
    match: tuple[str, ...]
    continue_: bool  # YAML key "continue"
    request: RemixRequest  # defaults merged under it; prompt is the unrendered template
    patterns: tuple[re.Pattern[str], ...]  # `match`, compiled (rules.compile_glob)
    outputs: OutputsConfig | None = None  # only the keys the rule sets (`model_fields_set`)
    match_input: bool = False  # aspect_ratio: match_input, chosen per input (rules.nearest_ratio)


@dataclass(frozen=True)
class Config:
    source: Path
    api: ApiConfig
    state_dir: Path
    budget: BudgetConfig
    inboxes: tuple[InboxConfig, ...]
    rules: tuple[Rule, ...]
    shutdown_grace_s: float = 30.0
    metrics: MetricsConfig | None = None  # None: no metrics endpoint
    journal: JournalConfig = field(default_factory=JournalConfig)
    ui: UiConfig | None = None  # None: no review page
    warnings: tuple[str, ...] = ()

    def rules_for(self, inbox: InboxConfig) -> tuple[Rule, ...]:
        by_name = {rule.name: rule for rule in self.rules}
        return tuple(by_name[name] for name in inbox.rules)
