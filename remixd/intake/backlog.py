"""What is claimed and waits for a worker lives in the journal, not in memory (README "A million files").

The queue the workers take from holds a few dozen inputs; `Backlog.take` tops it up from the journal's
unfinished inputs in claim order, from a cursor, so a million waiting files cost a million rows on disk and
no Python object each. The cursor starts at zero, so what a previous run left unfinished is resumed first,
in the order it was claimed, and every claim made since follows it exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from remixd.config.model import InboxConfig
from remixd.journal.records import Journal
from remixd.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Claimed:
    input_id: int
    inbox: InboxConfig


@dataclass
class ScanProgress:
    """Where the scan of the inboxes is: `remixd status` and the review page read it from status.json."""

    running: bool = False
    files: int = 0  # settled files found so far (each claimed now, or claimed before)
    claimed: int = 0  # of those, new claims
    started_at: float | None = None  # wall clock
    finished_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class Backlog:
    def __init__(self, journal: Journal, inboxes: Sequence[InboxConfig]) -> None:
        self._journal = journal
        self.inboxes = inboxes  # replaced by a reload
        self._after = 0  # the last input id handed out
        self._unknown: set[str] = set()
        self.exhausted = False  # the last look found nothing more: the journal holds nothing unqueued

    def grew(self, claimed: int) -> None:
        """`claimed` new claims were made: there is something to take again."""
        if claimed:
            self.exhausted = False

    def take(self, limit: int) -> list[Claimed]:
        """Up to `limit` unfinished inputs not handed out before, oldest claim first, each with its inbox's
        settings today. An input whose inbox is no longer configured stays in the journal until it is back."""
        rows = self._journal.unfinished_after(self._after, limit)
        self.exhausted = len(rows) < limit
        by_path = {str(inbox.path): inbox for inbox in self.inboxes}
        taken = []
        for input_id, inbox in rows:
            self._after = input_id
            known = by_path.get(inbox)
            if known is not None:
                taken.append(Claimed(input_id, known))
            elif inbox not in self._unknown:
                self._unknown.add(inbox)
                log.warning(
                    "remixd.recover.unknown_inbox",
                    inbox=inbox,
                    hint="its unfinished inputs stay in the journal; add the inbox back to the config to finish them",
                )
        return taken
