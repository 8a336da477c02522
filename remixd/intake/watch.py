"""The watch stage: one watchdog observer per inbox feeding a queue.

Events are hints; the folder is the truth. The handler only puts `(index, path)` on a queue and returns
(watchdog calls handlers one at a time on its own thread). The intake decides what a path means: a file
goes to `Readiness.touch`, a folder (a sub-folder that appeared in recursive mode, or the inbox itself when
it vanished) is scanned. The ignore rules and the scan live in `scan.py`, readiness in `readiness.py`, the
choice between native and polling in `detect.py`.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from remixd.intake.detect import MOUNTINFO, Mode, choose_mode, inotify_shortfall, max_user_watches
from remixd.intake.scan import (
    InboxConfig,
    excluded_relpaths,
    inbox_missing,
    is_excluded,
    is_ignored,
)
from remixd.logs import get_logger

log = get_logger(__name__)


def _shorten_move_pairing() -> None:
    """watchdog holds an unpaired IN_MOVED_FROM for 0.5 s, hoping to pair it with an IN_MOVED_TO, and its
    queue is first in, first out: every event behind it waits too. Each input remixd moves to done_dir is
    such an event, so under load a new file was seen 0.45 s late. Pairs arrive microseconds apart from one
    rename, so 20 ms loses nothing; an unpaired half only ever reads as a delete (ignored) or a create
    (a candidate), both harmless here."""
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # another platform, or a watchdog without the grouper: nothing to shorten
        return
    if getattr(InotifyMoveEventGrouper, "delay", None) is not None:
        InotifyMoveEventGrouper.delay = MOVE_PAIRING_S


MOVE_PAIRING_S = 0.02


_shorten_move_pairing()


def _default_observer(mode: Mode, poll_s: float) -> BaseObserver:
    return PollingObserver(timeout=poll_s) if mode == "poll" else Observer()


class EventQueue(queue.Queue[tuple[int, Path]]):
    """The watchers' events: a queue that sets `arrived` on every put, so `Intake.step` waits for the next one
    through the Clock (a test's fake clock drives the wait) and still wakes the moment one comes."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    def _put(self, item: tuple[int, Path]) -> None:
        super()._put(item)
        self.arrived.set()


class _EnqueueHandler(FileSystemEventHandler):
    """Turns watchdog events into `(index, path)` on the sink. Runs on watchdog's thread: filter and put,
    nothing else (no stat, no I/O), so events are never held up behind slow work."""

    def __init__(
        self, inbox: InboxConfig, sink: queue.Queue[tuple[int, Path]], index: int, inbox_gone: threading.Event
    ) -> None:
        self._root = os.path.normpath(inbox.path)
        self._inbox = inbox
        self._recursive = inbox.recursive
        self._sink = sink
        self._index = index
        self._excluded = excluded_relpaths(inbox)
        self._inbox_gone = inbox_gone

    def dispatch(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind == EVENT_TYPE_MOVED:
            path = os.fsdecode(event.dest_path)  # renamed into the inbox, or `x.part` -> `x`
        elif kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED, EVENT_TYPE_ATTRIB):
            path = os.fsdecode(event.src_path)
        elif kind == EVENT_TYPE_DELETED and os.path.normpath(os.fsdecode(event.src_path)) == self._root:
            # The watch is gone with the folder. Wake the service with the inbox itself: its scan raises
            # InboxUnavailable and the inbox is paused, instead of every file counting as deleted.
            self._inbox_gone.set()
            self._sink.put((self._index, Path(self._root)))
            return
        else:
            return
        if event.is_directory and not (self._recursive and kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED)):
            return  # a folder's own modified/attrib events: its files have events of their own
        if not path.startswith(self._root + os.sep):
            return  # the inbox itself, or moved out of it
        relpath = path[len(self._root) + 1 :].replace(os.sep, "/")
        if is_ignored(relpath, self._inbox) or is_excluded(relpath, self._excluded):
            return
        # Blocking put: the sink is unbounded in the service; a full bounded queue must slow watchdog
        # down, not raise here and kill its thread.
        self._sink.put((self._index, Path(path)))


