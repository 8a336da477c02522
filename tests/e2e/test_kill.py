"""kill -9 at random moments: every input ends done exactly once, and a crash costs at most what was in flight.

`remixd run` is a subprocess against the sandbox (in this process, so the sandbox survives every kill); the
storm itself, and the checks of the disk, are shared with the v2 kill test (`storm.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remixd.clock import SYSTEM_CLOCK
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.e2e import storm
from tests.helpers import write_config

INPUTS = 300
KILLS = storm.kill_count(30)
pytestmark = [pytest.mark.e2e, storm.time_limit(KILLS)]
IN_FLIGHT = 4


def test_kill_9_at_random_moments_never_loses_or_doubles_an_input(
    tmp_path: Path, sandbox: SandboxServer, record_property: Callable[[str, object], None]
) -> None:
    rng = storm.seeded(record_property)
    first_day = SYSTEM_CLOCK.utcnow().date()  # the storm takes minutes under load: it may cross midnight UTC
    # A cap that the worst case just fits: every kill costs at most what was in flight, and the journal
    # counts those requests as paid, so reaching the cap would mean a payment counted beyond that bound.
    budget = {"max_images_per_day": INPUTS + KILLS * IN_FLIGHT}
    config = write_config(
        tmp_path,
        sandbox.base_url,
        api={"max_in_flight_images": IN_FLIGHT},
        inbox={"settle_s": 0.2},
        extra={"budget": budget},
    )
    names = [f"in-{number:03d}.jpg" for number in range(INPUTS)]
    originals = storm.drop(tmp_path / "inbox", names)

    kills = storm.kill_at_random(config, sandbox, rng, KILLS)
    storm.run_to_the_end(config, INPUTS)

    expected_outbox = sorted(f"in-{n:03d}.poster.1.{ext}" for n in range(INPUTS) for ext in ("json", "png"))
    sent = storm.tally([r for r in sandbox.received if r.path == "/remix"], tmp_path / "outbox", expected_outbox)
    storm.record(storm.numbers(sent, kills, sandbox.ledger.requests, INPUTS, IN_FLIGHT), record_property)

    storm.check_sent(sent, originals, kills, INPUTS, IN_FLIGHT, sandbox.options.inflight_limit)
    storm.check_disk(tmp_path, originals, expected_outbox)
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spent, unknown = journal.spent_since(first_day), journal.possible_payments()
        # The API's own ledger against the journal's: every image billed was counted (a cut upload or a
        # request a kill caught is counted too, as unknown), and nothing beyond the bound was paid.
        answered = spent.images - unknown.images
        assert INPUTS <= answered <= sandbox.ledger.images <= spent.images <= budget["max_images_per_day"]
        assert sandbox.ledger.requests - INPUTS <= KILLS * IN_FLIGHT
        counts = journal.counts()
        assert (counts["done"], counts["claimed"], counts["failed"], counts["duplicate"]) == (INPUTS, 0, 0, 0)
        assert journal.job_counts()["written"] == INPUTS
        assert journal.unfinished() == []
    finally:
        journal.close()
    assert kills.landed_in_work(INPUTS) >= 10, "kills must land while work remains; shorten WORK_KILL_S"
