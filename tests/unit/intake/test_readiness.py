"""Readiness: a fake clock and a fake stat for the timing logic, real files for what a file system does."""

# tests compare with literal times and sizes

from __future__ import annotations

import os
import stat as stat_module
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remixd.intake.readiness import Readiness, stat_signature
from tests.helpers import FakeClock

SETTLE = 2.0


class FakeFiles:
    """A file system of stat results: `write` changes size and mtime like an append does."""

    def __init__(self) -> None:
        self.files: dict[Path, tuple[int, int, int, int]] = {}  # mode, size, mtime_ns, inode
        self.calls = 0
        self._next_inode = 100

    def create(self, path: Path, size: int = 10, mtime_ns: int = 1_000, mode: int = stat_module.S_IFREG) -> None:
        self._next_inode += 1
        self.files[path] = (mode | 0o644, size, mtime_ns, self._next_inode)

    def write(self, path: Path, grow: int = 10) -> None:
        mode, size, mtime_ns, inode = self.files[path]
        self.files[path] = (mode, size + grow, mtime_ns + 1, inode)

    def __call__(self, path: Path) -> os.stat_result:
        self.calls += 1
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        mode, size, mtime_ns, inode = self.files[path]
        seconds = mtime_ns // 1_000_000_000
        return os.stat_result(
            (
                mode,
                inode,
                1,
                1,
                0,
                0,
                size,
                seconds,
                seconds,
                seconds,
                float(seconds),
                float(seconds),
                float(seconds),
                mtime_ns,
                mtime_ns,
                mtime_ns,
            )
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def files() -> FakeFiles:
    return FakeFiles()


@pytest.fixture
def readiness(clock: FakeClock, files: FakeFiles) -> Readiness:
    return Readiness(SETTLE, clock=clock, stat=files)


A = Path("/inbox/a.jpg")
B = Path("/inbox/b.jpg")


def test_ready_once_quiet_for_settle_s(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A)
    readiness.touch(A)
    assert len(readiness) == 1
    assert readiness.next_due() == SETTLE
    clock.now = SETTLE - 0.01
    assert readiness.pop_ready() == []
    clock.now = SETTLE
    assert readiness.pop_ready() == [A]
    assert len(readiness) == 0
    assert readiness.next_due() is None
    assert readiness.pop_ready() == []  # reported once


def test_touch_restarts_the_quiet_period(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A)
    readiness.touch(A)
    clock.now = 1.5
    files.write(A)
    readiness.touch(A)  # an event for the new chunk
    clock.now = SETTLE  # the first check: early, because of the touch at 1.5
    assert readiness.pop_ready() == []
    assert readiness.next_due() == 3.5
    clock.now = 3.49
    assert readiness.pop_ready() == []
    clock.now = 3.5
    assert readiness.pop_ready() == [A]


def test_slow_writer_with_events_is_never_early(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A, size=0)
    readiness.touch(A)
    last_write = 0.0
    for step in range(1, 81):  # 20 s of a writer pausing 1.5 s (< settle) between chunks
        clock.now = step * 0.25
        if step % 6 == 0 and clock.now <= 15:
            files.write(A)
            readiness.touch(A)
            last_write = clock.now
        ready = readiness.pop_ready()
        if clock.now < last_write + SETTLE:
            assert ready == [], f"reported at {clock.now} while the last chunk came at {last_write}"
        elif ready:
            assert ready == [A]
            break
    else:
        pytest.fail("never became ready after the writer stopped")
    assert clock.now == last_write + SETTLE


def test_slow_writer_without_events_is_caught_by_the_signature(
    readiness: Readiness, clock: FakeClock, files: FakeFiles
) -> None:
    """Polling or NFS: the chunks come without events; only the stat comparison sees them."""
    files.create(A)
    readiness.touch(A)
    last_write = 0.0
    ready_at = None
    while clock.now < 30 and ready_at is None:
        due = readiness.next_due()
        assert due is not None
        for moment in (clock.now + 1.5 * k for k in range(1, 10)):  # chunks at 1.5 s intervals until 9 s
            if clock.now < moment <= due and moment <= 9:
                files.write(A)
                last_write = moment
        clock.now = due
        if readiness.pop_ready():
            ready_at = clock.now
    assert ready_at is not None
    assert last_write + SETTLE <= ready_at <= last_write + 2 * SETTLE


def test_same_size_new_mtime_restarts(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A, size=100, mtime_ns=1_000)
    readiness.touch(A)
    files.create(A, size=100, mtime_ns=2_000)  # rewritten in place, same length
    clock.now = SETTLE
    assert readiness.pop_ready() == []
    assert readiness.next_due() == 2 * SETTLE
    clock.now = 2 * SETTLE
    assert readiness.pop_ready() == [A]


def test_same_size_and_mtime_new_inode_restarts(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A, size=100, mtime_ns=1_000)
    readiness.touch(A)
    files.create(A, size=100, mtime_ns=1_000)  # replaced by a rename: a new inode with the same stat
    clock.now = SETTLE
    assert readiness.pop_ready() == []
    clock.now = 2 * SETTLE
    assert readiness.pop_ready() == [A]


def test_vanished_file_is_dropped_silently(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A)
    files.create(B)
    readiness.touch(A)
    readiness.touch(B)
    del files.files[A]
    clock.now = SETTLE
    assert readiness.pop_ready() == [B]
    assert len(readiness) == 0
    assert A not in readiness


def test_touching_a_missing_or_non_regular_path_tracks_nothing(readiness: Readiness, files: FakeFiles) -> None:
    readiness.touch(A)
    files.create(B, mode=stat_module.S_IFDIR)
    readiness.touch(B)
    assert len(readiness) == 0
    assert readiness.next_due() is None


def test_touch_after_vanishing_forgets(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A)
    readiness.touch(A)
    del files.files[A]
    readiness.touch(A)  # a deleted event, or a rescan that finds it gone
    assert A not in readiness
    clock.now = SETTLE
    assert readiness.pop_ready() == []


def test_empty_file_waits_for_its_first_bytes(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    """A copier that created the file but stalled before writing must not lose it to failed/."""
    files.create(A, size=0)
    readiness.touch(A)
    for step in range(1, 6):
        clock.now = step * SETTLE
        assert readiness.pop_ready() == []
    assert A in readiness
    files.write(A)
    clock.now = 6 * SETTLE
    assert readiness.pop_ready() == []  # the change restarts the quiet period
    clock.now = 7 * SETTLE
    assert readiness.pop_ready() == [A]


def test_forget_then_touch_again_ignores_the_stale_check(
    readiness: Readiness, clock: FakeClock, files: FakeFiles
) -> None:
    files.create(A)
    readiness.touch(A)
    clock.now = 1.0
    readiness.forget(A)
    assert readiness.next_due() is None
    clock.now = 1.5
    readiness.touch(A)
    assert readiness.next_due() == 3.5
    clock.now = SETTLE  # when the forgotten check would have fired
    assert readiness.pop_ready() == []
    clock.now = 3.5
    assert readiness.pop_ready() == [A]


def test_ready_paths_come_in_due_order(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    for offset, path in ((0.2, B), (0.1, A)):
        files.create(path)
        clock.now = offset
        readiness.touch(path)
    clock.now = 10
    assert readiness.pop_ready() == [A, B]


def test_zero_settle_is_ready_at_once(clock: FakeClock, files: FakeFiles) -> None:
    readiness = Readiness(0.0, clock=clock, stat=files)
    files.create(A)
    readiness.touch(A)
    assert readiness.pop_ready() == [A]


def test_negative_settle_is_refused() -> None:
    with pytest.raises(ValueError, match="settle_s"):
        Readiness(-1.0)


def test_twenty_thousand_files_cost_only_what_is_due(clock: FakeClock, files: FakeFiles) -> None:
    readiness = Readiness(SETTLE, clock=clock, stat=files)
    paths = [Path(f"/inbox/{index:05d}.jpg") for index in range(20_000)]
    for index, path in enumerate(paths):
        files.create(path)
        clock.now = index * 0.001  # touched over 20 s, as a big copy arrives
        readiness.touch(path)
    assert len(readiness) == 20_000
    files.calls = 0
    clock.now = SETTLE + 0.0095  # due: the first ten
    assert readiness.pop_ready() == paths[:10]
    assert files.calls == 10  # one stat per due file, not one per tracked file
    files.calls = 0
    assert readiness.next_due() == pytest.approx(SETTLE + 0.010)
    assert files.calls == 0


def test_an_event_storm_does_not_grow_the_heap(readiness: Readiness, clock: FakeClock, files: FakeFiles) -> None:
    files.create(A)
    for step in range(10_000):  # one modified event per 4 KiB chunk of a 40 MB copy
        clock.now = step * 0.0001
        files.write(A)
        readiness.touch(A)
    assert len(readiness._heap) == 1  # one live check per path, however many touches
    clock.now += SETTLE
    assert readiness.pop_ready() == [A]


@settings(max_examples=150, deadline=None)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(["write", "write+touch", "touch", "wait"]), st.floats(0.0, 3.0)),
        max_size=40,
    )
)
def test_never_ready_within_settle_of_a_write(actions: list[tuple[str, float]]) -> None:
    """Whatever the interleaving of writes, events and checks: never reported sooner than `settle_s`
    after its last write, and always reported within two quiet periods once writing stops."""
    clock, files = FakeClock(), FakeFiles()
    readiness = Readiness(SETTLE, clock=clock, stat=files)
    files.create(A)
    readiness.touch(A)
    last_write = last_activity = 0.0
    ready_at: float | None = None

    def run_until(moment: float) -> None:
        nonlocal ready_at
        while ready_at is None:  # the service loop: sleep until next_due, then pop
            due = readiness.next_due()
            if due is None or due > moment:
                break
            clock.now = max(clock.now, due)
            if readiness.pop_ready():
                ready_at = clock.now
        clock.now = max(clock.now, moment)

    for action, delay in actions:
        run_until(clock.now + delay)
        if ready_at is not None:
            break
        if action.startswith("write"):
            files.write(A)
            last_write = last_activity = clock.now
        if action.endswith("touch"):
            readiness.touch(A)
            last_activity = clock.now
    run_until(clock.now + 10 * SETTLE)
    assert ready_at is not None
    assert ready_at >= last_write + SETTLE
    assert ready_at <= last_activity + 2 * SETTLE + 1e-9  # (t + 2) + 2 may round above t + 4