class Watcher:
    """One watchdog observer for one inbox; feeds `(index, path)` into `sink`.

    `start()` returns once the watch is armed (so a scan after it misses nothing) and raises
    `InboxUnavailable` when the inbox is missing. When inotify is out of watches or instances it falls back
    to polling with a warning. `problem` tells the service what went wrong while running.
    """

    def __init__(
        self,
        inbox: InboxConfig,
        sink: queue.Queue[tuple[int, Path]],
        index: int,
        *,
        make_observer: Callable[[Mode, float], BaseObserver] = _default_observer,
        mountinfo: Path = MOUNTINFO,
        max_watches: int | None = None,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.inbox = inbox
        self._sink = sink
        self._index = index
        self._make_observer = make_observer
        self._mountinfo = mountinfo
        self._max_watches = max_user_watches() if max_watches is None else max_watches
        self._stop_timeout_s = stop_timeout_s
        self._observer: BaseObserver | None = None
        self._mode: Mode | None = None
        self._inbox_gone = threading.Event()
        self.fallback_reason: str | None = None

    @property
    def mode(self) -> Mode:
        """ "native" or "poll": the mode in use once started, else the one `start()` would try first."""
        return self._mode if self._mode is not None else choose_mode(self.inbox, self._mountinfo)[0]

    @property
    def problem(self) -> str | None:
        """None while healthy; "missing" once the inbox folder vanished under the watch; "stopped" when
        the observer thread died. Either way: stop(), rescan (pause the inbox if that fails), start()."""
        if self._inbox_gone.is_set():
            return "missing"
        if self._observer is not None and not self._observer.is_alive():
            return "stopped"
        return None

    def start(self) -> None:
        if self._observer is not None:
            raise RuntimeError("Watcher.start() called twice without stop()")
        root = self.inbox.path
        if not root.is_dir():
            raise inbox_missing(root)
        self._inbox_gone.clear()
        mode, fstype = choose_mode(self.inbox, self._mountinfo)
        shortfall = inotify_shortfall(self.inbox, self._max_watches) if mode == "native" else None
        if shortfall is not None:
            # watchdog skips sub-folders it cannot watch without a word: too few watches means missed files.
            self.fallback_reason = shortfall
            log.warning(
                "remixd.watch.fallback_to_polling",
                inbox=str(root),
                reason=shortfall,
                poll_s=self.inbox.poll_s,
                fix="sysctl fs.inotify.max_user_watches=524288 (persist it in /etc/sysctl.d/)",
            )
            mode = "poll"
        try:
            self._observer = self._arm(mode)
        except OSError as error:
            if mode != "native" or error.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            limit = "max_user_watches" if error.errno == errno.ENOSPC else "max_user_instances"
            self.fallback_reason = f"inotify {limit} reached ({error.strerror})"
            log.warning(
                "remixd.watch.fallback_to_polling",
                inbox=str(root),
                reason=self.fallback_reason,
                poll_s=self.inbox.poll_s,
                fix=f"sysctl fs.inotify.{limit}=524288 (persist it in /etc/sysctl.d/)",
            )
            mode = "poll"
            self._observer = self._arm(mode)
        self._mode = mode
        log.info(
            "remixd.watch.started",
            inbox=str(root),
            mode=mode,
            fstype=fstype,
            recursive=self.inbox.recursive,
            index=self._index,
        )

    def _arm(self, mode: Mode) -> BaseObserver:
        """A started observer whose watch is in place. watchdog adds inotify watches and takes the first
        polling snapshot in `start()` on the calling thread, so returning means armed."""
        observer = self._make_observer(mode, self.inbox.poll_s)
        observer.name = f"remixd-watch-{self._index}-{mode}"
        handler = _EnqueueHandler(self.inbox, self._sink, self._index, self._inbox_gone)
        try:
            observer.schedule(handler, os.path.normpath(self.inbox.path), recursive=self.inbox.recursive)
            observer.start()
        except BaseException as error:
            observer.stop()  # the inotify reader thread starts with the observer object; end it too
            if observer.is_alive():
                observer.join(self._stop_timeout_s)
            if isinstance(error, FileNotFoundError | NotADirectoryError):
                raise inbox_missing(self.inbox.path) from error
            raise
        return observer

    def stop(self) -> None:
        """Stop watching and join the observer's threads (bounded by `stop_timeout_s`). Idempotent."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        if observer.is_alive():
            observer.join(self._stop_timeout_s)
        if observer.is_alive():
            log.warning("remixd.watch.stop_timeout", inbox=str(self.inbox.path), timeout_s=self._stop_timeout_s)
