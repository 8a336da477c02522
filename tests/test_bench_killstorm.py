"""Bench figure 7 counts the journal's spend as the tests do: on every UTC day the storm ran."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from bench.killstorm import journal_counted
from remixd.journal.records import JobSpec
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from tests.helpers import FakeClock


def test_a_storm_across_midnight_utc_counts_the_spend_of_both_days(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    clock = FakeClock(datetime.combine(today, time(), tzinfo=UTC) - timedelta(seconds=1))  # a second to midnight
    journal = SqliteJournal(tmp_path / JOURNAL_NAME, clock)
    try:
        for name in ("before-midnight.jpg", "after-midnight.jpg"):
            input_id = journal.claim("/srv/inbox", name, 1, 1)
            assert input_id is not None
            [job] = journal.add_jobs(input_id, [JobSpec("poster", "f1", "/remix", {}, 1, 0.08)])
            journal.start_submit(job.id)
            journal.record_answer(job.id, {"data": [{"url": "http://u/1"}]})
            clock.advance(2)
    finally:
        journal.close()

    counted = journal_counted(tmp_path, today - timedelta(days=1))

    assert (counted.images, counted.usd) == (2, 0.16)  # today's alone is 1 image
