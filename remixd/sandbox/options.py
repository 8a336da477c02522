"""The sandbox's settings, fixed for the life of a server, and its faults, which change at run time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

AuthMode = Literal["api-key", "bearer", "both"]
UnsafeUrl = Literal["null", "empty", "absent"]
MultiSeed = Literal["same", "increment"]
BadRequestStyle = Literal["problem", "error"]

MIB = 1024 * 1024
# Not Ideogram's: remixd sends it to its built-in sandbox only (never to a `base_url`), naming the rule of the
# request so the stamp on the image says which rule made it (README "The sandbox").
RULE_HEADER = "X-Remixd-Rule"


@dataclass(frozen=True)
class SandboxOptions:
    """How the emulator behaves. Defaults follow the reference; each UNCONFIRMED behaviour is a switch."""

    # Keys the sandbox accepts; empty means "any non-empty key" (the in-process mode needs no real key).
    api_keys: frozenset[str] = frozenset({"sandbox"})
    # "api-key": only ``Api-Key: KEY`` (Ideogram); "bearer": only ``Authorization: Bearer KEY`` (gateways).
    auth: AuthMode = "both"
    # The spec declares 403 for legacy /remix; v3 endpoints elsewhere declare 401.
    auth_status_legacy: int = 403
    auth_status_v3: int = 401

    inflight_limit: int = 10  # images in progress, across all keys
    inflight_retry_after_s: int | None = None  # Retry-After on the 429; not documented for this case, so off
    latency_s: float = 0.0  # added to every remix request; an async v2 generation takes this long
    poll_limit: int = 1000  # GET /v2/generations per poll_window_s per organisation, then 429 + Retry-After
    poll_window_s: float = 10.0
    # This account's v2 prices as a multiple of the list prices: its dry_run quotes and its bills both follow
    # ("your account's prices may differ"), so a client that budgets at the list price is caught.
    account_price_factor: Decimal = Decimal(1)

    max_image_bytes: int = 10 * MIB  # legacy /remix per SPEC
    max_image_bytes_v3: int = 10 * MIB  # SPEC says 10 MB, the newer DOC-R3 page 25 MB
    max_image_bytes_v2: int = 50 * 1000 * 1000  # "max 50MB" on every v2 remix route
    max_reference_bytes_v3: int = 10 * MIB  # total across style (and, separately, character) references
    max_request_bytes: int = 64 * MIB  # bodies bigger than this are refused unread with 413
    max_input_pixels: int = 50_000_000  # refuse decompression bombs before decoding
    oversize_status: int = 400  # status for an image over its cap (400 or 413; real value UNCONFIRMED)
    bad_request_style: BadRequestStyle = "problem"  # connexion problem+json, or {"error": ...}

    strict_model_fields: bool = True  # False: ignore style_type/negative_prompt/... for models that lack them
    legacy_allow_v3: bool = False  # accept model V_3 / AUTO on legacy /remix

    forbidden_token: str = "FORBIDDEN_422"  # noqa: S105 - a prompt marker, not a secret; prompt containing it -> 422 safety error, not billed
    unsafe_token: str = "UNSAFE_RESULT"  # noqa: S105 - a prompt marker, not a secret; prompt containing it -> 200, items withheld, billed
    unsafe_url: UnsafeUrl = "null"  # how a withheld item's url looks (which one is real is UNCONFIRMED)
    multi_seed: MultiSeed = "same"  # seed of item i when a seed was given and num_images > 1

    url_ttl_s: int = 86_400
    expired_status: int = 410  # expired URL: 410 or 403 (UNCONFIRMED)
    public_base_url: str | None = None  # base for result URLs (a gateway that proxies images); None: our own
    signing_secret: bytes | None = None  # None: random per server
    max_stored_images: int = 2_000  # oldest are forgotten first; expired ones always are
    max_stored_bytes: int = 256 * MIB
    max_records: int = 10_000  # received/download records kept for introspection (oldest dropped)

    output_scale: float = 1.0  # output pixels per declared pixel (tests and the bench ask for less); ratio exact
    control_endpoints: bool = True  # serve /_sandbox/ (state, faults, reset, clock)

    def replace(self, **changes: Any) -> SandboxOptions:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        if self.auth not in ("api-key", "bearer", "both"):
            raise ValueError(f"auth must be api-key, bearer or both, not {self.auth!r}")
        if self.inflight_limit < 1:
            raise ValueError("inflight_limit must be at least 1")
        if not 0 < self.output_scale <= 1:
            raise ValueError("output_scale must be in (0, 1]")
        if self.url_ttl_s < 1:
            raise ValueError("url_ttl_s must be at least 1")
        if self.account_price_factor < 0:
            raise ValueError("account_price_factor must not be negative")


@dataclass
class Faults:
    """Failures to inject, changed at run time (Python: ``server.set_faults``; HTTP: POST /_sandbox/faults).

    Counters are "the next N remix requests"; each matching request uses one up.
    """

    latency_s: float | None = None  # overrides options.latency_s when set
    rate_limit_next: int = 0  # 429 inflight_limit before any work (not billed)
    fail_before_next: int = 0  # 5xx before any work (not billed)
    fail_before_status: int = 503
    fail_after_next: int = 0  # 500 after the work completed (billed: tests that clients don't double-pay)
    reset_after_next: int = 0  # connection reset after the work completed (billed)
    truncate_downloads_next: int = 0  # image GETs send half the bytes under the full Content-Length
    unsafe_next: int = 0  # results withheld as unsafe (billed)
    unsafe_items: int = 0  # how many items of such a request are withheld; 0 = all
    drip_answers_next: int = 0  # 200 remix answers sent one byte per drip_interval_s (billed first)
    drip_downloads_next: int = 0  # image GETs sent the same way
    drip_interval_s: float = 1.0
    echo_key_next: int = 0  # 200 answers that echo the caller's key, in several spellings (a leaky gateway)
    url_base: str | None = None  # rewrite result URLs to this base (gateway proxy); None: options/own address
    fail_generation_next: int = 0  # async v2 generations that end `failed` (content policy; not billed)
    payment_required: str | None = None  # a reject_reason: every v2 remix (quotes too) answers 402 while set

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes from JSON; raises ValueError naming the first bad key or value."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in types:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(types))}")
            if name in ("url_base", "payment_required"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string or null")
            elif name in ("latency_s", "drip_interval_s"):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                    raise ValueError(f"{name} must be a non-negative number or null")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if changes.get("fail_before_status", 503) not in (500, 502, 503, 504):
            raise ValueError("fail_before_status must be 500, 502, 503 or 504")
        for name, value in changes.items():
            setattr(self, name, value)
