"""A copy that stalls is not a damaged file: real files cut short, a fake clock for the settle windows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from remixd.intake.complete import looks_complete
from remixd.intake.readiness import Readiness
from tests.helpers import FakeClock
from tests.unit.intake.test_readiness import SETTLE

FORMATS = ["JPEG", "PNG", "GIF", "WEBP", "BMP", "AVIF"]


def whole(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 80, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_cut_short_is_told_from_a_whole_one(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    data = whole(fmt)
    path.write_bytes(data)
    assert looks_complete(path)
    path.write_bytes(data[: len(data) * 2 // 3])
    assert not looks_complete(path)


def test_unknown_formats_and_unreadable_paths_count_as_whole(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(b"not an image")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "notes.txt")
    assert looks_complete(tmp_path / "notes.txt")
    assert looks_complete(tmp_path / "link.jpg")
    assert looks_complete(tmp_path / "missing.jpg")


def test_a_stalled_copy_that_goes_on_settles_again_instead_of_failing(tmp_path: Path) -> None:
    clock, path, data = FakeClock(), tmp_path / "photo.jpg", whole("JPEG")
    readiness = Readiness(SETTLE, clock=clock)
    path.write_bytes(data[:100])
    readiness.touch(path)
    clock.now = SETTLE  # quiet for settle_s, but cut short: a second window, not the worker
    assert readiness.pop_ready() == []
    assert readiness.next_due() == 2 * SETTLE
    clock.now = 1.5 * SETTLE
    with path.open("ab") as copy:  # the copy goes on without an event remixd saw (a network share)
        copy.write(data[100:200])
    clock.now = 2 * SETTLE  # the change is noticed: settling starts over, with a fresh second window
    assert readiness.pop_ready() == []
    with path.open("ab") as copy:
        copy.write(data[200:])
    clock.now = 3 * SETTLE
    assert readiness.pop_ready() == []  # changed again since the last look
    clock.now = 4 * SETTLE
    assert readiness.pop_ready() == [path]  # whole and quiet


def test_a_copy_cut_short_for_good_is_handed_on_after_the_second_window(tmp_path: Path) -> None:
    clock, path = FakeClock(), tmp_path / "photo.png"
    readiness = Readiness(SETTLE, clock=clock)
    path.write_bytes(whole("PNG")[:-20])
    readiness.touch(path)
    clock.now = SETTLE
    assert readiness.pop_ready() == []
    clock.now = 2 * SETTLE - 0.01
    assert readiness.pop_ready() == []
    clock.now = 2 * SETTLE  # unchanged and incomplete past a second window: the worker fails it as damaged
    assert readiness.pop_ready() == [path]
