"""Wake-ups from another process: `remixd reroll` of an input kept in its inbox (README "Commands").

The kept file does not change, so no event announces it and its kept row stops every sighting of it. The command
records the reroll in the journal first, then touches a file in `state_dir/wake/`, which a running daemon
watches (inotify: nothing to do while idle). The daemon then claims, at once, the kept files that rerolls wait
for; the journal lets one claim of each through. A daemon that missed the touch claims them at its next scan.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from remixd.intake.inbox import InboxState, Ready
from remixd.journal.records import Journal
from remixd.logs import get_logger

log = get_logger(__name__)

WAKE_FOLDER = "wake"  # in state_dir
REROLLS = "rerolls"  # the file `remixd reroll` touches there
WAKE_INDEX = -2  # the watcher's events on the intake's queue (inboxes count from 0; -1 is `Intake.wake`)


def poke(state_dir: Path) -> None:
    """Tell a running daemon that rerolls wait (raises OSError when state_dir cannot be written)."""
    folder = state_dir / WAKE_FOLDER
    folder.mkdir(exist_ok=True)
    (folder / REROLLS).touch()


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: queue.Queue[tuple[int, Path]]) -> None:
        self._sink = sink

    def dispatch(self, event: FileSystemEvent) -> None:
        # watchdog's thread: put and return. Any event in the folder is the touch (nothing else writes there).
        self._sink.put((WAKE_INDEX, Path(os.fsdecode(event.src_path))))


class WakeWatcher:
    """Watches `state_dir/wake/` and puts `(WAKE_INDEX, path)` on `sink` for every event there; `due` says one
    came since the last `rerolled`. Without a state_dir (a test's intake) it watches nothing."""

    def __init__(self, state_dir: Path | None, sink: queue.Queue[tuple[int, Path]]) -> None:
        self.folder = None if state_dir is None else state_dir / WAKE_FOLDER
        self._sink = sink
        self._observer: BaseObserver | None = None
        self.due = False

    def rerolled(self, inboxes: Iterable[InboxState], journal: Journal) -> list[Ready]:
        """After a touch: the files of these inboxes that rerolls wait for, ready to claim now (a kept file
        settled long ago, and had its wait for companions then); the journal lets one claim of each through."""
        if not self.due:
            return []
        self.due = False
        by_root = {state.root: state for state in inboxes}
        waiting = sorted(journal.waiting_rerolls())
        return [(by_root[inbox], relpath, None, False) for inbox, relpath in waiting if inbox in by_root]

    def start(self) -> None:
        """Armed on return. A watch that cannot be set up is logged: rerolls of kept inputs then wait for the
        inboxes' next scan (rescan_s), nothing else changes."""
        if self.folder is None:
            return
        observer = Observer()
        observer.name = "remixd-watch-wake"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            observer.schedule(_Handler(self._sink), os.fspath(self.folder), recursive=False)
            observer.start()
        except OSError as error:
            observer.stop()  # its inotify reader may have started with it
            if observer.is_alive():
                observer.join(10.0)
            log.warning(
                "remixd.wake.unwatched",
                folder=str(self.folder),
                error=str(error),
                hint="rerolls of kept inputs are sent at the next rescan (rescan_s) instead of at once",
            )
            return
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(10.0)  # a bounded wait, as the inboxes' watchers
