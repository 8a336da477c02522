"""The budget at the account's own price: a free `dry_run` quote per route and parameters, over loopback
against a sandbox whose account is priced apart from Ideogram's list prices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from remixd.config.load import load_config
from remixd.daemon.connection import CurrentClient
from remixd.daemon.plan import make_plan, render, with_quotes
from remixd.daemon.pricing import account_prices
from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.requests import RemixRequest
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from remixd.work.prepare import prepare
from remixd.work.quotes import FAILED_QUOTE_TTL_S, QUOTE_TTL_S, Quotes
from tests.helpers import TEST_KEY, FakeClock, approx, make_image, make_service, remixd, sidecars, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
TURBO: dict[str, Any] = {
    "name": "product",
    "match": ["*.jpg"],
    "request": {"model": "ideogram-4", "prompt": "studio shot of {stem}", "rendering_speed": "turbo"},
}
LIST_USD = 0.03  # ideogram-4 turbo, one image, in the route table


@pytest.fixture
def dearer() -> Iterator[SandboxServer]:
    """An account billed twice the list price: its quotes say so, and so do its bills."""
    options = SandboxOptions(api_keys=frozenset({TEST_KEY}), output_scale=0.25, account_price_factor=Decimal(2))
    server = SandboxServer(options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def quotes_asked(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.received if r.dry_run)


def six_under_a_budget_of_three(tmp_path: Path, dearer: SandboxServer) -> Path:
    """Six inputs and $0.18 a day: six requests at the list price, three at the dearer account's."""
    for index in range(6):
        make_image(tmp_path / "inbox" / f"p{index}.jpg", color=(30 * index, 90, 10))
    return write_config(
        tmp_path,
        dearer.base_url,
        rules=[TURBO],
        api={"poll_interval_s": 0.05},
        extra={"budget": {"max_usd_per_day": 0.18}},
    )


def test_the_budget_stops_at_the_quoted_price_not_the_list_price(tmp_path: Path, dearer: SandboxServer) -> None:
    # $0.18 a day is six requests at the list price and three at this account's: the budget must stop at three.
    config = six_under_a_budget_of_three(tmp_path, dearer)
    make_service(config, "once", ENV).run()
    assert dearer.ledger.requests == 3
    assert dearer.ledger.usd == pytest.approx(3 * 2 * LIST_USD)
    assert quotes_asked(dearer) == 1  # one quote for the route and its parameters, not one per image
    documents = sidecars(tmp_path / "outbox")
    assert [(doc["cost_source"], doc["cost_usd"]) for doc in documents] == [("quote", 2 * LIST_USD)] * 3
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spent = journal.spent(datetime.now(UTC).date())  # the journal's money agrees with the API's ledger
        assert spent.usd == pytest.approx(dearer.ledger.usd)
    finally:
        journal.close()
    status = json.loads(remixd("status", "--json", "-c", str(config), env=ENV).stdout)
    assert status["spend_today"]["by_cost_source"] == {"quote": pytest.approx(dearer.ledger.usd)}


def test_a_failed_quote_budgets_at_the_table_and_is_not_asked_for_every_image(
    tmp_path: Path, dearer: SandboxServer
) -> None:
    dearer.set_faults(fail_before_next=1)  # the first request, the quote, answers 503
    for index in range(3):
        make_image(tmp_path / "inbox" / f"p{index}.jpg", color=(30 * index, 90, 10))
    run = write_config(tmp_path, dearer.base_url, rules=[TURBO], api={"poll_interval_s": 0.05})
    make_service(run, "once", ENV).run()
    assert quotes_asked(dearer) == 1
    assert {doc["cost_source"] for doc in sidecars(tmp_path / "outbox")} == {"table"}
    assert dearer.ledger.requests == 3


