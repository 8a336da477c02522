"""One inbox at run time, what a scan or an event hands to the claims, and what intake counts across reloads."""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from remixd.config.model import InboxConfig
from remixd.intake.readiness import Readiness
from remixd.intake.watch import Watcher


@dataclass
class InboxState:
    """One inbox at run time: its watcher, its readiness tracker and its health."""

    config: InboxConfig
    index: int
    readiness: Readiness
    # `companions: optional`: images that settled without a companion, given companion_wait_s more for one
    # (a script that writes the .txt after the image); an image whose companion is there does not wait.
    companion_wait: Readiness | None = None
    watcher: Watcher | None = None
    missing: str | None = None  # why the inbox is paused, when it is
    next_rescan: float = 0.0
    announced: set[str] = field(default_factory=set)  # paths an event announced since the last rescan began
    unannounced: set[Path] = field(default_factory=set)  # paths a rescan began tracking with no event for them

    @functools.cached_property
    def root(self) -> str:
        return os.fspath(self.config.path)

    def let_go(self, path: Path) -> Ready:
        """A path one of the trackers let go of, to claim, marked if the events missed it (`unannounced`: kept
        while it settled or waited for a companion). Events and scans report only paths under the root: the
        relative path is what follows it."""
        unannounced = path in self.unannounced
        self.unannounced.discard(path)
        return self, os.fspath(path)[len(self.root) + 1 :], None, unannounced


# A file ready to claim: its inbox, its relative path, the lstat the scan already made (None: it settled
# after an event, look again), and whether no event announced it (a new claim of it is one the events missed).
Ready = tuple[InboxState, str, os.stat_result | None, bool]


@dataclass
class IntakeCounters:
    """What the metrics and the status file count across the daemon's life, reloads included."""

    claimed: Counter[str] = field(default_factory=Counter)  # inbox path -> inputs claimed
    missed_by_events: int = 0  # files a rescan found that no event had announced
