"""What every worker shares, and how a worker waits on it without going deaf to a stop or silent to systemd.

Every wait here is cut into slices: between slices the stop switch is checked and the worker's heartbeat is
sent, so a long backoff, pause or full disk still beats, and only a truly stuck worker stops beating.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from remixd.clock import Clock
from remixd.errors import JournalUnwritable, OutputError, Stopped
from remixd.logs import get_logger
from remixd.work.budget import Budget
from remixd.work.retry import InflightLimiter, Pause

log = get_logger(__name__)

T = TypeVar("T")
WAIT_SLICE_S = 0.25  # waits are cut into slices: a stop is noticed, and the worker beats, between them
OUTPUT_RETRY_MAX_S = 60.0  # a full disk or a read-only folder is retried this often at most
# An output still blocked after this long is given up: a name the file system refuses ("File name too long")
# never gets better, and a paid result must land or fail, never wait forever (README "How remixd keeps
# files and money safe").
OUTPUT_RETRY_LIMIT_S = 3600.0
JOURNAL_RETRY_S = 0.5  # an answer the journal refused is written again after this, doubling up to the next
JOURNAL_RETRY_MAX_S = 30.0
JOURNAL_AFTER_STOP_S = 30.0  # a stop waits this long for such an answer to be written; then it is a possible payment


def _no_heartbeat() -> None:
    return None


@dataclass
class Gates:
    """What every worker shares: the stop switch, the pauses, the limiter and the budget.

    `beat` is the worker's heartbeat (systemd's watchdog is fed only while every busy worker beats).
    """

    stop: threading.Event
    auth: Pause
    budget_pause: Pause
    limiter: InflightLimiter
    budget: Budget
    clock: Clock
    beat: Callable[[], None] = _no_heartbeat
    space: Pause = field(default_factory=Pause)  # the state fs is nearly full (daemon.space)

    @property
    def pauses(self) -> tuple[Pause, Pause, Pause]:
        """What holds every submission back: a rejected key, the day's budget, a nearly full state fs."""
        return (self.auth, self.budget_pause, self.space)

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds`, beating; True when the daemon is stopping (the caller gives up)."""
        deadline = self.clock.monotonic() + seconds
        while True:
            self.beat()
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return self.stop.is_set()
            if self.clock.wait(self.stop, min(remaining, WAIT_SLICE_S)):
                return True

    def wait_for(self, attempt: Callable[[float], bool]) -> bool:
        """Call `attempt(seconds)` (a wait that gives up after `seconds`) until it succeeds, beating between
        tries; False when the daemon is stopping first."""
        while not attempt(WAIT_SLICE_S):
            if self.stop.is_set():
                return False
            self.beat()
        return True

    def retry_output(self, action: Callable[[], T]) -> T:
        """Disk full or folder not writable: wait and try again for up to OUTPUT_RETRY_LIMIT_S, then raise
        the last OutputError (the caller fails the job or keeps the input where it is)."""
        delay, told = 1.0, False
        give_up = self.clock.monotonic() + OUTPUT_RETRY_LIMIT_S
        while True:
            try:
                return action()
            except OutputError as error:
                if not told:
                    log.error("remixd.output.blocked", error=error.message, hint=error.hint)
                    told = True
                if self.clock.monotonic() + delay > give_up:
                    log.error("remixd.output.given_up", error=error.message, hint=error.hint)
                    raise
                if self.sleep(delay):
                    raise Stopped from None
                delay = min(delay * 2, OUTPUT_RETRY_MAX_S)

    def retry_journal(self, action: Callable[[], T]) -> T:
        """An answer the journal cannot take now (a full state fs, an I/O error) is held here, in memory, and
        written again until it is: dropped, it left its job `submitting`, and the restart sent it again and paid
        twice. A stop does not cut the wait short for JOURNAL_AFTER_STOP_S; past that the error is raised and
        the job stays what the journal says, a request sent and never answered (api.after_crash decides)."""
        delay, told, stopped_at = JOURNAL_RETRY_S, False, None
        never = threading.Event()  # waits between tries are not cut short by a stop
        while True:
            try:
                result = action()
            except JournalUnwritable as error:
                if not told:
                    log.error(
                        "remixd.journal.answer_kept",
                        error=error.message,
                        hint=f"{error.hint}; the answer is kept in memory and written as soon as the journal "
                        "takes it, never sent again",
                    )
                    told = True
                now = self.clock.monotonic()
                if self.stop.is_set():
                    stopped_at = now if stopped_at is None else stopped_at
                    if now - stopped_at >= JOURNAL_AFTER_STOP_S:
                        log.error(
                            "remixd.journal.answer_lost",
                            error=error.message,
                            hint="stopped before the journal took the answer: the request counts as a possible "
                            "payment, and api.after_crash decides at the next start",
                        )
                        raise
                ends = now + delay
                while (remaining := ends - self.clock.monotonic()) > 0:
                    self.beat()
                    self.clock.wait(never, min(remaining, WAIT_SLICE_S))
                delay = min(delay * 2, JOURNAL_RETRY_MAX_S)
                continue
            if told:
                log.info("remixd.journal.answer_written")
            return result
