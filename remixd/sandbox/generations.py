"""What the sandbox keeps of a v2 generation, and the documents it answers about one: its status when polled,
and a `dry_run` price quote (the reference's `PriceQuote`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from remixd.sandbox import reference_v2
from remixd.sandbox.replies import Reply, json_reply
from remixd.sandbox.validation_v2 import V2Order, usd_micros


@dataclass
class Generation:
    generation_id: str
    created: float  # sandbox clock
    ready_at: float
    work: V2Order
    seed: int
    host: str | None
    fails: bool  # decided when it was accepted (a fault)
    status: str = "pending"
    data: list[dict[str, Any]] | None = None  # made while pending, outside any lock
    made: threading.Event | None = None  # set when the making while pending has ended
    usage_usd: Decimal | None = None
    rule: str | None = None  # named by remixd for the stamp (options.RULE_HEADER)


def quote_reply(work: V2Order) -> Reply:
    order = work.order
    amount = order.price_per_image * order.num_images
    quote: dict[str, Any] = {
        "object": "price_quote",
        "billing_identifier": work.billing_identifier,
        "quantity": order.num_images,
        "usd_micros": usd_micros(amount),
        "credit_millis": usd_micros(amount) // 10,
        "qualifier": "estimate" if work.estimate else "exact",
    }
    if work.estimate:
        quote["upper_bound_usd_micros"] = usd_micros(amount)
    return json_reply(200, quote)


def status_document(generation: Generation, data: list[dict[str, Any]] | None) -> dict[str, Any]:
    created = datetime.fromtimestamp(generation.created, tz=UTC).isoformat()
    document: dict[str, Any] = {
        "generation_id": generation.generation_id,
        "status": generation.status,
        "created": created,
    }
    if generation.status == "failed":
        document["failure_reason"] = reference_v2.FAILURE_REASON
    elif generation.status == "completed":
        document["response_type"] = "url"
        document["data"] = [{"object_type": "image.generation", **item} for item in data or ()]
        if generation.work.estimate and generation.usage_usd is not None:
            document["usage_cost_usd_micros"] = usd_micros(generation.usage_usd)
    return document
