"""The journal read for `remixd plan`: nothing is written, not even SQLite's own side files."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from remixd.journal.compact import result_key
from remixd.journal.readonly import read_journal
from remixd.journal.sqlite import SqliteJournal

TODAY = date(2025, 3, 1)


def test_no_journal_and_a_journal_still_being_created_know_nothing(tmp_path: Path) -> None:
    with read_journal(tmp_path / "missing.sqlite3", TODAY) as view:
        assert view.known("/inbox", "a.jpg", 10, 20) is None
    starting = tmp_path / "starting.sqlite3"
    sqlite3.connect(starting).close()  # the file exists; the daemon has not made its tables yet
    with read_journal(starting, TODAY) as view:
        assert view.known("/inbox", "a.jpg", 10, 20) is None
        assert not view.written("0" * 64, "poster", "f1") and not view.may_be_duplicate(10)
        assert view.spent_today.images == 0


def test_a_closed_journal_is_read_without_creating_wal_or_shm_files(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path)
    input_id = journal.claim("/inbox", "a.jpg", 10, 20)
    journal.close()
    before = sorted(tmp_path.iterdir())

    with read_journal(path, TODAY) as view:
        assert input_id is not None and view.known("/inbox", "a.jpg", 10, 20) == "in progress"
        assert view.known("/inbox", "b.jpg", 10, 20) is None

    assert sorted(tmp_path.iterdir()) == before


def test_a_journal_compacted_before_sizes_were_kept_has_every_file_hashed(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    SqliteJournal(path).close()
    db = sqlite3.connect(path)
    with db:  # a result compacted by a remixd that kept no sizes, as the migration marks it
        db.execute("INSERT INTO results VALUES (?, NULL, '[]')", (result_key("a" * 64, "poster", "f1"),))
        db.execute("INSERT INTO result_sizes VALUES (-1)")
    db.close()

    with read_journal(path, TODAY) as view:
        assert view.may_be_duplicate(12_345) and view.written("a" * 64, "poster", "f1")
        assert not view.written("b" * 64, "poster", "f1")
