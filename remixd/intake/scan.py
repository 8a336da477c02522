"""Which files in an inbox are candidates: the ignore rules and the backlog scan.

Part of the watch stage. The scan is the truth the events
only hint at: it runs at start, periodically, after a watcher error, and on every folder the watcher
reports (files moved in along with a folder produce no events of their own on every platform).
"""

from __future__ import annotations

import fnmatch
import functools
import operator
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from remixd.errors import InboxUnavailable
from remixd.logs import get_logger

__all__ = ["BUILTIN_IGNORES", "InboxConfig", "is_ignored", "scan_stat", "unrecordable_name"]

log = get_logger(__name__)

BUILTIN_IGNORES: tuple[str, ...] = (
    # Matched, case-insensitively, against every component of a path relative to the inbox.
    ".*",  # dot-files and dot-folders, remixd's own ".remixd-tmp-*" files among them
    "*.part", "*.partial", "*.crdownload", "*.download", "*.filepart", "*.tmp", "*~",  # downloads in progress
    "~$*", ".~lock.*",  # office lock files
    ".DS_Store", "Thumbs.db", "desktop.ini",
    "@eaDir", ".stfolder", ".stversions", ".Trashes", "__MACOSX", "#recycle",  # NAS / sync / OS folders
)  # fmt: skip

# The same list, spelled for speed: the scan tests every name, and one regex of 19 globs costs more than
# the stat a bare walk makes. tests/test_scan.py proves the two spellings agree.
_IGNORED_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".filepart", ".tmp", "~")
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "@eadir", "__macosx", "#recycle"})


def _builtin_ignored(name: str) -> bool:
    if name.startswith((".", "~$")):
        return True
    lowered = name.lower()
    return lowered.endswith(_IGNORED_SUFFIXES) or lowered in _IGNORED_NAMES


class InboxConfig(Protocol):
    """The attributes of `config.InboxConfig` the watch stage reads."""

    @property
    def path(self) -> Path: ...
    @property
    def recursive(self) -> bool: ...
    @property
    def settle_s(self) -> float: ...
    @property
    def detect(self) -> str: ...
    @property
    def ignore(self) -> tuple[str, ...]: ...
    @property
    def excluded_dirs(self) -> tuple[Path, ...]: ...
    @property
    def poll_s(self) -> float: ...


def inbox_missing(root: object) -> InboxUnavailable:
    return InboxUnavailable(f"inbox {root} is missing or not a folder", "mount or create it; remixd retries")


# --- ignore rules -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _user_pattern(globs: tuple[str, ...]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs))


def _entry_ignored(name: str, relpath: str, user: re.Pattern[str] | None) -> bool:
    """One path component: built-ins on its name; the user's globs on its name and on its relative path."""
    if _builtin_ignored(name):
        return True
    return user is not None and (user.match(name) is not None or user.match(relpath) is not None)


def is_ignored(relpath: str, inbox: InboxConfig) -> bool:
    """Whether `relpath` (relative to the inbox, `/`-separated) or any folder above it is ignored.

    Every ancestor is tested the way the scan tests it before descending, so an event for `@eaDir/x.jpg`
    or for a file below a user-ignored folder is dropped exactly as the scan would skip it.
    """
    user = _user_pattern(tuple(inbox.ignore))
    prefix = ""
    for name in relpath.replace(os.sep, "/").split("/"):
        if name in ("", "."):
            continue
        prefix = f"{prefix}/{name}" if prefix else name
        if _entry_ignored(name, prefix, user):
            return True
    return False


def excluded_relpaths(inbox: InboxConfig) -> frozenset[str]:
    """The excluded folders that lie inside the inbox, as `/`-separated paths relative to it.

    Compared as relative paths so a symlinked inbox (`/srv/inbox -> /data/inbox`) matches in either
    spelling. Excluded folders outside the inbox do not concern the watcher and are left out.
    """
    root = Path(os.path.normpath(inbox.path))
    real_root = Path(os.path.realpath(inbox.path))
    found: set[str] = set()
    for folder in inbox.excluded_dirs:
        for base, candidate in ((root, Path(os.path.normpath(folder))), (real_root, folder.resolve())):
            if candidate.is_relative_to(base):
                found.add(candidate.relative_to(base).as_posix())
    return frozenset(found)


