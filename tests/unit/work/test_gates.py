"""Gates: every wait a worker makes is cut into beating slices and gives way to a stop, on a fake clock."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from remixd.config.state_values import BudgetConfig
from remixd.errors import JournalError, JournalUnwritable, OutputError, Stopped
from remixd.journal.sqlite import SqliteJournal
from remixd.work.budget import Budget
from remixd.work.gates import (
    JOURNAL_AFTER_STOP_S,
    JOURNAL_RETRY_MAX_S,
    JOURNAL_RETRY_S,
    OUTPUT_RETRY_LIMIT_S,
    OUTPUT_RETRY_MAX_S,
    WAIT_SLICE_S,
    Gates,
)
from remixd.work.retry import InflightLimiter, Pause
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def beats() -> list[float]:
    return []


@pytest.fixture
def gates(tmp_path: Path, clock: FakeClock, beats: list[float]) -> Gates:
    journal = SqliteJournal(tmp_path / "journal.sqlite3", clock)
    return Gates(
        threading.Event(),
        Pause(clock),
        Pause(clock),
        InflightLimiter(4, clock),
        Budget(BudgetConfig(), journal, clock),
        clock,
        beat=lambda: beats.append(clock.now),
    )


def test_an_hour_of_backoff_beats_every_slice_and_takes_no_real_time(
    gates: Gates, clock: FakeClock, beats: list[float]
) -> None:
    assert gates.sleep(3600.0) is False  # not stopping: the caller tries again
    assert clock.now == pytest.approx(3600.0)
    assert len(beats) >= 3600.0 / WAIT_SLICE_S  # the watchdog hears the worker all the way through
    assert max(b - a for a, b in itertools.pairwise(beats)) <= WAIT_SLICE_S + 1e-9


def test_a_stop_ends_a_backoff_at_once(gates: Gates, clock: FakeClock) -> None:
    gates.stop.set()
    assert gates.sleep(3600.0) is True
    assert clock.now == 0.0


def test_a_blocked_output_is_retried_with_doubling_waits_up_to_the_cap(gates: Gates, clock: FakeClock) -> None:
    failures = iter(range(9))
    started: list[float] = []

    def write() -> str:
        started.append(clock.now)
        if next(failures, None) is not None:
            raise OutputError("cannot write outbox/a.png: No space left on device", "free space")
        return "written"

    assert gates.retry_output(write) == "written"
    waits = [round(b - a, 6) for a, b in itertools.pairwise(started)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, OUTPUT_RETRY_MAX_S, OUTPUT_RETRY_MAX_S, OUTPUT_RETRY_MAX_S]


def test_a_blocked_output_gives_way_to_a_stop(gates: Gates) -> None:
    def write() -> str:
        gates.stop.set()
        raise OutputError("cannot write outbox/a.png: Read-only file system", "remount it")

    with pytest.raises(Stopped):
        gates.retry_output(write)


def test_an_output_blocked_past_the_bound_is_given_up_with_its_reason(gates: Gates, clock: FakeClock) -> None:
    def write() -> str:
        raise OutputError("cannot write outbox/a.png: File name too long", "choose shorter folders")

    with pytest.raises(OutputError, match="File name too long"):
        gates.retry_output(write)
    assert OUTPUT_RETRY_LIMIT_S - OUTPUT_RETRY_MAX_S <= clock.now <= OUTPUT_RETRY_LIMIT_S


def test_an_answer_the_journal_refuses_is_kept_and_written_again_until_it_is_taken(
    gates: Gates, clock: FakeClock, beats: list[float]
) -> None:
    tries: list[float] = []

    def record() -> str:
        tries.append(clock.now)
        if len(tries) <= 8:
            raise JournalUnwritable("cannot write the journal: database or disk is full", "free space")
        return "journalled"

    with capture_logs() as logs:
        assert gates.retry_journal(record) == "journalled"
    waits = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert waits == pytest.approx([JOURNAL_RETRY_S * 2**n for n in range(6)] + [JOURNAL_RETRY_MAX_S] * 2)
    assert max(b - a for a, b in itertools.pairwise(beats)) <= WAIT_SLICE_S + 1e-9
    assert [entry["event"] for entry in logs] == ["remixd.journal.answer_kept", "remixd.journal.answer_written"]


def test_a_stop_waits_a_bounded_time_for_a_refused_answer_then_leaves_it_a_possible_payment(
    gates: Gates, clock: FakeClock
) -> None:
    def refused() -> None:
        raise JournalUnwritable("cannot write the journal: disk I/O error", "check the disk")

    gates.stop.set()
    with capture_logs() as logs, pytest.raises(JournalUnwritable):
        gates.retry_journal(refused)
    assert JOURNAL_AFTER_STOP_S <= clock.now < JOURNAL_AFTER_STOP_S + JOURNAL_RETRY_MAX_S
    assert logs[-1]["event"] == "remixd.journal.answer_lost"


def test_a_state_the_journal_did_not_expect_is_not_retried(gates: Gates, clock: FakeClock) -> None:
    def wrong_state() -> None:
        raise JournalError("job 3 is pending, expected submitting")

    with pytest.raises(JournalError, match="expected submitting"):
        gates.retry_journal(wrong_state)
    assert clock.now == 0.0
