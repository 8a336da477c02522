"""The daily spending cap: unattended runs stop spending at `budget.max_*_per_day` until the next UTC day.

Spend comes from the journal, which counts every request from the moment it is sent (answered or not: a crash
cannot hide a payment), plus the requests about to be sent, reserved until the journal has recorded them, so
ten workers checking at once cannot overshoot the cap by ten requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

from remixd.clock import Clock
from remixd.config.state_values import BudgetConfig
from remixd.journal.ledger import micros
from remixd.journal.records import Journal, Spend

T = TypeVar("T")
RECORDING_WAIT_S = 0.25  # a check near the cap looks again this often while a request is being journalled


@dataclass(frozen=True)
class Refusal:
    """Why a request may not be sent today, and when the cap lifts (the next UTC midnight)."""

    reason: str
    until: datetime


class Budget:
    def __init__(self, config: BudgetConfig, journal: Journal, clock: Clock) -> None:
        self._config = config
        self._journal = journal
        self._clock = clock
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)  # a request being journalled as sent is recorded
        self._recording = 0
        self._reserved_images = 0
        self._reserved_micros = 0  # USD in integer micro-dollars: reservations come and go all year

    def reconfigure(self, config: BudgetConfig) -> None:
        """New caps from a reload; reservations of requests in flight stay counted."""
        with self._lock:
            self._config = config

    def reserve(self, images: int, usd: float) -> Refusal | None:
        """Reserve one request's worth of the day's budget; a Refusal when it would pass a cap.

        Reservations are kept even without caps, so a reload that adds caps counts what is already in flight.
        """
        with self._lock:
            cap_images, cap_usd = self._config.max_images_per_day, self._config.max_usd_per_day
            if cap_images is not None or cap_usd is not None:
                moment = self._clock.utcnow()
                while True:
                    spent = self._journal.spent(moment.astimezone(UTC).date())
                    reason = None
                    if cap_images is not None and spent.images + self._reserved_images + images > cap_images:
                        reason = f"the daily budget of {cap_images} images is spent ({spent.images} billed today)"
                    elif cap_usd is not None and (
                        micros(spent.usd) + self._reserved_micros + micros(usd) > micros(cap_usd)
                    ):
                        reason = f"the daily budget of ${cap_usd:.2f} is spent (${spent.usd:.2f} billed today)"
                    # A request being journalled may count as spent and still as reserved: before refusing
                    # for the rest of the day, wait until none is, so none is counted twice.
                    if reason is None or self._recording == 0:
                        break
                    self._recorded.wait(RECORDING_WAIT_S)
                if reason is not None:
                    return Refusal(reason, next_utc_midnight(moment))
            self._reserved_images += images
            self._reserved_micros += micros(usd)
            return None

    def sent(self, images: int, usd: float, record: Callable[[], T]) -> T:
        """`record()` journals the reserved request as sent (from then on the journal counts it), then the
        reservation is freed. It runs outside the lock: it waits for the disk, and every other worker's check
        waited with it (python -m bench --only async_v2). Meanwhile a check may count the request twice, as
        journalled and as reserved, so a check that would refuse waits for it (see `reserve`)."""
        with self._lock:
            self._recording += 1
        try:
            return record()
        finally:
            with self._lock:
                self._recording -= 1
                self._reserved_images -= images
                self._reserved_micros -= micros(usd)
                self._recorded.notify_all()

    def release(self, images: int, usd: float) -> None:
        """The request was never sent (a stop, a failed journal write): free its reservation."""
        with self._lock:
            self._reserved_images -= images
            self._reserved_micros -= micros(usd)

    def spent_today(self) -> Spend:
        return self._journal.spent(self._clock.utcnow().astimezone(UTC).date())


def next_utc_midnight(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=UTC)