# --- real files -------------------------------------------------------------------------------------


def test_replaced_by_a_directory_is_dropped(tmp_path: Path, clock: FakeClock) -> None:
    readiness = Readiness(SETTLE, clock=clock)
    path = tmp_path / "a.jpg"
    path.write_bytes(b"jpeg")
    readiness.touch(path)
    path.unlink()
    path.mkdir()
    clock.now = SETTLE
    assert readiness.pop_ready() == []
    assert len(readiness) == 0


def test_fifo_is_never_tracked_and_a_symlink_is_tracked_by_itself(tmp_path: Path, clock: FakeClock) -> None:
    """A link settles on its own lstat (so the worker can refuse it with an error file); its target's
    changes are not its own, and a fifo is never tracked at all."""
    target = tmp_path / "target.jpg"
    target.write_bytes(b"jpeg")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    readiness = Readiness(SETTLE, clock=clock)
    readiness.touch(link)
    readiness.touch(fifo)
    assert len(readiness) == 1
    target.write_bytes(b"jpeg, longer now")  # the target changing is no change of the link
    clock.now = SETTLE
    assert readiness.pop_ready() == [link]


def test_renamed_in_file_is_ready_settle_after_the_rename(tmp_path: Path, clock: FakeClock) -> None:
    """`NAME.part` -> `NAME`: the old mtime says nothing; the quiet period starts at the rename's event."""
    partial = tmp_path / "x.jpg.part"
    partial.write_bytes(b"jpeg data")
    os.utime(partial, ns=(1_000_000_000, 1_000_000_000))  # written long ago
    clock.now = 100.0
    final = tmp_path / "x.jpg"
    partial.rename(final)
    readiness = Readiness(SETTLE, clock=clock)
    readiness.touch(final)
    clock.now = 100.0 + SETTLE - 0.01
    assert readiness.pop_ready() == []
    clock.now = 100.0 + SETTLE
    assert readiness.pop_ready() == [final]


def test_stat_signature(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"12345")
    result = path.stat()
    assert stat_signature(path) == (5, result.st_mtime_ns, result.st_ino)
    link = tmp_path / "link.jpg"
    link.symlink_to(path)
    assert stat_signature(link) == (len(str(path)), link.lstat().st_mtime_ns, link.lstat().st_ino)
    latin1 = tmp_path / os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: the journal cannot record the name
    latin1.write_bytes(b"12345")
    assert stat_signature(latin1) is None
    assert stat_signature(tmp_path) is None
    assert stat_signature(tmp_path / "missing.jpg") is None
