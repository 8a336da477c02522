"""The lock around the journal's one connection: re-entrant, first come first served, and urgent takers first.

Two writes are urgent: a request's "sent" row (its place at the API stands idle until it is written and the
request leaves) and an accepted generation's id (until it is committed, a crash sends the request again and
pays twice). With a plain lock they waited behind whichever of the other writers got the lock first (an
answer's record, a disposal, a written result's row): 2-3 ms on average, 7-9 ms at p90, beside a hold of
0.3-0.9 ms (python -m bench --only async_v2, two CPU-bound processes beside it). Here they wait only for the
holder of the moment. An urgent taker never waits long: there is at most one per job in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._urgent_turn = threading.Condition(self._guard)
        self._turn = threading.Condition(self._guard)
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        """Hold the lock for the block; `urgent` goes before every taker that is not. A thread that holds it
        already takes it again at once (a read inside a write)."""
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
            else:
                if urgent:
                    self._urgent_waiting += 1
                    try:
                        while self._owner is not None:
                            self._urgent_turn.wait()
                    finally:
                        self._urgent_waiting -= 1
                else:
                    while self._owner is not None or self._urgent_waiting:
                        self._turn.wait()
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._guard:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    # Condition.notify wakes the longest waiter: each kind is served in the order it came.
                    (self._urgent_turn if self._urgent_waiting else self._turn).notify()
