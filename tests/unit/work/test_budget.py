"""The daily budget: what the journal billed plus what is reserved in flight, per UTC day, on a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remixd.config.state_values import BudgetConfig
from remixd.journal.records import JobSpec
from remixd.journal.sqlite import SqliteJournal
from remixd.work.budget import Budget
from tests.helpers import FakeClock

LATE = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=LATE)


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.sqlite3", clock)
    yield opened
    opened.close()


def bill(journal: SqliteJournal, name: str, images: int, usd: float) -> None:
    """One request the API answered: what the journal counts as billed today."""
    input_id = journal.claim("/inbox", name, 1, 1)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [JobSpec("poster", "f1", "/remix", {}, images, usd)])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {"data": []}, images=images, cost_usd=usd)


def test_an_image_cap_counts_what_was_billed_and_what_is_in_flight(journal: SqliteJournal, clock: FakeClock) -> None:
    budget = Budget(BudgetConfig(max_images_per_day=4), journal, clock)
    bill(journal, "a.jpg", 2, 0.16)
    assert budget.reserve(1, 0.08) is None  # 2 billed + 1 in flight
    assert budget.reserve(1, 0.08) is None  # 2 billed + 2 in flight: exactly the cap
    refusal = budget.reserve(1, 0.08)
    assert refusal is not None
    assert refusal.reason == "the daily budget of 4 images is spent (2 billed today)"
    assert refusal.until == datetime(2026, 3, 2, tzinfo=UTC)  # the next UTC midnight
    budget.release(1, 0.08)  # one in flight was not billed after all: its place is free again
    assert budget.reserve(1, 0.08) is None


def test_the_cap_lifts_at_the_next_utc_day(journal: SqliteJournal, clock: FakeClock) -> None:
    budget = Budget(BudgetConfig(max_usd_per_day=0.16), journal, clock)
    bill(journal, "a.jpg", 2, 0.16)
    refusal = budget.reserve(1, 0.08)
    assert refusal is not None and "$0.16" in refusal.reason
    clock.advance((refusal.until - clock.utcnow()).total_seconds())
    assert budget.reserve(1, 0.08) is None
    assert budget.spent_today().images == 0


def test_ten_workers_at_once_cannot_overshoot_the_cap(journal: SqliteJournal, clock: FakeClock) -> None:
    budget = Budget(BudgetConfig(max_images_per_day=3), journal, clock)
    results: list[bool] = []
    start = threading.Barrier(10)

    def worker() -> None:
        start.wait(5)
        results.append(budget.reserve(1, 0.08) is None)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == [False] * 7 + [True] * 3


def test_a_reload_that_adds_a_cap_counts_what_is_already_in_flight(journal: SqliteJournal, clock: FakeClock) -> None:
    budget = Budget(BudgetConfig(), journal, clock)
    assert budget.reserve(3, 0.24) is None  # no cap: reserved all the same
    budget.reconfigure(BudgetConfig(max_images_per_day=4))
    assert budget.reserve(2, 0.16) is not None
    assert budget.reserve(1, 0.08) is None


def test_a_check_does_not_wait_for_a_request_being_journalled(journal: SqliteJournal, clock: FakeClock) -> None:
    # Journalling a request as sent waits for the disk; under the budget's lock every other worker's check
    # waited with it, and the next requests left that much later.
    budget = Budget(BudgetConfig(max_images_per_day=10), journal, clock)
    assert budget.reserve(1, 0.08) is None
    recording, disk_done = threading.Event(), threading.Event()

    def slow_record() -> None:
        recording.set()
        assert disk_done.wait(10)

    sender = threading.Thread(target=budget.sent, args=(1, 0.08, slow_record))
    sender.start()
    try:
        assert recording.wait(10)
        checked: list[bool] = []
        other = threading.Thread(target=lambda: checked.append(budget.reserve(1, 0.08) is None))
        other.start()
        other.join(5)
        assert checked == [True]
    finally:
        disk_done.set()
        sender.join(10)


def test_a_request_journalled_but_still_reserved_is_not_counted_twice(journal: SqliteJournal, clock: FakeClock) -> None:
    # Between the journal's commit and the reservation's release the request is counted both ways: a check
    # then must wait, not refuse for the rest of the day on a budget that still has room.
    budget = Budget(BudgetConfig(max_images_per_day=2), journal, clock)
    input_id = journal.claim("/inbox", "a.jpg", 1, 1)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [JobSpec("poster", "f1", "/remix", {}, 1, 0.08)])
    assert budget.reserve(1, 0.08) is None
    committed, go_on = threading.Event(), threading.Event()

    def record() -> None:
        journal.start_submit(job.id)
        committed.set()
        assert go_on.wait(10)

    sender = threading.Thread(target=budget.sent, args=(1, 0.08, record))
    sender.start()
    checked: list[bool] = []
    other = threading.Thread(target=lambda: checked.append(budget.reserve(1, 0.08) is None))
    try:
        assert committed.wait(10)
        other.start()
        other.join(0.3)
        assert checked == []  # 1 journalled + 1 reserved (the same request) + 1 asked: it waits
    finally:
        go_on.set()
        sender.join(10)
        other.join(10)
    assert checked == [True]  # 1 spent + 1 asked: within the cap of 2
