"""The journal read for `remixd plan`: nothing is written, not even SQLite's own side files."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from remixd.journal.readonly import read_journal
from remixd.journal.sqlite import SqliteJournal

TODAY = date(2025, 3, 1)


def test_no_journal_and_a_journal_still_being_created_know_nothing(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "missing.sqlite3", TODAY).blocking == {}
    starting = tmp_path / "starting.sqlite3"
    sqlite3.connect(starting).close()  # the file exists; the daemon has not made its tables yet
    view = read_journal(starting, TODAY)
    assert (view.blocking, view.written, view.spent_today.images) == ({}, frozenset(), 0)


def test_a_closed_journal_is_read_without_creating_wal_or_shm_files(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    input_id = journal.claim("/inbox", "a.jpg", 10, 20)
    journal.close()
    before = sorted(tmp_path.iterdir())

    view = read_journal(path, TODAY)

    assert sorted(tmp_path.iterdir()) == before
    assert input_id is not None and view.known("/inbox", "a.jpg", 10, 20) == "in progress"
    assert view.known("/inbox", "b.jpg", 10, 20) is None