def is_excluded(relpath: str, excluded: frozenset[str]) -> bool:
    if "." in excluded:
        return True  # an output folder *is* the inbox: feed nothing back rather than loop forever
    return any(relpath == folder or relpath.startswith(folder + "/") for folder in excluded)


# --- names remixd cannot record -----------------------------------------------------------------------

_WARNED_NAMES: set[str] = set()
_MAX_WARNED_NAMES = 10_000  # one warning per path, not one per rescan; bounded however many turn up


def unrecordable_name(path: str) -> bool:
    """True (and a warning, once per path) when `path` is not valid UTF-8.

    Python hands such names over with surrogate escapes (`caf\\udce9.jpg` for Latin-1 `café.jpg`); the
    journal cannot hold them, and one of them must never stop the daemon.
    """
    if _is_utf8(path):
        return False
    if path not in _WARNED_NAMES and len(_WARNED_NAMES) < _MAX_WARNED_NAMES:
        _WARNED_NAMES.add(path)
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # caf\\xe9.jpg
        log.warning(
            "remixd.watch.unrecordable_name",
            path=shown,
            reason="the name is not valid UTF-8, so remixd cannot record it and skips it",
            hint="rename it to UTF-8 (e.g. `convmv -f latin1 -t utf8 --notest`); it is picked up then",
        )
    return True


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True  # the common case, without building an exception
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the backlog scan ---------------------------------------------------------------------------------


def scan_stat(inbox: InboxConfig) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every regular file and symbolic link in the inbox that is not ignored nor inside an excluded folder.

    Symbolic links are yielded but never followed (nor descended into): a link is a candidate only so that
    it gets a clear answer (the worker refuses it, and it lands in the failed folder with an error file
    saying links are not followed) instead of lying in the inbox unexplained. Fifos, sockets and devices
    are skipped without being opened, and a folder named `x.jpg` is a folder. A name that is not valid
    UTF-8 cannot be recorded in the journal: it is skipped with a warning (once per path) naming the fix.
    Sorted by name within each folder, files before sub-folders. Raises `InboxUnavailable` at once when the
    inbox itself is missing, and on the first `next()` when it cannot be read; sub-folders that vanish
    mid-scan are skipped.

    Yields (path, relative POSIX path, lstat) as plain strings, the lstat through the directory entry: a
    20,000-file backlog is walked at the speed of the file system, not of building Path objects. A file that
    vanishes between the listing and the stat is left out.
    """
    if not inbox.path.is_dir():
        raise inbox_missing(inbox.path)
    # normpath: the watcher reports paths under the same spelling, so both feed Readiness the same keys
    return _walk(os.path.normpath(inbox.path), inbox)


def _walk(root: str, inbox: InboxConfig) -> Iterator[tuple[str, str, os.stat_result]]:
    user = _user_pattern(tuple(inbox.ignore))
    excluded = excluded_relpaths(inbox)
    if "." in excluded:
        return
    pending: list[tuple[str, str]] = [(root, "")]
    by_name = operator.attrgetter("name")
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as iterator:
                entries = sorted(iterator, key=by_name)
        except OSError as error:
            if not prefix:
                raise InboxUnavailable(
                    f"cannot read inbox {root}: {error.strerror}", "check the mount and its permissions; remixd retries"
                ) from error
            if not isinstance(error, FileNotFoundError | NotADirectoryError):
                log.warning("remixd.watch.scan_unreadable", folder=folder, error=str(error))
            continue
        subfolders: list[tuple[str, str]] = []
        for entry in entries:  # the hot loop of a 20,000-file backlog: no call that is not needed
            name = entry.name
            relpath = prefix + name
            if _builtin_ignored(name) or (user is not None and (user.match(name) or user.match(relpath))):
                continue
            if not (name.isascii() or _is_utf8(name)):
                unrecordable_name(entry.path)  # warns once; a folder's files are skipped with it
                continue
            try:
                # d_type answers these without a stat; follow_symlinks=False: a link is never followed.
                if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                    yield entry.path, relpath, entry.stat(follow_symlinks=False)
                elif inbox.recursive and entry.is_dir(follow_symlinks=False) and relpath not in excluded:
                    subfolders.append((entry.path, relpath + "/"))
            except OSError:
                continue  # vanished between readdir and the type check or the stat
        pending.extend(reversed(subfolders))  # popped in name order
