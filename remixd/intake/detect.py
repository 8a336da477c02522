"""How to watch an inbox (`detect: auto|native|poll`): native inotify, or polling where inotify cannot see.

inotify sees only changes made through this host's kernel, so an inbox on a network file system is polled;
a recursive inbox with more folders than inotify watches left is refused natively rather than half watched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from remixd.intake.scan import (
    InboxConfig,
)
from remixd.logs import get_logger

log = get_logger(__name__)


Mode = Literal["native", "poll"]


NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "fuse"})


"""Plus every `fuse.*`: inotify sees only changes made through this host's kernel, not other clients'."""


MOUNTINFO = Path("/proc/self/mountinfo")


MAX_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
LEAF_LINKS = 2  # a folder's link count with no sub-folders, where the file system counts them


def is_network_filesystem(fstype: str) -> bool:
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse.")


def filesystem_type(path: Path, mountinfo: str) -> str | None:
    """The type of the file system holding `path` (absolute, resolved): the longest matching mount point of
    `/proc/self/mountinfo` wins, and the later line wins a tie (a mount stacked on top)."""
    target = os.fspath(path)
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        # "36 35 98:0 /root /mount/point options [optional fields…] - fstype source super-options"
        fields = line.split(" ")
        if "-" not in fields[6:-1]:
            continue
        fstype = fields[fields.index("-", 6) + 1]
        mount_point = re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), fstype)
    return best[1] if best else None


def choose_mode(inbox: InboxConfig, mountinfo: Path = MOUNTINFO) -> tuple[Mode, str | None]:
    """("native" | "poll", file system type or None) for `detect: auto|native|poll`."""
    try:
        table = mountinfo.read_text(errors="surrogateescape")
        fstype = filesystem_type(inbox.path.resolve(), table)
    except OSError:
        fstype = None  # not Linux, or /proc not mounted: nothing says the inbox is remote
    if inbox.detect == "poll":
        return "poll", fstype
    if inbox.detect == "native":
        if fstype is not None and is_network_filesystem(fstype):
            log.warning(
                "remixd.watch.native_on_network_fs",
                inbox=str(inbox.path),
                fstype=fstype,
                hint="changes made by other hosts are not seen; use detect: auto or poll",
            )
        return "native", fstype
    return ("poll" if fstype is not None and is_network_filesystem(fstype) else "native"), fstype


def max_user_watches(path: Path = MAX_WATCHES) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def inotify_shortfall(inbox: InboxConfig, limit: int | None) -> str | None:
    """Why native watching cannot cover this inbox, or None. A recursive watch needs one inotify watch per
    folder; with fewer than that left, some folders would be watched and others silently not."""
    if limit is None:
        return None
    folders = count_folders(inbox.path, limit // 2) if inbox.recursive else 1
    if folders > limit // 2:  # other programs of the same user need watches too
        return f"the inbox has {folders}+ folders and fs.inotify.max_user_watches is {limit}"
    return None


def count_folders(root: Path, enough: int) -> int:
    """The folders under `root`, itself included, counting up to a little past `enough`. A folder whose link
    count says it has no sub-folders (2: its name and its `.`) is not listed: at a million files in leaf
    folders that skips reading every file name, which made arming the watch take seconds. A link count
    below 2 (btrfs, some network and FUSE file systems) tells nothing, so such a folder is listed."""
    folders, waiting = 1, [os.fspath(root)]
    while waiting and folders <= enough:
        try:
            entries = os.scandir(waiting.pop())
        except OSError:
            continue  # gone or unreadable: watchdog cannot watch it either
        with entries:
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    links = entry.stat(follow_symlinks=False).st_nlink
                except OSError:
                    continue
                folders += 1
                if links != LEAF_LINKS:
                    waiting.append(entry.path)
    return folders
