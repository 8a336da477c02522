"""Free space on the state folder's file system: watched, shown, and submissions paused before it runs out
(README "How remixd keeps files and money safe").

A journal that cannot be written cannot record the next answer: on a full state fs, answers Ideogram had
billed were bought again. Below `journal.min_free_mb` no new request is sent (what is in flight finishes and
is journalled); submissions resume by themselves once space returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from remixd.logs import get_logger

if TYPE_CHECKING:  # the daemon's; `remixd status` only asks `free_bytes`
    from remixd.work.retry import Pause

log = get_logger(__name__)

StatVfs = Callable[[str], os.statvfs_result]  # os.statvfs; tests pass a fake file system's
MB = 1_000_000


def free_bytes(state_dir: Path, statvfs: StatVfs = os.statvfs) -> int | None:
    """Bytes an unprivileged writer may still use on the state folder's file system; None if unknown."""
    try:
        found = statvfs(str(state_dir))
    except OSError:
        return None
    return found.f_bavail * found.f_frsize


class SpaceWatch:
    """Checked from the daemon's housekeeping: pauses submissions below the floor, resumes above it."""

    def __init__(self, state_dir: Path, min_free_mb: int, pause: Pause, statvfs: StatVfs = os.statvfs) -> None:
        self.state_dir = state_dir
        self.min_free_mb = min_free_mb  # 0: never pause
        self.pause = pause
        self._statvfs = statvfs
        self.free_bytes: int | None = None  # at the last step

    def step(self) -> None:
        self.free_bytes = free = free_bytes(self.state_dir, self._statvfs)
        if free is None:
            return
        floor = self.min_free_mb * MB
        if free < floor:
            reason = (
                f"the state folder's file system has {free / MB:.0f} MB free, below journal.min_free_mb "
                f"({self.min_free_mb} MB); submissions resume once there is more"
            )
            if self.pause.pause(reason):
                log.error(
                    "remixd.space.paused",
                    state_dir=str(self.state_dir),
                    free_mb=round(free / MB, 1),
                    hint=f"free space where {self.state_dir} is; nothing new is sent until then",
                )
        elif self.pause.is_paused:
            self.pause.resume()
            log.warning("remixd.space.resumed", state_dir=str(self.state_dir), free_mb=round(free / MB, 1))
