"""Keeping a long-running journal small: compaction and incremental vacuum, a bounded batch at a time.

The daemon calls `step()` from its housekeeping. Each batch is one short write transaction, so claims and
answers never wait long behind it; while a backlog of old inputs remains (the first start after an upgrade,
or after keep_days was lowered) a batch runs at every call, otherwise once an hour.
"""

from __future__ import annotations

from datetime import timedelta

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import JournalError
from remixd.journal.sqlite import SqliteJournal
from remixd.logs import get_logger

log = get_logger(__name__)

BATCH = 2_000  # inputs per transaction: about a tenth of a second on a small machine
RECLAIM_PAGES = 4_096  # 16 MiB of free pages given back per step
IDLE_S = 3_600.0  # how often to look again once nothing is left to compact


class Upkeep:
    def __init__(
        self,
        journal: SqliteJournal,
        keep_days: int,
        clock: Clock = SYSTEM_CLOCK,
        *,
        batch: int = BATCH,
    ) -> None:
        self._journal = journal
        self._keep = timedelta(days=keep_days)
        self._batch = batch
        self._clock = clock
        self._next = 0.0

    def step(self) -> int:
        """Compact one batch when due; the number of inputs compacted."""
        if self._clock.monotonic() < self._next:
            return 0
        before = self._clock.utcnow() - self._keep
        try:
            compacted = self._journal.compact(before, self._batch)
            free = self._journal.reclaim(RECLAIM_PAGES)
        except JournalError as error:  # e.g. a full disk: the journal stays as it is, the daemon goes on
            log.warning("remixd.journal.compact_failed", error=error.message, hint=error.hint)
            self._next = self._clock.monotonic() + IDLE_S
            return 0
        self._next = self._clock.monotonic() + (0.0 if compacted == self._batch or free else IDLE_S)
        if compacted:
            log.info("remixd.journal.compacted", inputs=compacted, finished_before=before.isoformat(), free_pages=free)
        return compacted
