"""A copy that pauses longer than settle_s, as remixd run sees it: it waits, it does not fail the photo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Daemon, image_bytes, wait_for, write_config

pytestmark = pytest.mark.e2e


def test_a_copy_that_stalls_past_settle_s_and_goes_on_is_processed_not_failed(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, inbox={"settle_s": 0.3})
    daemon = Daemon(config, {})
    daemon.wait_started()
    data = image_bytes(size=(640, 480))
    target = tmp_path / "inbox/photo.jpg"
    with target.open("wb") as copy:
        copy.write(data[: len(data) // 2])
        copy.flush()
        wait_for(
            lambda: any(e.get("event") == "remixd.input.stalled" for e in daemon.events()),
            message="the stall to be noticed",
        )
        copy.write(data[len(data) // 2 :])  # the copy goes on
    wait_for(lambda: (tmp_path / "done/photo.jpg").is_file(), message="the photo to be done")
    assert daemon.stop() == 0
    assert (tmp_path / "done/photo.jpg").read_bytes() == data
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []
    assert any(e.get("event") == "remixd.input.copy_resumed" for e in daemon.events())
