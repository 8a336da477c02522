"""Claimed inputs whose worker failed, queued again after a backoff that doubles per failure.

Left alone such an input stayed claimed, and never processed, until the next start.
"""

from __future__ import annotations

import threading

from remixd.clock import Clock
from remixd.intake.backlog import Claimed

REQUEUE_S = 5.0  # a failed worker's input is queued again after this, doubling per failure
REQUEUE_MAX_S = 600.0


class Requeue:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._later: list[tuple[float, Claimed]] = []  # (when, input)
        self._failures: dict[int, int] = {}

    def later(self, item: Claimed) -> None:
        with self._lock:
            failures = self._failures[item.input_id] = self._failures.get(item.input_id, 0) + 1
            delay = min(REQUEUE_MAX_S, REQUEUE_S * 2 ** (failures - 1))
            self._later.append((self.clock.monotonic() + delay, item))

    def due(self) -> list[Claimed]:
        now = self.clock.monotonic()
        with self._lock:
            due = [item for when, item in self._later if when <= now]
            self._later = [(when, item) for when, item in self._later if when > now]
        return due
