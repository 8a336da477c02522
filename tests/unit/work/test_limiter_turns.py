"""The in-flight limiter wakes the first in line when a place frees, not every worker waiting for one."""

from __future__ import annotations

import threading
from collections import Counter

from remixd.clock import Clock
from remixd.work.retry import InflightLimiter
from tests.helpers import wait_for

WAITERS = 5


class CountingClock(Clock):
    """Real time; counts, per thread, the waits that ended because the thread was woken (not timed out)."""

    def __init__(self) -> None:
        self.woken: Counter[int] = Counter()
        self.waits: Counter[int] = Counter()  # every wait that ended, woken or timed out

    def wait(self, waitable: threading.Event | threading.Condition, timeout: float | None) -> bool:
        woken = super().wait(waitable, timeout)
        me = threading.get_ident()
        self.woken[me] += woken
        self.waits[me] += 1
        return woken


def test_a_freed_place_wakes_the_first_in_line_and_then_the_next_not_every_waiter() -> None:
    # Woken all at once, every worker waiting for a place took the lock and the GIL in turn to find it was
    # not its turn, and the one whose turn it was waited among them.
    clock, stop = CountingClock(), threading.Event()
    limiter = InflightLimiter(1, clock)
    assert limiter.acquire(1, stop)
    waiters = [threading.Thread(target=limiter.acquire, args=(1, stop, 30.0), daemon=True) for _ in range(WAITERS)]
    for thread in waiters:
        thread.start()
    wait_for(lambda: len(clock.waits) == WAITERS, timeout=5, message="every waiter waiting")
    before_woken, before_waits = sum(clock.woken.values()), dict(clock.waits)
    limiter.release(1)
    # Every waiter looks again within its stop check's slice (POLL_S) either way: by then every wake-up the
    # release caused has happened.
    wait_for(lambda: limiter.in_flight == 1, timeout=5, message="the first in line to take the place")
    wait_for(
        lambda: all(clock.waits[ident] > count for ident, count in before_waits.items()),
        timeout=5,
        message="every waiter to have looked again",
    )
    woken = sum(clock.woken.values()) - before_woken
    stop.set()
    for thread in waiters:
        thread.join(timeout=5)
    assert woken <= 2  # the first in line, and the next once it left the line (all of them: 2 x WAITERS - 1)
