"""`remixd reroll` of a kept input wakes a running intake through a touch in state_dir, with real events."""

from __future__ import annotations

import os
from pathlib import Path

from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.intake.loop import Intake
from remixd.intake.wake import poke
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import make_image, write_config


def test_a_touch_in_the_wake_folder_claims_at_once_the_kept_file_a_reroll_waits_for(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, None, inbox={"after": "keep"}))
    image = make_image(tmp_path / "inbox/mug.jpg")
    hour_ago = image.stat().st_mtime_ns - 3600 * 10**9
    os.utime(image, ns=(hour_ago, hour_ago))  # settled long ago: the start-up scan hands it on at once
    journal = SqliteJournal(config.state_dir / "journal.sqlite3")
    root = str(config.inboxes[0].path)
    done = journal.claim(root, "mug.jpg", image.stat().st_size, hour_ago)
    assert done is not None
    journal.set_hash(done, "ab" * 32)
    journal.finish_input(done, "done")
    journal.set_disposed(done, "kept")
    intake = Intake(config.inboxes, journal, clock=Clock(), state_dir=config.state_dir)
    intake.start(watch=True)
    try:
        while intake.scanning:
            assert intake.step(timeout=0) == 0  # kept and unchanged: passed by
        journal.add_reroll(journal.get_input(done), seed=7)

        poke(config.state_dir)

        # The next rescan is rescan_s (30 s) away and nothing settles: only the touch can end this wait.
        assert intake.step(timeout=10) == 1
        assert [record.relpath for record in journal.unfinished()] == ["mug.jpg"]
        assert journal.waiting_rerolls() == set()
    finally:
        intake.stop()
        journal.close()
