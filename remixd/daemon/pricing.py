"""The account's own price of a request not sent yet (`remixd plan --quote`, `remixd reroll`): the budget's
quotes (remixd.work.quotes: a free `dry_run` per route and parameters, the table's price when there is none),
asked over the connection `remixd run` would use, so the price shown is the price the budget will count."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from remixd.clock import Clock
from remixd.config.model import Config
from remixd.daemon.connection import ApiConnection
from remixd.errors import RemixdError
from remixd.ideogram.requests import RemixRequest
from remixd.work.prepare import prepare
from remixd.work.quotes import Price, Quotes, table_price

Pricer = Callable[[RemixRequest, Path], Price]  # a request and the image it would send -> its price


@contextmanager
def account_prices(config: Config) -> Iterator[Pricer]:
    """Price requests as the budget will (the image is read and checked as `run` would, so quoting is slower
    than a plan); the in-process sandbox, if any, is stopped afterwards. Without a usable connection (no key,
    say) every price is the table's, with why."""
    clock = Clock()
    connection = ApiConnection(os.environ, requests.Session(), clock)
    try:
        try:
            quotes: Quotes | None = Quotes(connection.build_client(config, None), clock)
            unquoted = ""
        except RemixdError as error:
            quotes, unquoted = None, error.message

        def price(request: RemixRequest, image: Path) -> Price:
            if not request.route.is_v2:  # dry_run is declared on the v2 routes only
                return table_price(request)
            if quotes is None:
                return Price(request.cost_usd(), "table", unquoted)
            try:
                prepared = prepare(image, request.route.max_source_bytes)
            except RemixdError as error:
                return Price(request.cost_usd(), "table", error.message)
            return quotes.price(request, prepared)

        yield price
    finally:
        connection.close()
