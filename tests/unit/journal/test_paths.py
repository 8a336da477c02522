"""The index of paths holds only the inputs a claim can still meet in their inbox (journal.layout PATH_HELD): a
done input moved or deleted left it, and a year of those cost the index 42 MB in the bench's year of journal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from remixd.journal.records import JobSpec
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock

INBOX = "/srv/inbox"
SENT = {"rule": "poster", "sent_at": "2025-03-01T12:00:00+00:00", "images": 1, "usd": 0.08, "status": "billed",
        "cost_source": "table", "sandbox": False}  # fmt: skip


def done(journal: SqliteJournal, relpath: str, disposal: str, size: int = 10) -> int:
    input_id = journal.claim(INBOX, relpath, size, 1)
    assert input_id is not None
    journal.set_hash(input_id, "ab" * 32)
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, disposal, f"/done/{relpath}" if disposal == "moved" else None)  # type: ignore[arg-type]
    return input_id


def entries(path: Path) -> int:
    """The index of paths' entries."""
    with sqlite3.connect(path) as db:
        [(held,)] = db.execute("SELECT sum(ncell) FROM dbstat WHERE name = 'inputs_path' AND pagetype = 'leaf'")
    db.close()
    return int(held or 0)


def test_the_index_of_paths_leaves_out_done_inputs_moved_or_deleted_and_claims_read_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path, clock=FakeClock())
    try:
        done(journal, "moved.jpg", "moved")
        done(journal, "deleted.jpg", "deleted")
        done(journal, "kept.jpg", "kept")
        failed = journal.claim(INBOX, "failed.jpg", 10, 1)
        assert failed is not None
        journal.finish_input(failed, "failed", {"error": {"kind": "unreadable"}})
        journal.set_disposed(failed, "moved", "/failed/failed.jpg")
        assert journal.claim(INBOX, "claimed.jpg", 10, 1) is not None
        assert entries(path) == 3  # kept, failed (waiting for `remixd retry`), claimed
        assert journal.claim(INBOX, "kept.jpg", 10, 1) is None  # unchanged and kept: never claimed again
        assert journal.claim(INBOX, "claimed.jpg", 10, 1) is None  # in progress
        assert journal.claim(INBOX, "moved.jpg", 10, 1) is not None  # a new file where a done one left
    finally:
        journal.close()


def test_a_done_input_is_found_at_its_place_in_the_inbox_however_it_left(tmp_path: Path) -> None:
    """`remixd reroll` naming a done input by its place in its inbox: kept there, or moved or deleted since."""
    journal = SqliteJournal(tmp_path / "journal.sqlite3", clock=FakeClock())
    try:
        moved, deleted = done(journal, "a.jpg", "moved"), done(journal, "b.jpg", "deleted")
        kept = done(journal, "c.jpg", "kept")
        assert [journal.done_input(at=(INBOX, name)) for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")] == [
            journal.get_input(moved), journal.get_input(deleted), journal.get_input(kept), None,
        ]  # fmt: skip
        later = done(journal, "c.jpg", "moved", size=11)  # changed in its inbox, claimed again, moved this time
        assert journal.done_input(at=(INBOX, "c.jpg")) == journal.get_input(later)
        assert journal.done_input(source=(INBOX, "c.jpg", "ab" * 32)) == journal.get_input(later)
    finally:
        journal.close()


def test_a_retried_input_s_payments_go_to_the_claim_after_it_only(tmp_path: Path) -> None:
    """The claim after a retry carries what the failed attempt paid; a later claim of the same path does not,
    though the done input between them (moved away) is not in the index of paths."""
    journal = SqliteJournal(tmp_path / "journal.sqlite3", clock=FakeClock())
    try:
        first = journal.claim(INBOX, "a.jpg", 10, 1)
        assert first is not None
        journal.finish_input(first, "failed", {"error": {"kind": "api_rejected"}, "payments": [SENT]})
        journal.set_disposed(first, "moved", "/failed/a.jpg")
        assert journal.reset_for_retry(first) is True
        again = journal.claim(INBOX, "a.jpg", 10, 2)
        assert again is not None
        assert [paid.usd for paid in journal.earlier_payments(again)] == [0.08]
        [job] = journal.add_jobs(again, [JobSpec("poster", "cd" * 32, "/remix", {"prompt": "p"}, 1, 0.08)])
        journal.finish_input(again, "done")
        journal.set_disposed(again, "moved", "/done/a.jpg")
        third = journal.claim(INBOX, "a.jpg", 10, 3)
        assert third is not None and job.input_id == again
        assert journal.earlier_payments(third) == []
    finally:
        journal.close()
