"""The journal beside another process that holds its write lock: `remixd status` answers from a read, never
waits; a lock held past the busy timeout is told as a lock, not as damage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.errors import JournalError
from remixd.journal import database
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from tests.helpers import make_image, remixd, write_config


def test_status_answers_while_another_process_holds_the_journal_s_write_lock(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    make_image(tmp_path / "inbox/mug.jpg")
    assert remixd("once", "-c", str(config)).returncode == 0
    writer = sqlite3.connect(load_config(config).state_dir / JOURNAL_NAME, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # as the daemon does for every write (a compaction slice, a request sent)
        status = remixd("status", "-c", str(config), "--json")
        assert writer.in_transaction  # held all along
    finally:
        writer.close()
    assert status.returncode == 0, status.stderr  # it waited out the busy timeout and failed before
    assert '"done": 1' in status.stdout


def test_a_journal_locked_past_the_busy_timeout_is_told_apart_from_a_damaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint for a damaged journal is to move it aside, which would lose what it knows: never for a lock."""
    path = tmp_path / JOURNAL_NAME
    SqliteJournal(path).close()
    with sqlite3.connect(path) as db:  # one migration left to run: opening it needs the write lock
        db.execute("DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    db.close()
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(JournalError) as refused:
            SqliteJournal(path)
    finally:
        writer.close()
    assert "database is locked" in refused.value.message
    assert refused.value.hint == "another process is writing it: try again"
