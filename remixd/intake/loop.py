"""Intake: watchers and scans find candidate files, readiness waits for them to settle, the journal claims them.

Events are hints; the folder is the truth (a missed event costs a wait, never a file): the backlog is scanned at
start, every inbox is rescanned every `rescan_s` and after any watcher trouble or reload, and what a rescan finds
that no event announced is counted. A claim is the journal's, so repeated events, rescans and restarts never queue a
file twice. An inbox that is missing or unmounted is paused and reported, never read as "all files gone".

A scan is walked a slice at a time by `step()`, between events (README "A million files"): a backlog of a
million files neither delays READY=1 nor starves the watchdog, and what it claims waits in the journal.
"""

from __future__ import annotations

import itertools
import os
import queue
from collections.abc import Iterator, Sequence
from pathlib import Path

from remixd.clock import Clock
from remixd.config.companion import is_companion
from remixd.config.model import InboxConfig
from remixd.errors import InboxUnavailable
from remixd.intake import companions
from remixd.intake.backlog import ScanProgress
from remixd.intake.claims import CLAIM_BATCH, claim
from remixd.intake.complete import looks_complete
from remixd.intake.inbox import InboxState, IntakeCounters, Ready
from remixd.intake.readiness import Readiness
from remixd.intake.scan import scan_stat
from remixd.intake.wake import WAKE_INDEX, WakeWatcher
from remixd.intake.watch import EventQueue, Watcher
from remixd.journal.records import Journal
from remixd.logs import get_logger

log = get_logger(__name__)

MISSING_RETRY_S = 10.0  # how often a missing inbox is looked for again


