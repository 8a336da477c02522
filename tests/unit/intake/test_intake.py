"""The intake as a whole: scan -> settle -> claim against real folders and the real journal, on a fake clock.

Watchers are left out (`start(watch=False)`, as `remixd once` runs): their events are tested in test_watch.py.
The fake clock decides when a file has been quiet for `settle_s`, so no test waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.config.model import Config
from remixd.intake.claims import CLAIM_BATCH
from remixd.intake.loop import MISSING_RETRY_S, Intake
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, make_image, write_config

SETTLE_S = 2.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, None, inbox={"settle_s": SETTLE_S}))


@pytest.fixture
def clock() -> FakeClock:
    # Wall time a year before the files' mtimes: nothing looks quiet for long already, so settling decides.
    return FakeClock(start=datetime(2025, 1, 1, tzinfo=UTC))


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.sqlite3", clock)
    yield opened
    opened.close()


def claimed(journal: SqliteJournal) -> list[str]:
    """What the intake claimed so far: it waits in the journal (intake.backlog takes it from there)."""
    return sorted(record.relpath for record in journal.unfinished())


def test_a_file_is_claimed_once_it_has_been_quiet_for_settle_s_and_only_once(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    make_image(tmp_path / "inbox/a.jpg")
    intake = Intake(config.inboxes, journal, clock=clock)
    intake.start(watch=False)
    assert intake.step(timeout=0) == 0 and intake.pending == 1  # the scan saw it, still settling
    clock.advance(SETTLE_S - 0.1)
    assert intake.step(timeout=0) == 0
    clock.advance(0.2)
    assert intake.step(timeout=0) == 1
    assert claimed(journal) == ["a.jpg"] and intake.pending == 0
    clock.advance(config.inboxes[0].rescan_s + 1)  # a rescan sees the file again: the journal says it is taken
    assert [intake.step(timeout=0), intake.step(timeout=0)] == [0, 0]
    assert intake.counters.claimed == {str(tmp_path / "inbox"): 1}


def test_a_file_still_being_written_waits_until_it_stops_changing(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    whole = make_image(tmp_path / "whole.jpg").read_bytes()
    path = tmp_path / "inbox/slow.jpg"
    path.write_bytes(whole[: len(whole) // 2])  # the copier's first half
    intake = Intake(config.inboxes, journal, clock=clock)
    intake.start(watch=False)
    clock.advance(SETTLE_S - 0.5)
    path.write_bytes(whole)  # and the rest
    intake.events.put((0, path))  # what the watcher would report
    clock.advance(1.0)  # past the first window, but not quiet since the write
    assert intake.step(timeout=0) == 0
    clock.advance(SETTLE_S)
    assert intake.step(timeout=0) == 1
    assert claimed(journal) == ["slow.jpg"]


def test_a_missing_inbox_is_paused_and_reported_not_read_as_empty(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    config = load_config(write_config(tmp_path, None, inbox={"settle_s": SETTLE_S, "path": "./later"}))
    intake = Intake(config.inboxes, journal, clock=clock)
    intake.start(watch=False)
    assert intake.step(timeout=0) == 0  # the scan begun by start() finds the inbox missing
    assert intake.paused == [f"inbox {tmp_path / 'later'}: inbox {tmp_path / 'later'} is missing or not a folder"]
    assert intake.modes == {str(tmp_path / "later"): "paused"}
    clock.advance(MISSING_RETRY_S)
    assert intake.step(timeout=0) == 0 and intake.paused  # still missing: still paused, nothing claimed


def test_a_file_the_events_missed_counts_once_however_many_rescans_see_it(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    intake = Intake(config.inboxes, journal, clock=clock)
    intake.start(watch=False)  # no watcher: no event will announce what arrives now
    assert intake.step(timeout=0) == 0  # the start-up scan: an empty inbox
    make_image(tmp_path / "inbox/early.jpg")
    make_image(tmp_path / "inbox/late.jpg")
    rescan_s = config.inboxes[0].rescan_s
    for _ in range(4):  # settling, claimed, then still in the inbox while it is being worked on
        clock.advance(rescan_s + 1)
        while intake.step(timeout=0):
            pass
    assert claimed(journal) == ["early.jpg", "late.jpg"]
    assert intake.counters.missed_by_events == 2


def test_step_waits_on_the_clock_until_a_file_is_due_and_claims_it(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    """The wait for the next due check goes through the Clock: the fake clock's wait is what lets the file
    settle, with no sleep and no advance by the test."""
    make_image(tmp_path / "inbox/a.jpg")
    intake = Intake(config.inboxes, journal, clock=clock)
    intake.start(watch=False)
    assert intake.step(timeout=0) == 0 and intake.pending == 1  # the scan saw it, still settling
    assert intake.step(timeout=3600) == 1
    assert clock.waits == [pytest.approx(SETTLE_S)]  # waited exactly until the file was due, not the timeout
    assert claimed(journal) == ["a.jpg"]


def test_an_event_ends_the_wait_at_once_on_the_real_clock(config: Config, tmp_path: Path) -> None:
    """README: remixd reacts within milliseconds of an event. A wait of an hour ends when the event comes: the
    loop waits on it, it does not poll."""
    journal = SqliteJournal(tmp_path / "real.sqlite3", Clock())
    try:
        intake = Intake(config.inboxes, journal, clock=Clock())
        intake.start(watch=False)
        assert intake.step(timeout=0) == 0  # the start-up scan: nothing there
        returned = threading.Event()

        def step_then_return() -> None:
            intake.step(timeout=3600)
            returned.set()

        waiter = threading.Thread(target=step_then_return, daemon=True)
        waiter.start()
        intake.wake()
        assert returned.wait(timeout=30), "step() went on waiting after an event"
    finally:
        journal.close()


def test_a_head_start_claims_a_first_slice_and_the_scan_after_arming_misses_nothing(
    config: Config, journal: SqliteJournal, tmp_path: Path
) -> None:
    clock = FakeClock(start=datetime.now(UTC) + timedelta(hours=1))  # every file has long been quiet
    for number in range(CLAIM_BATCH + 10):
        (tmp_path / f"inbox/{number:04d}.jpg").write_bytes(b"jpeg")
    intake = Intake(config.inboxes, journal, clock=clock)
    assert intake.head_start() == CLAIM_BATCH  # at work before the watchers are armed
    (tmp_path / "inbox/late.jpg").write_bytes(b"jpeg")  # dropped after the head start, before any watch
    intake.start(watch=False)
    while intake.scanning:
        intake.step(timeout=0)
    assert len(claimed(journal)) == CLAIM_BATCH + 11  # each once, the late one too
    assert (intake.progress.claimed, intake.progress.files) == (CLAIM_BATCH + 11, CLAIM_BATCH + 11)
