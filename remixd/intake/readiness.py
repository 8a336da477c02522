"""When is a dropped file complete? A small, pure tracker of quiet periods.

Events are hints and writers are slow: a scanner closes its file after every page, a network copy pauses,
`IN_CLOSE_WRITE` can fire before the size is final. So a file is *ready* only when all of these hold:

1. nothing touched it (no event, no scan sighting) for `settle_s`;
2. its stat signature (size, mtime_ns, inode) is the same as at the last look, `settle_s` apart;
3. it is still a regular file (or a symbolic link, see below), and not empty (a copier that created the file
   but has not written its first byte yet must not have the empty file carried off to `failed/`).

A file that passes all three but looks cut short (`intake.complete`: a JPEG without its end marker, a PNG
without IEND, …) is a copy that stalled, not yet a damaged file: it gets a second settle window, and any
change in it starts settling over. Only a file still unchanged and incomplete after that window is handed on
(the worker then fails it as damaged).

Any change restarts the quiet period. A vanished file, or one replaced by a folder, a fifo, a socket or a
device, is dropped silently: the next event or rescan brings it back if it returns. A symbolic link is
tracked by the link's own lstat (never its target's) so that it reaches the worker, which refuses it with an
error file ("links are not followed") instead of leaving it unexplained in the inbox; nothing here or there
ever opens what it points at.

`Readiness` does no I/O of its own beyond the injected `stat` and `complete`, keeps no threads, and is owned
by one thread (the service loop); it is not locked.
"""

from __future__ import annotations

import heapq
import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.intake.complete import looks_complete
from remixd.intake.scan import unrecordable_name
from remixd.logs import get_logger

__all__ = ["Readiness", "Signature", "file_stat", "signature_of", "stat_signature"]

Signature = tuple[int, int, int]
"""(size, mtime_ns, inode) of a regular file, or of a symbolic link itself (lstat)."""

StatFunction = Callable[[Path], os.stat_result]
log = get_logger(__name__)


def signature_of(result: os.stat_result) -> Signature | None:
    """The signature of an lstat result, or None when it is neither a regular file nor a symbolic link."""
    if not (stat_module.S_ISREG(result.st_mode) or stat_module.S_ISLNK(result.st_mode)):
        return None
    return (result.st_size, result.st_mtime_ns, result.st_ino)


def stat_signature(path: Path, stat: StatFunction = os.lstat) -> Signature | None:
    """(size, mtime_ns, inode) of a regular file or of a symbolic link itself; None when it is missing,
    unreadable, anything else (folder, fifo, socket, device), or named in a way remixd cannot record.

    `lstat` by default: a link's signature is the link's, so a link dropped into an inbox can never make
    remixd read (and upload) whatever it points at; the worker refuses links by name.
    """
    found = file_stat(path, stat)
    return None if found is None else signature_of(found)


def file_stat(path: Path, stat: StatFunction = os.lstat) -> os.stat_result | None:
    """The lstat of a regular file or symbolic link `stat_signature` would describe; None where it gives none."""
    if unrecordable_name(os.fspath(path)):
        return None
    try:
        found = stat(path)
    except OSError:
        return None
    return found if signature_of(found) is not None else None


@dataclass
class _Tracked:
    signature: Signature
    quiet_since: float  # clock value of the last touch or observed change
    ticket: int  # identifies this path's one live heap item; older items for the path are stale
    stalled: bool = False  # quiet but cut short: in its second settle window