class Intake:
    """Owns the watchers; `step()` turns events, due readiness checks and due rescans into claims."""

    def __init__(
        self,
        inboxes: Sequence[InboxConfig],
        journal: Journal,
        *,
        clock: Clock,
        counters: IntakeCounters | None = None,
        state_dir: Path | None = None,  # its wake folder: `remixd reroll` of kept inputs (intake.wake)
    ) -> None:
        self.events = EventQueue()
        self._journal = journal
        self._clock = clock
        self.inboxes = [
            InboxState(
                inbox,
                index,
                Readiness(inbox.settle_s, clock=clock),
                Readiness(inbox.companion_wait_s, clock=clock) if inbox.companions == "optional" else None,
            )
            for index, inbox in enumerate(inboxes)
        ]
        self.counters = counters or IntakeCounters()  # the builder's, so they outlive a reload's new intake
        self.progress = ScanProgress()  # the latest round of scans
        self._scans: dict[int, Iterator[Ready]] = {}  # inbox index -> its scan, while it runs
        self._watch = True
        self._wake = WakeWatcher(state_dir, self.events)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def head_start(self) -> int:
        """Claim a first slice of each inbox's backlog before the watchers are armed, so that the first request
        need not wait for them (a recursive watch is armed folder by folder: seconds at a million files). The
        scans `start()` begins once they are armed walk every folder again from the top: a file the head start
        passed before its folder was watched is found then. The number claimed."""
        self.progress = ScanProgress(running=True, started_at=self._clock.wall())
        ready: list[Ready] = []
        for state in self.inboxes:
            ready += itertools.islice(self._rescan(state, initial=True), CLAIM_BATCH)
        self.progress.claimed = claim(self._journal, self._clock, self.counters, ready)
        return self.progress.claimed

    def start(self, watch: bool = True) -> None:
        """Arm every watcher first, then begin the scans: a file dropped between the two is seen by both, never
        by none. The scans go on in `step()`; `watch=False` (`remixd once`) scans only: what is there now,
        plus files still settling."""
        self._watch = watch
        if watch:
            self._wake.start()
            for state in self.inboxes:
                self._arm(state)
        for state in self.inboxes:
            self._begin_scan(state, initial=True)

    @property
    def scanning(self) -> bool:
        return bool(self._scans)

    def stop(self) -> None:
        self._wake.stop()
        for state in self.inboxes:
            if state.watcher is not None:
                state.watcher.stop()
                state.watcher = None

    def wake(self) -> None:
        """Make a blocked `step()` return now (signals, reloads)."""
        self.events.put((-1, Path()))

    @property
    def pending(self) -> int:
        """Files seen but not yet settled, or waiting for a companion."""
        return sum(len(state.readiness) + len(state.companion_wait or ()) for state in self.inboxes)

    @property
    def paused(self) -> list[str]:
        return [f"inbox {state.config.path}: {state.missing}" for state in self.inboxes if state.missing]

    @property
    def modes(self) -> dict[str, str]:
        return {
            str(s.config.path): (s.watcher.mode if s.watcher else "scan" if not s.missing else "paused")
            for s in self.inboxes
        }

    def watchers_alive(self) -> bool:
        return all(state.watcher is None or state.watcher.problem is None for state in self.inboxes)

    # -- the loop body ---------------------------------------------------------------------------------------

    def step(self, timeout: float) -> int:
        """Wait up to `timeout` for an event or a due check (not at all while a scan runs), then claim whatever
        is ready and one slice of the running scans; the number of new claims."""
        now = self._clock.monotonic()
        trackers = [s.readiness for s in self.inboxes] + [s.companion_wait for s in self.inboxes if s.companion_wait]
        due = [d for d in (tracker.next_due() for tracker in trackers) if d is not None]
        due += [s.next_rescan for s in self.inboxes if s.index not in self._scans]
        wait = 0.0 if self._scans else max(0.0, min([now + timeout, *due]) - now)
        if wait > 0:
            self._clock.wait(self.events.arrived, wait)  # an event ends the wait at once, as a real wait would
        self.events.arrived.clear()  # before the drain: an event put from here on sets it again
        while True:  # drain: a burst of events costs one pass
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                break
            self._on_event(*item)
        ready: list[Ready] = []
        waited: list[Ready] = []  # waited companion_wait_s for a companion: claimed with or without one
        for state in self.inboxes:
            self._check_health(state)
            if self._clock.monotonic() >= state.next_rescan and state.index not in self._scans:
                self._begin_scan(state)
            ready += [state.let_go(path) for path in state.readiness.pop_ready()]
            if state.companion_wait is not None:
                waited += [state.let_go(path) for path in state.companion_wait.pop_ready()]
        waited += self._wake.rerolled(self.inboxes, self._journal)  # kept files `remixd reroll` asked for
        claimed = claim(self._journal, self._clock, self.counters, ready)
        claimed += claim(self._journal, self._clock, self.counters, waited, waited=True)
        return claimed + self._advance_scans()

    def _on_event(self, index: int, path: Path) -> None:
        if index < 0 or index >= len(self.inboxes):
            self._wake.due |= index == WAKE_INDEX
            return  # a wake-up, or an event from a watcher of a config that was replaced
        state = self.inboxes[index]
        if path == state.config.path or path.is_dir():
            # A folder moved in brings files without events of their own; a vanished inbox shows up here too.
            state.next_rescan = self._clock.monotonic()
            return
        if state.config.companions != "off" and is_companion(path.name):
            # A companion is never an input; its image, if it waits for it, is looked at again once the
            # companion too has been quiet for settle_s (a script may still be writing it).
            for image in companions.images_of(path):
                if state.companion_wait is not None:
                    state.companion_wait.forget(image)
                state.readiness.touch(image)
            return
        state.announced.add(os.fspath(path))
        state.readiness.touch(path)

    # -- scans -----------------------------------------------------------------------------------------------

    def _begin_scan(self, state: InboxState, initial: bool = False) -> None:
        if not self._scans and not self.progress.running:  # a new round of scans (or the head start's)
            self.progress = ScanProgress(running=True, started_at=self._clock.wall())
        state.next_rescan = self._clock.monotonic() + state.config.rescan_s
        self._scans[state.index] = self._rescan(state, initial=initial)

    def _advance_scans(self) -> int:
        """Claim the next CLAIM_BATCH files the running scans find; a scan that runs dry ends its round."""
        ready: list[Ready] = []
        for index, scan in list(self._scans.items()):
            wanted = CLAIM_BATCH - len(ready)
            found = list(itertools.islice(scan, wanted))
            ready += found
            if len(found) < wanted:
                del self._scans[index]
            if len(ready) == CLAIM_BATCH:
                break
        claimed = claim(self._journal, self._clock, self.counters, ready)
        progress = self.progress
        progress.files += len(ready)
        progress.claimed += claimed
        if progress.running and not self._scans:
            progress.running, progress.finished_at = False, self._clock.wall()
            log.info(
                "remixd.scan.finished",
                files=progress.files,
                claimed=progress.claimed,
                duration_s=round(progress.finished_at - (progress.started_at or progress.finished_at), 3),
            )
        return claimed

    def _rescan(self, state: InboxState, initial: bool = False) -> Iterator[Ready]:
        """Files quiet for settle_s already are ready now; others are tracked until they settle. A generator,
        walked a slice at a time by `_advance_scans`."""
        if state.missing:
            return
        settle_s = state.config.settle_s
        horizon = self._clock.wall() - settle_s
        # Readiness holds a file back for a second window when it is empty or looks cut short (a stalled
        # copy); one quiet for longer than both windows gets its answer from prepare.
        second_horizon = horizon - settle_s
        tracked = len(state.readiness) > 0  # the start-up scan of a big backlog skips 20,000 lookups
        # A file that no event announced is one the events missed, counted when its claim is new: one a
        # rescan finds again while it waits or is worked on is claimed already, so it counts once, and
        # nothing is kept per file of the inbox (only of those still settling).
        announced, state.announced = state.announced, set()  # events during the walk land in the new set
        tracked_by = (state.readiness, state.companion_wait or ())  # none gone astray
        state.unannounced = {path for path in state.unannounced if any(path in tracker for tracker in tracked_by)}
        skip_companions = state.config.companions != "off"
        try:
            for name, relpath, info in scan_stat(state.config):
                if skip_companions and is_companion(relpath):
                    continue
                unannounced = not initial and name not in announced and name not in state.announced
                path = Path(name) if tracked or not initial or info.st_mtime >= second_horizon else None
                if path is not None and tracked and path in state.readiness:
                    if info.st_mtime >= second_horizon:
                        continue
                    state.readiness.forget(path)
                    unannounced = path in state.unannounced  # tracked already, by an event or by a rescan
                    state.unannounced.discard(path)
                if info.st_mtime < horizon and (info.st_mtime < second_horizon or looks_complete(Path(name))):
                    yield state, relpath, info, unannounced
                elif path is not None:
                    if unannounced:
                        state.unannounced.add(path)
                    state.readiness.touch(path)
        except InboxUnavailable as error:
            self._pause(state, error.message)

    def _check_health(self, state: InboxState) -> None:
        watcher = state.watcher
        if watcher is not None and watcher.problem is not None:
            log.warning("remixd.watch.restart", inbox=str(state.config.path), problem=watcher.problem)
            watcher.stop()
            state.watcher = None
            self._pause(state, f"watcher {watcher.problem}")
        if self._watch and state.watcher is None and self._clock.monotonic() >= state.next_rescan:
            self._arm(state)

    def _arm(self, state: InboxState) -> None:
        watcher = Watcher(state.config, self.events, state.index)
        try:
            watcher.start()
        except (InboxUnavailable, OSError) as error:
            self._pause(state, getattr(error, "message", str(error)))
            return
        if state.missing:
            log.info("remixd.inbox.resumed", inbox=str(state.config.path))
        state.watcher, state.missing = watcher, None
        state.next_rescan = self._clock.monotonic()  # whatever happened while it was paused, the folder tells

    def _pause(self, state: InboxState, reason: str) -> None:
        if state.missing != reason:
            log.error(
                "remixd.inbox.paused",
                inbox=str(state.config.path),
                reason=reason,
                hint="mount or create the folder; remixd looks for it again every "
                f"{min(MISSING_RETRY_S, state.config.rescan_s):g} s and resumes by itself",
            )
        state.missing = reason
        state.next_rescan = self._clock.monotonic() + min(MISSING_RETRY_S, state.config.rescan_s)
