"""Keeping a long-running journal small: compaction and incremental vacuum, a bounded batch at a time.

The daemon calls `step()` from its housekeeping. Each batch (inputs compacted, past days' billed spend summed
into its days) is a short write transaction of its own, so claims and answers never wait long behind it; while
a backlog remains (the first start after an upgrade, or after keep_days was lowered) a batch runs at every call,
otherwise once an hour. How many inputs a batch compacts follows how long the last full one held the write
lock: 2,000 held it about 3 s on a loaded machine, and every worker recording a sent request waited that long.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import JournalError
from remixd.journal.sqlite import SqliteJournal
from remixd.logs import get_logger

log = get_logger(__name__)

BATCH = 2_000  # the most inputs one transaction takes
TARGET_S = 0.1  # how long one batch should hold the journal's write lock
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
        self._size = batch  # this batch's inputs, from how long the last full one took
        self._clock = clock
        self._next = 0.0

    def step(self) -> int:
        """Compact one batch when due; the number of inputs compacted."""
        if self._clock.monotonic() < self._next:
            return 0
        now = self._clock.utcnow()
        before = now - self._keep
        try:
            started = self._clock.monotonic()
            compacted = self._journal.compact(before, self._size)
            full = compacted == self._size  # a short batch ran out of inputs: its time says nothing of a full one
            if full:
                self._size = self._fitted(self._clock.monotonic() - started)
            folded = self._journal.fold_spend(now.astimezone(UTC).date(), self._batch)  # a row each: quick
            free = self._journal.reclaim(RECLAIM_PAGES)
        except JournalError as error:  # e.g. a full disk: the journal stays as it is, the daemon goes on
            log.warning("remixd.journal.compact_failed", error=error.message, hint=error.hint)
            self._next = self._clock.monotonic() + IDLE_S
            return 0
        more = full or folded == self._batch or free
        self._next = self._clock.monotonic() + (0.0 if more else IDLE_S)
        if compacted or folded:
            log.info(
                "remixd.journal.compacted",
                inputs=compacted,
                finished_before=before.isoformat(),
                spend_rows_summed=folded,
                free_pages=free,
            )
        return compacted

    def _fitted(self, took_s: float) -> int:
        """The next batch's inputs, to hold the write lock about TARGET_S at the pace of the last full one."""
        fitted = self._batch if took_s <= 0 else round(self._size * TARGET_S / took_s)
        return max(1, min(self._batch, fitted))
