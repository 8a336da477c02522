"""Ideogram's own price of a planned request (`remixd plan --quote`): a free `dry_run`, asked over the
connection `remixd run` would use."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from remixd.clock import Clock
from remixd.config.model import Config
from remixd.daemon.connection import ApiConnection
from remixd.daemon.plan import Row
from remixd.errors import RemixdError
from remixd.work.prepare import prepare


@contextmanager
def quoter(config: Config) -> Iterator[Callable[[Row], str]]:
    """Ask the API for each v2 request's price with a free `dry_run` (the image is read and checked as `run`
    would, so this is slower than the plan itself); the in-process sandbox is stopped afterwards."""
    connection = ApiConnection(os.environ, requests.Session(), Clock())
    try:
        client = connection.build_client(config, None)

        def quote(row: Row) -> str:
            assert row.remix is not None  # with_quotes asks only for rows with a request
            try:
                prepared = prepare(Path(row.inbox) / row.relpath, row.remix.route.max_source_bytes)
                answer = client.quote(row.remix, prepared.data, prepared.filename, prepared.content_type)
            except RemixdError as error:
                return f"none: {error.message}"
            return f"${answer.usd:.2f} {answer.qualifier}"

        yield quote
    finally:
        connection.close()
