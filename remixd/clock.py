"""The one place remixd reads the time or waits for it to pass.

Every part that measures, schedules or waits takes a `Clock` from the composition root (`daemon/`, or
`cli.py` for the one-shot commands), so a test can hand it a fake one and drive a backoff, a drain, a pause
or a hung worker through hours in milliseconds, with the production policy.

- `monotonic()`: seconds for durations and deadlines; never jumps with the wall clock.
- `wall()`: seconds since the epoch, for the status file and HTTP dates (`Retry-After`).
- `utcnow()`: an aware UTC datetime, for the journal's moments and the budget's day.
- `wait(waitable, timeout)`: block on a `threading.Event` or (lock held) a `threading.Condition` for at most
  `timeout` seconds; True when it was set or notified.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, waitable: threading.Event | threading.Condition, timeout: float | None) -> bool:
        return waitable.wait(timeout)


SYSTEM_CLOCK = Clock()  # the default of the leaf parts; the composition root passes its own down