class Readiness:
    """Tracks candidate files until they have been quiet for `settle_s`.

    Each tracked path has exactly one live heap item keyed by the clock value of its next check, so
    `pop_ready` costs O(k log n) for the k checks that are due, whatever the number n of tracked files. A
    touch does not push a new item; it only moves `quiet_since`, and the pending check reschedules itself
    when it finds the quiet period not yet over. `next_due` may therefore be early (a wake-up that finds
    nothing ready), never late.
    """

    def __init__(
        self,
        settle_s: float,
        clock: Clock = SYSTEM_CLOCK,
        stat: StatFunction = os.lstat,
        complete: Callable[[Path], bool] = looks_complete,
    ) -> None:
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s!r}")
        self.settle_s = settle_s
        self._clock = clock
        self._stat = stat
        self._complete = complete
        self._tracked: dict[Path, _Tracked] = {}
        self._heap: list[tuple[float, int, Path]] = []
        self._tickets = 0

    def __len__(self) -> int:
        return len(self._tracked)

    def __contains__(self, path: object) -> bool:
        return path in self._tracked

    def touch(self, path: Path) -> None:
        """`path` was seen by an event or a scan: (re)start its quiet period and record its signature.

        A path that is missing or not a regular file is dropped (and forgotten if it was tracked).
        """
        signature = stat_signature(path, self._stat)
        if signature is None:
            self.forget(path)
            return
        now = self._clock.monotonic()
        entry = self._tracked.get(path)
        if entry is None:
            self._tickets += 1
            self._tracked[path] = _Tracked(signature, now, self._tickets)
            heapq.heappush(self._heap, (now + self.settle_s, self._tickets, path))
        else:
            # The live heap item stays where it is; when it comes due it sees the later quiet_since and
            # reschedules. Pushing here instead would grow the heap by one item per event in a write storm.
            if entry.stalled and signature != entry.signature:
                log.info("remixd.input.copy_resumed", path=os.fspath(path))
            entry.signature, entry.quiet_since, entry.stalled = signature, now, False

    def forget(self, path: Path) -> None:
        """Stop tracking `path` (its heap item goes stale and is skipped when it surfaces)."""
        self._tracked.pop(path, None)

    def next_due(self) -> float | None:
        """Clock value at which `pop_ready` next has work to do; None when nothing is tracked."""
        self._drop_stale_top()
        return self._heap[0][0] if self._heap else None

    def pop_ready(self) -> list[Path]:
        """Every tracked path that is ready now, in the order it became due; they stop being tracked."""
        now = self._clock.monotonic()
        ready: list[Path] = []
        while self._heap and self._heap[0][0] <= now:
            _, ticket, path = heapq.heappop(self._heap)
            entry = self._tracked.get(path)
            if entry is None or entry.ticket != ticket:
                continue  # forgotten, or forgotten and tracked again under a newer ticket
            quiet_until = entry.quiet_since + self.settle_s
            if quiet_until > now:
                # Touched since this check was scheduled: look again when the new quiet period ends.
                self._schedule(entry, path, quiet_until)
                continue
            signature = stat_signature(path, self._stat)
            if signature is None:
                del self._tracked[path]
            elif signature != entry.signature or signature[0] == 0:
                # Written to without an event we saw (polling, NFS, missed inotify), or still empty:
                # the quiet period starts again from this look.
                if entry.stalled:
                    log.info("remixd.input.copy_resumed", path=os.fspath(path))
                entry.signature, entry.quiet_since, entry.stalled = signature, now, False
                self._schedule(entry, path, now + self.settle_s)
            elif not entry.stalled and not self._complete(path):
                log.info(
                    "remixd.input.stalled",
                    path=os.fspath(path),
                    hint=f"it looks cut short: remixd waits another {self.settle_s:g} s for the copy to go on",
                )
                entry.stalled, entry.quiet_since = True, now
                self._schedule(entry, path, now + self.settle_s)
            else:
                del self._tracked[path]
                ready.append(path)
        return ready

    def _schedule(self, entry: _Tracked, path: Path, due: float) -> None:
        self._tickets += 1
        entry.ticket = self._tickets
        heapq.heappush(self._heap, (due, self._tickets, path))

    def _drop_stale_top(self) -> None:
        while self._heap:
            _, ticket, path = self._heap[0]
            entry = self._tracked.get(path)
            if entry is not None and entry.ticket == ticket:
                return
            heapq.heappop(self._heap)
