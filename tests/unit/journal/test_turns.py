"""The journal connection's lock: urgent takers (a sent row, a generation's id) before the others waiting."""

from __future__ import annotations

import threading

from remixd.journal.turns import Turns
from tests.helpers import wait_for


def _taker(turns: Turns, name: str, order: list[str], *, urgent: bool) -> threading.Thread:
    def take() -> None:
        with turns.hold(urgent=urgent):
            order.append(name)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread


def _waiting(condition: threading.Condition) -> int:
    return len(condition._waiters)  # type: ignore[attr-defined]  # who waits, to order the takers


def test_an_urgent_taker_goes_before_those_that_waited_longer() -> None:
    turns, order = Turns(), list[str]()
    with turns.hold():
        first = _taker(turns, "first", order, urgent=False)
        wait_for(lambda: _waiting(turns._turn) == 1, timeout=5)
        second = _taker(turns, "second", order, urgent=False)
        wait_for(lambda: _waiting(turns._turn) == 2, timeout=5)
        urgent = _taker(turns, "urgent", order, urgent=True)
        wait_for(lambda: _waiting(turns._urgent_turn) == 1, timeout=5)
    for thread in (first, second, urgent):
        thread.join(timeout=5)
    assert order == ["urgent", "first", "second"]  # the others in the order they came


def test_the_holder_takes_it_again_and_others_wait_for_its_last_release() -> None:
    turns, order = Turns(), list[str]()
    with turns.hold():
        with turns.hold(urgent=True):
            other = _taker(turns, "other", order, urgent=True)
            wait_for(lambda: _waiting(turns._urgent_turn) == 1, timeout=5)
        order.append("inner released")
    other.join(timeout=5)
    assert order == ["inner released", "other"]