def test_a_quote_is_kept_per_route_and_parameters_for_its_time(tmp_path: Path, dearer: SandboxServer) -> None:
    clock = FakeClock()
    client = IdeogramClient(dearer.base_url, TEST_KEY, "api-key", requests.Session(), 20, 20, 1 << 26)
    quotes = Quotes(client, clock)
    image = prepare(make_image(tmp_path / "a.jpg"))

    def price(**fields: Any) -> tuple[float, str]:
        request = RemixRequest.model_validate({**TURBO["request"], **fields})
        answer = quotes.price(request, image)
        return answer.usd, answer.source

    assert price(prompt="one") == (2 * LIST_USD, "quote")
    assert price(prompt="another file's prompt") == (2 * LIST_USD, "quote")
    assert quotes_asked(dearer) == 1
    assert price(num_images=3) == (approx(6 * LIST_USD), "quote")  # other parameters: asked apart
    assert quotes_asked(dearer) == 2
    clock.advance(QUOTE_TTL_S)
    assert price(prompt="one") == (2 * LIST_USD, "quote")
    assert quotes_asked(dearer) == 3
    legacy = RemixRequest.model_validate({"prompt": "a", "model": "V_2"})
    assert quotes.price(legacy, image).source == "table"  # no dry_run off the v2 routes: it could run
    assert quotes_asked(dearer) == 3
    dearer.set_faults(fail_before_next=1)
    assert price(rendering_speed="quality") == (approx(0.10), "table")
    clock.advance(FAILED_QUOTE_TTL_S)
    assert price(rendering_speed="quality") == (approx(0.20), "quote")


def test_plan_quote_fits_the_budget_at_the_price_the_run_pays(
    tmp_path: Path, dearer: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEOGRAM_API_KEY", TEST_KEY)
    config = six_under_a_budget_of_three(tmp_path, dearer)
    loaded = load_config(config)
    listed = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date())
    assert listed.to_dict()["total"]["within_budget"] == 6  # at the list price all six would fit

    with account_prices(loaded) as price:
        quoted = with_quotes(listed, price)

    assert [(row.usd, row.quote) for row in quoted.rows] == [(2 * LIST_USD, "$0.06 exact")] * 6
    assert quoted.to_dict()["total"] == {"inputs": 6, "images": 6, "usd": 0.36, "within_budget": 3}
    assert quoted.totals["product"].usd == pytest.approx(0.36)
    assert "the budget stops after 3 of 6 requests" in list(render(quoted))[-1]
    assert (quotes_asked(dearer), dearer.ledger.usd) == (1, 0)  # one free quote for one route and parameters
    make_service(config, "once", ENV).run()
    assert dearer.ledger.requests == 3  # what the plan said


def test_reroll_shows_the_quoted_price(tmp_path: Path, dearer: SandboxServer) -> None:
    make_image(tmp_path / "inbox/mug.jpg")
    config = write_config(tmp_path, dearer.base_url, rules=[TURBO], api={"poll_interval_s": 0.05})
    make_service(config, "once", ENV).run()
    billed = dearer.ledger.usd

    shown = remixd("reroll", "-c", str(config), "--seed", "7", "--yes", str(tmp_path / "done/mug.jpg"), env=ENV)

    assert shown.returncode == 0, shown.stderr
    assert "mug.jpg: product (1 image(s), $0.06 quoted), seed 7" in shown.stdout
    assert "total: 1 input(s) -> 1 image(s) -> $0.06" in shown.stdout
    assert dearer.ledger.usd == billed  # the quote is free
    assert [r.dry_run for r in dearer.received][-1]


def test_a_quote_is_kept_per_account_and_the_key_is_not_kept(tmp_path: Path) -> None:
    # Kept per URL alone, a reload with another account's key on the same URL budgeted at the old account's
    # price for up to an hour.
    other_key = "rk-another-account-0123456789"
    options = SandboxOptions(api_keys=frozenset({TEST_KEY, other_key}), output_scale=0.25)
    with SandboxServer(options) as sandbox:
        session = requests.Session()
        client = CurrentClient(IdeogramClient(sandbox.base_url, TEST_KEY, "api-key", session, 20, 20, 1 << 26))
        quotes = Quotes(client, FakeClock())
        image = prepare(make_image(tmp_path / "a.jpg"))
        request = RemixRequest.model_validate(TURBO["request"])
        assert quotes.price(request, image).source == "quote"
        assert quotes.price(request, image).source == "quote"
        assert quotes_asked(sandbox) == 1
        client.swap(IdeogramClient(sandbox.base_url, other_key, "api-key", session, 20, 20, 1 << 26))
        assert quotes.price(request, image).source == "quote"
        assert quotes_asked(sandbox) == 2  # the other account is asked its own price
        kept = repr(vars(quotes))
        assert TEST_KEY not in kept and other_key not in kept
