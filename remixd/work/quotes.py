"""What a request costs this account: on a v2 route Ideogram's own free `dry_run` quote, else the route table.

Prices are per account (README, "Prices": "your account's may differ"), so budget.* counts the quoted price
where there is one. A quote answers for a route and its parameters, not for one image: it is asked once per
account, route and parameters (the prompt and seed left out) and kept QUOTE_TTL_S, the workers that need the
same one meanwhile waiting for it instead of each asking. The account is a fingerprint of the key, never the
key: a reload with another account's key on the same URL must not budget at the old account's price. A quote
that fails (the API is down, refuses the key, or answers something else) leaves the table's price, said as
such (`cost_source: table`), and is asked again after FAILED_QUOTE_TTL_S.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from remixd.clock import Clock
from remixd.errors import ApiError
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import CostSource
from remixd.logs import get_logger
from remixd.work.prepare import PreparedImage

log = get_logger(__name__)

QUOTE_TTL_S = 3600.0  # an account's prices change with its plan, not by the minute
FAILED_QUOTE_TTL_S = 300.0  # a failed quote is not asked again for every image
PER_FILE_FIELDS = frozenset({"prompt", "negative_prompt", "seed"})  # rendered per file; they do not set the price


@dataclass(frozen=True)
class Price:
    usd: float  # the whole request (every image of it); an estimate's upper bound
    source: CostSource
    detail: str = ""  # a quote's qualifier (exact, estimate), or why there is no quote


def table_price(request: RemixRequest) -> Price:
    return Price(request.cost_usd(), "table")


class Quotes:
    def __init__(self, client: RemixApi, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, Price]] = {}  # key -> (monotonic expiry, price)
        self._asking: dict[str, threading.Lock] = {}

    def price(self, request: RemixRequest, prepared: PreparedImage) -> Price:
        """The price to budget `request` at: a quote (cached) on a v2 route, the table elsewhere or when the
        quote fails. `prepared` is the image the request will send: a quote is of exactly that request."""
        table = table_price(request)
        if not request.route.is_v2:  # dry_run is declared on the v2 routes only; elsewhere it could run
            return table
        key = self._key(request)
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:
            known = self._cached(key)
            if known is not None:
                return known
            try:
                quote = self._client.quote(request, prepared.data, prepared.filename, prepared.content_type)
            except ApiError as error:
                price, keep_s = Price(table.usd, "table", error.message), FAILED_QUOTE_TTL_S
                log.warning(
                    "remixd.price.not_quoted",
                    route=request.model,
                    error=error.message,
                    usd=table.usd,
                    hint=f"budgeted at the list price; remixd asks again in {FAILED_QUOTE_TTL_S:.0f} s",
                )
            else:
                price, keep_s = Price(quote.usd, "quote", quote.qualifier), QUOTE_TTL_S
                log.info(
                    "remixd.price.quoted",
                    route=request.model,
                    usd=quote.usd,
                    table_usd=table.usd,
                    qualifier=quote.qualifier,
                )
            with self._lock:
                self._known[key] = (self._clock.monotonic() + keep_s, price)
            return price

    def _cached(self, key: str) -> Price | None:
        with self._lock:
            known = self._known.get(key)
        if known is None or known[0] <= self._clock.monotonic():
            return None
        return known[1]

    def _key(self, request: RemixRequest) -> str:
        fields = {name: value for name, value in request.wire_fields().items() if name not in PER_FILE_FIELDS}
        where = [self._client.account(), self._client.endpoint_url(request)]
        return json.dumps([*where, fields, request.reference_files()], sort_keys=True, default=str)
