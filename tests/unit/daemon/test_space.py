"""The state fs's free space: a pause below journal.min_free_mb, lifted once space returns (a fake statvfs)."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from remixd.daemon.space import MB, SpaceWatch, free_bytes
from remixd.work.retry import Pause
from tests.helpers import FakeClock, FakeFs


def test_below_the_floor_submissions_pause_once_and_resume_when_space_returns(tmp_path: Path) -> None:
    fs, pause = FakeFs(200 * MB), Pause(FakeClock())
    watch = SpaceWatch(tmp_path, 64, pause, fs)
    with capture_logs() as logs:
        watch.step()
        assert not pause.is_paused and watch.free_bytes == 200 * MB
        fs.free = 10 * MB
        watch.step()
        watch.step()
        assert pause.reason is not None and "10 MB free" in pause.reason and "journal.min_free_mb" in pause.reason
        fs.free = 65 * MB
        watch.step()
        assert not pause.is_paused
    assert [entry["event"] for entry in logs] == ["remixd.space.paused", "remixd.space.resumed"]
    assert fs.asked == [str(tmp_path)] * 4


def test_a_floor_of_zero_never_pauses_and_an_unknown_fs_changes_nothing(tmp_path: Path) -> None:
    fs, pause = FakeFs(0), Pause(FakeClock())
    watch = SpaceWatch(tmp_path, 0, pause, fs)
    watch.step()
    assert not pause.is_paused and watch.free_bytes == 0
    watch.min_free_mb = 64
    watch.step()
    assert pause.is_paused
    fs.broken = True
    watch.step()
    assert pause.is_paused and watch.free_bytes is None  # unknown: neither paused nor resumed on a guess
    assert free_bytes(tmp_path) is not None  # the real statvfs of the test's own folder
