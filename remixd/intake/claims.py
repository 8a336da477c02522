"""Claims: the journal records a ready file before any work, so repeated events, rescans and restarts never queue
it twice. Claims are made in batches of CLAIM_BATCH, one transaction each; one file the journal cannot hold never
stops the others."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path

from remixd.clock import Clock
from remixd.errors import RemixdError
from remixd.intake import companions
from remixd.intake.inbox import InboxState, IntakeCounters, Ready
from remixd.intake.readiness import file_stat
from remixd.intake.scan import is_ignored
from remixd.journal.records import Candidate, Journal
from remixd.logs import get_logger

log = get_logger(__name__)

CLAIM_BATCH = 256  # claims per transaction, and files a scan claims per step: a few milliseconds of the loop


def claim(
    journal: Journal, clock: Clock, counters: IntakeCounters, ready: Iterable[Ready], *, waited: bool = False
) -> int:
    """Claim in batches of CLAIM_BATCH (one transaction each); the number of new claims. What is claimed
    waits in the journal for `Backlog.take`. `waited`: these files have had their companion_wait_s already."""
    claimed = 0
    pending = iter(ready)
    while chunk := list(itertools.islice(pending, CLAIM_BATCH)):
        batch: list[tuple[InboxState, Candidate, bool]] = []
        now = clock.utcnow()
        finder = companions.Finder()
        for state, relpath, info, missed in chunk:
            unannounced = missed
            found: tuple[tuple[str, str], ...] = ()
            if state.config.companions != "off":
                path = state.config.path / relpath
                found = finder.read(path)
                if not found and state.config.companions == "required":
                    continue  # never sent without one: claimed when its companion arrives
                if not found and not waited and not _waited_enough(state, info, clock):
                    _wait_for_companion(state, path, unannounced)
                    continue
                if state.companion_wait is not None and path in state.companion_wait:  # claimed before its wait ended
                    state.companion_wait.forget(path)
                    unannounced = path in state.unannounced  # its mark from when its wait began
                    state.unannounced.discard(path)
            # The scan already kept only files and links: its lstat is the answer. A file that settled after
            # an event is looked at again: the scan's filters never saw it.
            seen = info or (None if is_ignored(relpath, state.config) else file_stat(state.config.path / relpath))
            if seen is None:
                continue
            identity = (seen.st_dev, seen.st_ino) if seen.st_ino else None  # 0 where the platform has no inodes
            candidate = Candidate(state.root, relpath, seen.st_size, seen.st_mtime_ns, now, found, identity)
            batch.append((state, candidate, unannounced))
        for (state, _candidate, unannounced), input_id in zip(batch, _claim_batch(journal, batch), strict=True):
            if input_id is not None:
                counters.claimed[state.root] += 1
                counters.missed_by_events += unannounced
                claimed += 1
    return claimed


def _waited_enough(state: InboxState, info: os.stat_result | None, clock: Clock) -> bool:
    """`companions: optional`: a file a scan finds unchanged for settle_s + companion_wait_s already has had
    its wait (a backlog is not held back); one that settled after an event waits companion_wait_s from now."""
    inbox = state.config
    return info is not None and info.st_mtime < clock.wall() - inbox.settle_s - inbox.companion_wait_s


def _wait_for_companion(state: InboxState, path: Path, unannounced: bool) -> None:
    tracker = state.companion_wait
    if tracker is not None and path not in tracker:  # a rescan finding it again does not restart its wait
        tracker.touch(path)
        if unannounced:  # the events missed it: counted when it is claimed, after its wait
            state.unannounced.add(path)


def _claim_batch(journal: Journal, batch: list[tuple[InboxState, Candidate, bool]]) -> list[int | None]:
    candidates = [candidate for _state, candidate, _unannounced in batch]
    try:
        return journal.claim_many(candidates)
    except (RemixdError, ValueError) as error:
        # One candidate the journal cannot hold must not stop the others (nor the daemon): one by one.
        log.warning("remixd.intake.batch_refused", error=str(error), files=len(candidates))
    ids: list[int | None] = []
    for candidate in candidates:
        try:
            ids += journal.claim_many([candidate])
        except (RemixdError, ValueError) as error:
            log.error(
                "remixd.input.unclaimable",
                relpath=candidate.relpath,
                error=str(error),
                hint="rename the file to a plain name; remixd leaves it where it is",
            )
            ids.append(None)
    return ids
