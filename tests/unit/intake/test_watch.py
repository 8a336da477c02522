"""The watcher on real folders with real watchdog events, native (inotify) and polling.

Every wait is `queue.get(timeout=...)` under a deadline. To show that a path was *not* reported, a test
writes a sentinel file after it and waits for the sentinel: events arrive in order (polling: the sentinel
is written after the previous sentinel was seen, so it lands in a later snapshot), so anything the watcher
would have said about the earlier change has been said by then.
"""

# tests compare with literal counts

from __future__ import annotations

import errno
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from remixd.errors import InboxUnavailable
from remixd.intake.detect import Mode, choose_mode, filesystem_type
from remixd.intake.scan import scan_stat
from remixd.intake.watch import Watcher, _EnqueueHandler

WAIT_S = 10.0

Sink = queue.Queue[tuple[int, Path]]


@dataclass(frozen=True)
class Inbox:
    """Stand-in for config.InboxConfig: the attributes the watch stage reads."""

    path: Path
    recursive: bool = False
    settle_s: float = 2.0
    detect: str = "native"
    ignore: tuple[str, ...] = ()
    excluded_dirs: tuple[Path, ...] = ()
    poll_s: float = 0.05


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    assert leaked == [], f"threads left running: {leaked}"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture(params=["native", "poll"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Inbox:
    folder = tmp_path / "inbox"
    (folder / "out").mkdir(parents=True)
    return Inbox(folder, recursive=True, detect=request.param, excluded_dirs=(folder / "out",))


@pytest.fixture
def sink() -> Sink:
    return queue.Queue()


@pytest.fixture
def watching(inbox: Inbox, sink: Sink) -> Iterator[Watcher]:
    watcher = Watcher(inbox, sink, index=3)
    watcher.start()
    yield watcher
    watcher.stop()


def wait_for(sink: Sink, wanted: Path, seen: list[Path] | None = None) -> list[Path]:
    """Paths reported up to and including `wanted` (index checked on the way); fails after WAIT_S."""
    seen = [] if seen is None else seen
    deadline = time.monotonic() + WAIT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{wanted} was never reported; saw {seen}")
        try:
            index, path = sink.get(timeout=remaining)
        except queue.Empty:
            continue
        assert index == 3
        seen.append(path)
        if path == wanted:
            return seen


def flush(inbox: Inbox, sink: Sink, seen: list[Path]) -> list[Path]:
    """Everything reported about earlier changes, by way of two sentinels written one after the other."""
    for number in (1, 2):
        sentinel = inbox.path / f"zz-sentinel-{number}.jpg"
        sentinel.write_bytes(b"sentinel")
        wait_for(sink, sentinel, seen)
    while True:
        try:
            seen.append(sink.get_nowait()[1])
        except queue.Empty:
            return seen


def test_mode_follows_detect(watching: Watcher, inbox: Inbox) -> None:
    assert watching.mode == inbox.detect
    assert watching.problem is None
    assert watching.fallback_reason is None


def test_cp_style_write_is_reported(watching: Watcher, inbox: Inbox, sink: Sink, outside: Path) -> None:
    source = outside / "photo.jpg"
    source.write_bytes(b"x" * 200_000)
    shutil.copyfile(source, inbox.path / "photo.jpg")
    wait_for(sink, inbox.path / "photo.jpg")


def test_mv_from_outside_is_reported(watching: Watcher, inbox: Inbox, sink: Sink, outside: Path) -> None:
    source = outside / "moved.jpg"
    source.write_bytes(b"jpeg")
    source.rename(inbox.path / "moved.jpg")
    wait_for(sink, inbox.path / "moved.jpg")


def test_part_renamed_reports_only_the_final_name(watching: Watcher, inbox: Inbox, sink: Sink) -> None:
    partial = inbox.path / "x.jpg.part"
    partial.write_bytes(b"half")
    with partial.open("ab") as stream:
        stream.write(b" and the rest")
    partial.rename(inbox.path / "x.jpg")
    seen = wait_for(sink, inbox.path / "x.jpg")
    flush(inbox, sink, seen)
    assert partial not in seen


def test_excluded_and_ignored_paths_are_not_reported(watching: Watcher, inbox: Inbox, sink: Sink) -> None:
    (inbox.path / "out" / "a.poster.1.png").write_bytes(b"result")
    (inbox.path / "out" / "nested").mkdir()
    (inbox.path / "out" / "nested" / "b.png").write_bytes(b"result")
    (inbox.path / ".remixd-tmp-123.png").write_bytes(b"temp")
    (inbox.path / "@eaDir").mkdir()
    (inbox.path / "@eaDir" / "thumb.jpg").write_bytes(b"thumb")
    seen = flush(inbox, sink, [])
    reported = {path.relative_to(inbox.path).as_posix() for path in seen}
    assert reported <= {"zz-sentinel-1.jpg", "zz-sentinel-2.jpg"}


def test_folder_moved_in_is_reported(watching: Watcher, inbox: Inbox, sink: Sink, outside: Path) -> None:
    album = outside / "album"
    (album / "inner").mkdir(parents=True)
    (album / "inner" / "a.jpg").write_bytes(b"jpeg")
    album.rename(inbox.path / "album")
    wait_for(sink, inbox.path / "album")


def test_file_in_a_new_subfolder_is_reported(watching: Watcher, inbox: Inbox, sink: Sink) -> None:
    (inbox.path / "new").mkdir()
    wait_for(sink, inbox.path / "new")
    (inbox.path / "new" / "a.jpg").write_bytes(b"jpeg")  # needs the watch inotify added for the new folder
    wait_for(sink, inbox.path / "new" / "a.jpg")


@pytest.mark.parametrize("detect", ["native", "poll"])
def test_flat_inbox_ignores_subfolders(tmp_path: Path, sink: Sink, outside: Path, detect: str) -> None:
    inbox = Inbox(tmp_path / "flat", detect=detect)
    inbox.path.mkdir()
    watcher = Watcher(inbox, sink, index=3)
    watcher.start()
    try:
        (outside / "album").mkdir()
        (outside / "album").rename(inbox.path / "album")
        (inbox.path / "sub").mkdir()
        seen = flush(inbox, sink, [])
    finally:
        watcher.stop()
    assert inbox.path / "album" not in seen
    assert inbox.path / "sub" not in seen


def test_inbox_removed_while_watching(watching: Watcher, inbox: Inbox, sink: Sink) -> None:
    shutil.rmtree(inbox.path)
    wait_for(sink, inbox.path)
    assert watching.problem == "missing"


def test_stop_leaves_no_threads(inbox: Inbox, sink: Sink) -> None:
    before = set(threading.enumerate())
    watcher = Watcher(inbox, sink, index=3)
    watcher.start()
    assert len(set(threading.enumerate()) - before) >= 1
    watcher.stop()
    assert [thread for thread in set(threading.enumerate()) - before if thread.is_alive()] == []
    watcher.stop()  # idempotent


def test_start_again_after_stop(inbox: Inbox, sink: Sink) -> None:
    watcher = Watcher(inbox, sink, index=3)
    watcher.start()
    with pytest.raises(RuntimeError, match="twice"):
        watcher.start()
    watcher.stop()
    watcher.start()
    try:
        (inbox.path / "again.jpg").write_bytes(b"jpeg")
        wait_for(sink, inbox.path / "again.jpg")
    finally:
        watcher.stop()


def test_missing_inbox_refuses_to_start(tmp_path: Path, sink: Sink) -> None:
    for detect in ("native", "poll"):
        watcher = Watcher(Inbox(tmp_path / "not-mounted", detect=detect), sink, index=3)
        with pytest.raises(InboxUnavailable, match="missing"):
            watcher.start()
        assert watcher.problem is None
        watcher.stop()


def test_inbox_vanishing_while_arming_is_reported_as_unavailable(tmp_path: Path, sink: Sink) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()

    def make_observer(mode: Mode, poll_s: float) -> BaseObserver:
        folder.rmdir()  # gone between the check and the inotify_add_watch
        return Observer()

    watcher = Watcher(Inbox(folder), sink, index=3, make_observer=make_observer)
    with pytest.raises(InboxUnavailable):
        watcher.start()


# --- falling back to polling ------------------------------------------------------------------------


class _ExhaustedObserver(Observer):  # type: ignore[misc,valid-type]  # Observer is picked at import time
    """A real inotify observer whose watch fails the way a full fs.inotify.max_user_watches does."""

    def __init__(self, error_number: int) -> None:
        super().__init__()
        self._error_number = error_number

    def on_thread_start(self) -> None:
        raise OSError(self._error_number, os.strerror(self._error_number))


def _observers(error_number: int, made: list[BaseObserver]) -> object:
    def make_observer(mode: Mode, poll_s: float) -> BaseObserver:
        observer: BaseObserver = (
            _ExhaustedObserver(error_number) if mode == "native" else PollingObserver(timeout=poll_s)
        )
        made.append(observer)
        return observer

    return make_observer


def test_inotify_watch_limit_falls_back_to_polling(tmp_path: Path, sink: Sink) -> None:
    inbox = Inbox(tmp_path / "inbox")
    inbox.path.mkdir()
    made: list[BaseObserver] = []
    watcher = Watcher(inbox, sink, index=3, make_observer=_observers(errno.ENOSPC, made))  # type: ignore[arg-type]
    with capture_logs() as logs:
        watcher.start()
    try:
        assert watcher.mode == "poll"
        assert [type(observer) for observer in made] == [_ExhaustedObserver, PollingObserver]
        assert watcher.fallback_reason is not None
        assert "max_user_watches" in watcher.fallback_reason
        warning = next(entry for entry in logs if entry["event"] == "remixd.watch.fallback_to_polling")
        assert warning["log_level"] == "warning"
        assert warning["fix"].startswith("sysctl fs.inotify.max_user_watches=")
        (inbox.path / "a.jpg").write_bytes(b"jpeg")
        wait_for(sink, inbox.path / "a.jpg")
    finally:
        watcher.stop()


def test_inotify_instance_limit_falls_back_too(tmp_path: Path, sink: Sink) -> None:
    inbox = Inbox(tmp_path / "inbox")
    inbox.path.mkdir()
    watcher = Watcher(inbox, sink, index=3, make_observer=_observers(errno.EMFILE, []))  # type: ignore[arg-type]
    watcher.start()
    try:
        assert watcher.mode == "poll"
        assert "max_user_instances" in (watcher.fallback_reason or "")
    finally:
        watcher.stop()


def test_other_errors_are_raised_not_papered_over(tmp_path: Path, sink: Sink) -> None:
    inbox = Inbox(tmp_path / "inbox")
    inbox.path.mkdir()
    watcher = Watcher(inbox, sink, index=3, make_observer=_observers(errno.EACCES, []))  # type: ignore[arg-type]
    with pytest.raises(PermissionError):
        watcher.start()


# --- choosing the mode ------------------------------------------------------------------------------

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /srv rw,relatime shared:20 - ext4 /dev/sdb1 rw
41 40 0:41 / /srv/share rw,relatime shared:21 - nfs4 nas:/export rw,vers=4.2
42 41 0:42 / /srv/share/local rw,relatime - tmpfs tmpfs rw
43 22 0:43 / /mnt/my\\040photos rw,relatime master:5 - fuse.sshfs host:/photos rw
44 22 0:44 / /mnt/usb rw,relatime - fuseblk /dev/sdc1 rw
45 22 0:45 / /srv/share2 rw,relatime - cifs //nas/share2 rw
46 22 0:46 / /srv/share2 rw,relatime - ext4 /dev/sdd1 rw
"""
ROOT_MOUNT = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/", "ext4"),
        ("/home/user/inbox", "ext4"),
        ("/srv/inbox", "ext4"),
        ("/srv/share", "nfs4"),
        ("/srv/share/inbox/deep", "nfs4"),
        ("/srv/shared", "ext4"),  # a prefix of the name is not a parent folder
        ("/srv/share/local/inbox", "tmpfs"),  # the longest mount point wins
        ("/mnt/my photos/inbox", "fuse.sshfs"),  # octal escapes in mount points
        ("/mnt/usb/inbox", "fuseblk"),
        ("/srv/share2/inbox", "ext4"),  # stacked on the same mount point: the later line wins
    ],
)
def test_filesystem_type(path: str, fstype: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == fstype


@pytest.mark.parametrize(
    ("fstype", "detect", "mode"),
    [
        ("nfs4", "auto", "poll"),
        ("cifs", "auto", "poll"),
        ("fuse.sshfs", "auto", "poll"),
        ("9p", "auto", "poll"),
        ("ext4", "auto", "native"),
        ("fuseblk", "auto", "native"),  # ntfs-3g on a local disk: inotify sees every change
        ("nfs4", "native", "native"),  # the user's word wins
        ("ext4", "poll", "poll"),
    ],
)
def test_choose_mode(tmp_path: Path, fstype: str, detect: str, mode: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    table = tmp_path / "mountinfo"
    table.write_text(ROOT_MOUNT + f"50 22 0:50 / {tmp_path.resolve()} rw - {fstype} x rw\n")
    with capture_logs() as logs:
        assert choose_mode(Inbox(inbox, detect=detect), table) == (mode, fstype)
    warned = any(entry["event"] == "remixd.watch.native_on_network_fs" for entry in logs)
    assert warned is (detect == "native" and fstype == "nfs4")


def test_choose_mode_without_mountinfo_is_native(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    assert choose_mode(Inbox(tmp_path / "inbox", detect="auto"), tmp_path / "no-proc") == ("native", None)


def test_auto_on_a_network_mount_polls_for_real(tmp_path: Path, sink: Sink) -> None:
    inbox = Inbox(tmp_path / "inbox", detect="auto")
    inbox.path.mkdir()
    table = tmp_path / "mountinfo"
    table.write_text(ROOT_MOUNT + f"50 22 0:50 / {inbox.path.resolve()} rw - nfs x rw\n")
    watcher = Watcher(inbox, sink, index=3, mountinfo=table)
    assert watcher.mode == "poll"  # what start() will use
    watcher.start()
    try:
        assert watcher.mode == "poll"
        (inbox.path / "a.jpg").write_bytes(b"jpeg")
        wait_for(sink, inbox.path / "a.jpg")
    finally:
        watcher.stop()


# --- the handler, event by event --------------------------------------------------------------------


def test_handler_event_table(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    inbox = Inbox(root, recursive=True, excluded_dirs=(root / "done",))
    sink: Sink = queue.Queue()
    gone = threading.Event()
    handler = _EnqueueHandler(inbox, sink, 7, gone)
    out = str(tmp_path / "elsewhere")
    cases = [
        (FileCreatedEvent(f"{root}/a.jpg"), root / "a.jpg"),
        (FileClosedEvent(f"{root}/a.jpg"), root / "a.jpg"),
        (FileMovedEvent(f"{root}/b.jpg.part", f"{root}/b.jpg"), root / "b.jpg"),
        (FileMovedEvent(f"{root}/done/c.jpg", f"{root}/c.jpg"), root / "c.jpg"),  # `remixd retry`
        (FileMovedEvent(f"{root}/d.jpg", f"{root}/done/d.jpg"), None),  # disposal into done/
        (FileMovedEvent(f"{root}/e.jpg", f"{out}/e.jpg"), None),  # moved out
        (FileMovedEvent(f"{root}/f.jpg", f"{root}/f.jpg.part"), None),
        (FileOpenedEvent(f"{root}/a.jpg"), None),
        (FileDeletedEvent(f"{root}/a.jpg"), None),
        (DirModifiedEvent(str(root)), None),
        (DirModifiedEvent(f"{root}/sub"), None),
        (DirCreatedEvent(f"{root}/sub"), root / "sub"),
        (DirMovedEvent(f"{out}/album", f"{root}/album"), root / "album"),
        (DirCreatedEvent(f"{root}/done/2024"), None),
        (DirCreatedEvent(f"{root}/@eaDir"), None),
        (FileCreatedEvent(f"{root}/sub/@eaDir/x.jpg"), None),
    ]
    for event, expected in cases:
        handler.dispatch(event)
        reported = sink.get_nowait() if not sink.empty() else None
        assert reported == (None if expected is None else (7, expected)), event
    assert not gone.is_set()
    flat = _EnqueueHandler(replace(inbox, recursive=False), sink, 7, gone)
    flat.dispatch(DirCreatedEvent(f"{root}/sub"))
    assert sink.empty()


def test_event_and_scan_agree_on_the_spelling_of_a_path(tmp_path: Path, sink: Sink) -> None:
    """Readiness is keyed by path: an event and a rescan must name one file the same way."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "other").mkdir()
    inbox = Inbox(tmp_path / "other" / ".." / "inbox")
    watcher = Watcher(inbox, sink, index=3)
    watcher.start()
    try:
        (tmp_path / "inbox" / "a.jpg").write_bytes(b"jpeg")
        reported = wait_for(sink, tmp_path / "inbox" / "a.jpg")[-1]
    finally:
        watcher.stop()
    assert [Path(path) for path, _relpath, _info in scan_stat(inbox)] == [reported]


def test_folders_are_counted_at_every_depth_without_listing_the_leaves(tmp_path: Path) -> None:
    """Arming counts folders first: a leaf folder (link count 2) is counted, never listed, so its files cost
    nothing; a folder with sub-folders is listed, however deep."""
    from remixd.intake.detect import count_folders

    for leaf in ("a/b/c", "a/b/d", "a/e", "f"):
        (tmp_path / leaf).mkdir(parents=True)
        (tmp_path / leaf / "photo.jpg").write_bytes(b"jpeg")
    (tmp_path / "a/link").symlink_to(tmp_path / "f")  # not a folder of the inbox: links are never followed
    assert count_folders(tmp_path, 100) == 7  # the root, a, a/b, a/b/c, a/b/d, a/e, f
    assert count_folders(tmp_path, 2) == 3  # past enough after the root: a and f, the rest never read


def test_too_few_inotify_watches_fall_back_to_polling_with_the_fix(tmp_path: Path) -> None:
    """watchdog skips sub-folders it cannot watch without a word; remixd counts first and polls instead."""
    from structlog.testing import capture_logs

    from remixd.intake.detect import inotify_shortfall

    inbox = Inbox(path=tmp_path, recursive=True, detect="native")
    for index in range(6):
        (tmp_path / f"folder{index}").mkdir()
    assert inotify_shortfall(inbox, limit=100) is None
    assert "max_user_watches is 8" in (inotify_shortfall(inbox, limit=8) or "")
    sink: queue.Queue[tuple[int, Path]] = queue.Queue()
    watcher = Watcher(inbox, sink, 0, max_watches=8)
    with capture_logs() as logs:
        watcher.start()
    try:
        assert watcher.mode == "poll"
        warning = next(e for e in logs if e["event"] == "remixd.watch.fallback_to_polling")
        assert "sysctl fs.inotify.max_user_watches" in warning["fix"]
    finally:
        watcher.stop()
