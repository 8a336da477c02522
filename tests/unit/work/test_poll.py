"""The poll schedule of one generation, once remixd has seen how long generations take."""

from __future__ import annotations

import itertools

import pytest

from remixd.work.poll import PollPacer, PollSettings
from tests.helpers import FakeClock


def polls_until(pacer: PollPacer, end_s: float) -> tuple[float, int]:
    """(when the first poll at or after `end_s` goes out, how many polls that took)."""
    elapsed = 0.0
    for count, wait in enumerate(pacer.waits(), start=1):
        elapsed += wait
        if elapsed >= end_s:
            return elapsed, count
    raise AssertionError("unreachable: the schedule never ends")


@pytest.mark.parametrize("end_s", [0.48, 0.49, 0.5, 0.51])
def test_a_generation_ending_about_when_they_usually_do_is_seen_within_15_ms(end_s: float) -> None:
    # A slot at Ideogram stays idle from a generation's end until remixd sees it: 25 ms of every 500 (polls
    # every 10% of the usual time) cost 5% of the throughput of an async route.
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    for _ in range(10):
        pacer.observe(0.5)
    seen, polls = polls_until(pacer, end_s)
    assert seen - end_s <= 0.015
    assert polls <= 4  # about what 800 polls per 10 s allow at 10 in flight of 0.5 s each


def test_a_slow_generation_is_polled_ever_less_often() -> None:
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    pacer.observe(0.5)
    waits = list(itertools.islice(pacer.waits(), 40))
    assert waits[2:] == sorted(waits[2:])
    assert waits[-1] == 15.0
    assert sum(waits) > 60  # a minute pending costs tens of polls, not thousands
