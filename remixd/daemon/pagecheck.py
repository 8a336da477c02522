"""The journal's whole-file check for damaged pages, run beside the work once the daemon is ready.

A damaged page found while working would fail every input that touches it, so `run` and `once` read every page
(README "A damaged journal is a clear stop"). That takes seconds for a year of journal, more from a cold disk, and
READY=1 waits for no more than the journal open and the watchers armed (README "A million files"): the check runs
on a thread of its own after it, on a read-only connection (the workers keep the journal's lock and its write
lock), and reads in slices with a pause as long after each, so the workers' disk and CPU come first. Damage found
stops the daemon as SIGTERM does, and it exits 3 with the message a start that found it gave.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from remixd.clock import Clock
from remixd.errors import JournalError
from remixd.journal.sqlite import SqliteJournal
from remixd.logs import get_logger

log = get_logger(__name__)

SLICE_S = 0.05  # the check reads for this long, then waits as long


class PageCheck:
    """One check of the journal's pages on its own thread; the daemon starting to stop (`stopping`) cancels it."""

    def __init__(
        self, journal: SqliteJournal, clock: Clock, *, stopping: threading.Event, on_damage: Callable[[], None]
    ) -> None:
        self._journal = journal
        self._clock = clock
        self._stopping = stopping
        self._on_damage = on_damage  # called on the check's thread once `damage` is set
        self._thread: threading.Thread | None = None
        self._resumed = 0.0  # when the current slice began
        self.damage: JournalError | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="remixd-page-check")
        self._thread.start()

    def join(self) -> None:
        """Until the check has ended: run to its end, or cancelled by the daemon stopping."""
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        started = self._resumed = self._clock.monotonic()
        try:
            finished = self._journal.check_pages(self._step)
        except JournalError as error:
            self.damage = error
            log.error(
                "remixd.journal.damaged",
                error=error.message,
                hint=error.hint,
                action="stopping: the inputs in flight finish, no new one is taken",
            )
            self._on_damage()
            return
        if finished:
            log.info("remixd.journal.checked", duration_s=round(self._clock.monotonic() - started, 2))

    def _step(self) -> bool:
        """Called by SQLite as the check goes: pauses after each slice; True cancels."""
        if self._clock.monotonic() - self._resumed >= SLICE_S:
            self._clock.wait(self._stopping, SLICE_S)
            self._resumed = self._clock.monotonic()
        return self._stopping.is_set()
