"""Compacted results by their place: a folder and the way the names end, named once; each result keeps its stem."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from remixd.journal import readonly
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, old_journal
from tests.unit.journal.test_size import stored

PLACES_VERSION = 27  # the schema that keeps compacted results by their place
FINGERPRINT = "cd" * 32
# (source hash, folder, files as the schema before kept them, the names after)
RESULTS = (
    ("01" * 32, 1, "a.poster.1.png", "a"),
    ("02" * 32, 1, '["b.c.poster.1.png", "b.c.poster.2.webp"]', "b.c"),
    ("03" * 32, 1, "d.12345.1.png", "d.12345.1.png"),  # a seed where the rule stands: kept whole
    ("04" * 32, None, '["/x/e.poster.1.png", "relative.png"]', '["/x/e.poster.1.png", "relative.png"]'),
    ("05" * 32, 2, "f.poster.1.png", "f"),
)
FILES: dict[str, tuple[str, ...]] = {
    "01" * 32: ("/out/a.poster.1.png",),
    "02" * 32: ("/out/b.c.poster.1.png", "/out/b.c.poster.2.webp"),
    "03" * 32: ("/out/d.12345.1.png",),
    "04" * 32: ("/x/e.poster.1.png", "relative.png"),
    "05" * 32: ("/out/sub/f.poster.1.png",),
}


def test_a_journal_of_the_schema_before_places_keeps_each_result_s_files_and_names_each_place_once(
    tmp_path: Path,
) -> None:
    """`remixd plan` reads the journal as it finds it: the same answers before and after the daemon's upgrade."""
    path = tmp_path / "journal.sqlite3"
    old = old_journal(path, PLACES_VERSION - 1)
    old.execute("INSERT INTO result_folders (id, path) VALUES (1, '/out'), (2, '/out/sub')")
    old.execute("INSERT INTO rule_names VALUES ('poster')")
    for number, (sha, folder, files, _) in enumerate(RESULTS, start=1):
        key = hashlib.sha256(f"{sha}\0poster\0{FINGERPRINT}".encode()).digest()[:12]  # 12 bytes then
        old.execute("INSERT INTO results VALUES (?, ?, ?, ?)", (key, number, folder, files))
    old.close()
    today = datetime(2025, 3, 1, tzinfo=UTC).date()

    def written() -> list[bool]:
        with readonly.read_journal(path, today) as view:
            return [view.written(sha, "poster", FINGERPRINT) for sha in (*FILES, "06" * 32)]

    assert written() == [True] * 5 + [False]
    journal = SqliteJournal(path, clock=FakeClock())
    try:
        for sha, paths in FILES.items():
            found = journal.find_duplicate(sha, "poster", FINGERPRINT)
            assert found is not None and (found.id, found.files) == (None, paths)
    finally:
        journal.close()
    assert written() == [True] * 5 + [False]
    assert sorted(stored(path, "SELECT folder, tails FROM result_places")) == [
        (1, ""), (1, ".poster.1.png"), (1, '[".poster.1.png", ".poster.2.webp"]'), (2, ".poster.1.png"),
    ]  # fmt: skip
    names = {row[0] for row in stored(path, "SELECT names FROM results")}
    assert names == {expected for *_, expected in RESULTS}
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(results)")]
    db.close()
    assert columns == ["key", "place", "names"]  # no job id: nothing read it but a log line
    assert stored(path, "SELECT DISTINCT length(key) FROM results") == [(10,)]
