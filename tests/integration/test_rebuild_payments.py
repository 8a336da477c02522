"""What a failed input may have paid outlives a lost journal: its error file names it, the rebuild counts it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from remixd.config.load import load_config
from remixd.daemon.operator import retry_failed
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_a_failed_inputs_payments_still_count_against_the_budget_after_the_journal_is_deleted(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    sandbox.set_faults(reset_after_next=1)  # billed by the API, the answer lost: a possible payment
    make_image(tmp_path / "inbox/unknown.jpg")
    assert make_service(config, "once", ENV).run().failed == 1
    sandbox.set_faults(url_base="file:///etc")  # billed, its result link refused: paid for, nothing written
    make_image(tmp_path / "inbox/refused.jpg", color=(1, 1, 1))
    assert make_service(config, "once", ENV).run().failed == 1
    assert (sandbox.ledger.requests, sandbox.ledger.images) == (2, 2)
    refused = json.loads((tmp_path / "failed/refused.jpg.error.json").read_text())
    [paid] = refused["payments"]
    assert (paid["rule"], paid["images"], paid["status"], paid["cost_source"]) == ("poster", 1, "billed", "table")
    assert paid["usd"] == sandbox.ledger.usd / 2
    unknown = json.loads((tmp_path / "failed/unknown.jpg.error.json").read_text())
    assert [paid["status"] for paid in unknown["payments"]] == ["sent"]
    today = datetime.now(UTC).date()
    before = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        counted = before.spent(today)
    finally:
        before.close()
    for path in (tmp_path / "state").glob("journal.sqlite3*"):
        path.unlink()

    assert make_service(config, "once", ENV).run().failed == 0  # the rebuild, and nothing to do

    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        assert journal.spent(today) == counted
        spent = journal.spent(today)
        assert (spent.images, spent.usd, spent.unknown) == (2, sandbox.ledger.usd, 1)  # the API's own ledger
        assert journal.possible_payments().unknown == 1
        assert journal.counts()["failed"] == 2
    finally:
        journal.close()
    assert sandbox.ledger.requests == 2  # and nothing was sent again


def test_a_retried_inputs_earlier_payment_still_counts_after_it_succeeds_and_the_journal_is_deleted(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Failed after paying twice, each time put back by `remixd retry` (its error file goes), and done the third
    time: the sidecars of the success are all the folders keep of it, so they must name both payments."""
    config = write_config(tmp_path, sandbox.base_url)
    first = datetime.now(UTC).date()
    sandbox.set_faults(url_base="file:///etc")  # billed, its result link refused: paid for, nothing written
    make_image(tmp_path / "inbox/again.jpg")
    error_file = tmp_path / "failed/again.jpg.error.json"
    for attempt in (1, 2):
        assert make_service(config, "once", ENV).run().failed == 1
        assert len(json.loads(error_file.read_text())["payments"]) == attempt  # this one's and those before
        assert retry_failed(load_config(config)).lines[-1] == "1 input(s) put back"
        assert not error_file.exists()
    sandbox.set_faults(url_base=None)
    assert make_service(config, "once", ENV).run().done == 1
    assert (sandbox.ledger.requests, sandbox.ledger.images) == (3, 3)
    for path in (tmp_path / "state").glob("journal.sqlite3*"):
        path.unlink()

    assert make_service(config, "once", ENV).run().failed == 0  # the rebuild, and nothing to do

    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spent = journal.spent_since(first)
        assert (spent.images, spent.usd, spent.unknown) == (3, sandbox.ledger.usd, 0)  # each payment once
    finally:
        journal.close()
    assert sandbox.ledger.requests == 3  # and nothing was sent again
