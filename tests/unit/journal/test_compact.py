"""A year of journal: finished inputs older than keep_days shrink to what the duplicate check needs."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from remixd.errors import ErrorRecord
from remixd.journal.browse import GalleryQuery, reader
from remixd.journal.database import INCREMENTAL
from remixd.journal.records import Disposal, FinishState, JobSpec, Spend
from remixd.journal.schema import MIGRATIONS
from remixd.journal.sqlite import SqliteJournal
from remixd.journal.upkeep import IDLE_S, TARGET_S, Upkeep
from tests.helpers import FakeClock, approx

INBOX = "/srv/inbox"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = START + timedelta(days=100)


DAY_S = 86_400.0


def spec(rule: str = "poster", *, sandbox: bool = False, usd: float = 0.08) -> JobSpec:
    return JobSpec(rule, "f1", "http://127.0.0.1:1/remix", {"prompt": "p " * 40}, 1, usd, sandbox=sandbox)


def processed(
    journal: SqliteJournal,
    relpath: str,
    sha256: str,
    *,
    state: FinishState = "done",
    disposal: Disposal | None = "moved",
    size: int = 10,
    sandbox: bool = False,
    usd: float = 0.08,
) -> int:
    """An input taken through a paid, written job to `state` and `disposal`; its job id."""
    input_id = journal.claim(INBOX, relpath, size, 1)
    assert input_id is not None
    journal.set_hash(input_id, sha256)
    [job] = journal.add_jobs(input_id, [spec(sandbox=sandbox, usd=usd)])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {"data": [{"url": "http://u/" + "x" * 200}]})
    journal.record_written(job.id, [f"/out/{relpath}.poster.1.png"])
    journal.finish_input(input_id, state)
    if disposal is not None:
        journal.set_disposed(input_id, disposal, None if disposal != "moved" else f"/done/{relpath}")
    return job.id


def test_an_old_result_is_still_found_by_the_duplicate_check(journal: SqliteJournal, clock: FakeClock) -> None:
    processed(journal, "a.jpg", "aa" * 32)
    processed(journal, "tried.jpg", "cc" * 32, sandbox=True)  # never billed: counted apart
    spent, counts, job_counts = journal.spent(START.date()), journal.counts(), journal.job_counts()
    tried = journal.spent(START.date(), sandbox=True)
    assert (spent.images, tried.images) == (1, 1)
    clock.advance(100 * DAY_S)
    assert journal.compact(LATER - timedelta(days=90), limit=100) == 2
    assert journal.compact(LATER - timedelta(days=90), limit=100) == 0  # nothing left to compact
    found = journal.find_duplicate("aa" * 32, "poster", "f1")
    assert found is not None
    assert (found.id, found.files) == (None, ("/out/a.jpg.poster.1.png",))  # its job compacted away
    assert journal.find_duplicate("aa" * 32, "square", "f1") is None
    assert journal.find_duplicate("bb" * 32, "poster", "f1") is None
    # status and the budget see the same history as before
    assert (journal.spent(START.date()), journal.counts(), journal.job_counts()) == (spent, counts, job_counts)
    assert journal.spent(START.date(), sandbox=True) == tried

    later = journal.claim(INBOX, "copy.jpg", 10, 1)
    assert later is not None
    journal.set_hash(later, "aa" * 32)
    [job] = journal.add_jobs(later, [spec()])
    journal.mark_duplicate(job.id, found)
    duplicate = journal.get_job(job.id)
    assert (duplicate.state, duplicate.duplicate_of, duplicate.files) == ("duplicate", None, found.files)


def test_only_finished_disposed_inputs_older_than_the_cutoff_are_compacted(
    journal: SqliteJournal, clock: FakeClock
) -> None:
    processed(journal, "failed.jpg", "01" * 32, state="failed")  # waits for `remixd retry`
    processed(journal, "pending.jpg", "02" * 32, disposal=None)  # its move is not done yet
    still_claimed = journal.claim(INBOX, "claimed.jpg", 1, 1)
    processed(journal, "old.jpg", "03" * 32)
    clock.advance(10 * DAY_S)
    processed(journal, "recent.jpg", "04" * 32)
    assert journal.compact(START + timedelta(days=5), limit=100) == 1
    assert {record.relpath for record in journal.unfinished()} == {"pending.jpg", "claimed.jpg"}
    assert [record.relpath for record in journal.failed_inputs()] == ["failed.jpg"]
    assert journal.get_input(still_claimed or 0).state == "claimed"
    found = journal.find_duplicate("03" * 32, "poster", "f1")
    assert found is not None
    assert found.id is None
    recent = journal.find_duplicate("04" * 32, "poster", "f1")
    assert recent is not None
    assert recent.id is not None


def test_a_kept_input_is_not_claimed_again_after_compaction(journal: SqliteJournal, clock: FakeClock) -> None:
    processed(journal, "kept.jpg", "aa" * 32, disposal="kept", size=10)
    clock.advance(100 * DAY_S)
    assert journal.compact(LATER - timedelta(days=90), limit=100) == 1
    assert journal.claim(INBOX, "kept.jpg", 10, 1) is None  # unchanged: nothing to do
    assert journal.claim(INBOX, "kept.jpg", 11, 1) is not None  # changed: a new input


def test_a_result_a_newer_duplicate_points_at_waits_for_it(journal: SqliteJournal, clock: FakeClock) -> None:
    processed(journal, "a.jpg", "aa" * 32)
    clock.advance(10 * DAY_S)
    later = journal.claim(INBOX, "copy.jpg", 10, 1)
    assert later is not None
    journal.set_hash(later, "aa" * 32)
    [job] = journal.add_jobs(later, [spec()])
    found = journal.find_duplicate("aa" * 32, "poster", "f1")
    assert found is not None
    journal.mark_duplicate(job.id, found)
    journal.finish_input(later, "duplicate")
    journal.set_disposed(later, "moved", "/done/copy.jpg")
    assert journal.compact(START + timedelta(days=5), limit=100) == 0
    assert journal.compact(START + timedelta(days=20), limit=100) == 1  # the duplicate first,
    assert journal.compact(START + timedelta(days=20), limit=100) == 1  # then the original
    found = journal.find_duplicate("aa" * 32, "poster", "f1")
    assert found is not None
    assert found.id is None


def test_compaction_is_bounded_and_the_space_goes_back_to_the_file_system(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    for number in range(300):
        processed(journal, f"{number}.jpg", f"{number:064x}")
    journal.reclaim(pages=1_000_000)
    full = path.stat().st_size + Path(f"{path}-wal").stat().st_size
    clock.advance(100 * DAY_S)
    assert journal.compact(LATER, limit=120) == 120
    assert journal.compact(LATER, limit=1000) == 180
    assert journal.reclaim(pages=1_000_000) == 0  # no free page left
    with sqlite3.connect(path) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.close()
    assert path.stat().st_size < full / 3
    assert journal.counts()["done"] == 300


def test_a_journal_from_before_compaction_is_migrated(path: Path, clock: FakeClock) -> None:
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0]:
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (1)")
        old.execute(
            """INSERT INTO inputs (inbox, relpath, size, mtime_ns, state, detected_at, claimed_at)
               VALUES ('/srv/inbox', 'a.jpg', 1, 1, 'claimed', ?1, ?1)""",
            (START.isoformat(),),
        )
    old.close()
    journal = SqliteJournal(path, clock=clock)
    try:
        assert journal.counts()["claimed"] == 1  # the counts start from the rows already there
        journal.reclaim(pages=100)
        with sqlite3.connect(path) as other:
            assert other.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL
        other.close()
    finally:
        journal.close()


def test_upkeep_compacts_in_batches_then_rests(journal: SqliteJournal, path: Path, clock: FakeClock) -> None:
    for number in range(5):
        processed(journal, f"{number}.jpg", f"{number:064x}")
    clock.advance(100 * DAY_S)
    upkeep = Upkeep(journal, 90, clock, batch=2)
    assert [upkeep.step(), upkeep.step(), upkeep.step()] == [2, 2, 1]
    late = SqliteJournal(path, clock=FakeClock(START))  # another writer, whose input is as old as the others
    try:
        processed(late, "late.jpg", "ff" * 32)
    finally:
        late.close()
    assert upkeep.step() == 0  # resting: nothing was left at the last look
    clock.advance(IDLE_S)
    assert upkeep.step() == 1


class SlowJournal(SqliteJournal):
    """A journal whose compaction takes `per_input_s` of the clock for each input, as on a loaded machine."""

    def __init__(self, path: Path, clock: FakeClock, per_input_s: float) -> None:
        super().__init__(path, clock=clock)
        self.clock, self.per_input_s = clock, per_input_s
        self.batches: list[tuple[int, float]] = []  # (inputs, seconds) of every compaction

    def compact(self, before: datetime, limit: int) -> int:
        compacted = super().compact(before, limit)
        self.clock.advance(compacted * self.per_input_s)
        self.batches.append((compacted, compacted * self.per_input_s))
        return compacted


def test_a_slow_batch_makes_the_next_ones_smaller(path: Path, clock: FakeClock) -> None:
    """A worker recording a sent request waits behind a batch: after one slow batch, each holds the lock
    about TARGET_S, and the backlog is still taken at every call until it is gone."""
    journal = SlowJournal(path, clock, per_input_s=TARGET_S / 10)  # 40 inputs: four times the target
    try:
        for number in range(70):
            processed(journal, f"{number}.jpg", f"{number:064x}")
        clock.advance(100 * DAY_S)
        upkeep = Upkeep(journal, 90, clock, batch=40)
        while upkeep.step():
            pass
        assert [inputs for inputs, _ in journal.batches] == [40, 10, 10, 10, 0]
        assert max(seconds for _, seconds in journal.batches[1:]) <= TARGET_S + 1e-9
    finally:
        journal.close()


def test_an_input_asked_for_again_is_kept_whole(journal: SqliteJournal, clock: FakeClock) -> None:
    processed(journal, "again.jpg", "aa" * 32)
    processed(journal, "other.jpg", "bb" * 32)
    [record] = [r for r in (journal.get_input(1), journal.get_input(2)) if r.relpath == "again.jpg"]
    journal.add_reroll(record, seed=7)
    clock.advance(100 * DAY_S)
    assert journal.compact(LATER - timedelta(days=90), limit=100) == 1  # only the other one
    assert journal.get_input(record.id).relpath == "again.jpg"


def test_a_journal_of_the_previous_schema_is_migrated_to_the_smaller_one(path: Path, clock: FakeClock) -> None:
    """Withheld images counted once, the search rebuilt without positions, written sources' sizes kept."""
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:8], start=1):
        for statement in statements:
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?)", (version,))
    old.execute(
        """INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at,
           finished_at, disposal) VALUES (1, ?, 'shop/Lamp.jpg', 10, 1, ?, 'done', ?3, ?3, ?3, 'moved')""",
        (INBOX, "a" * 64, START.isoformat()),
    )
    answer = {"data": [{"is_image_safe": False, "prompt": "a lamp at dusk", "url": None}, {"url": "http://u/1"}]}
    old.execute(
        """INSERT INTO jobs (input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, response,
           files, created_at, completed_at) VALUES (1, 'poster', 'f1', '/remix', '{"prompt": "p"}', 2, 0.16,
           'written', ?, '["/out/a.png"]', ?2, ?2)""",
        (json.dumps(answer), START.isoformat()),
    )
    old.execute("INSERT INTO results VALUES (?, 7, '[]')", (b"k" * 16,))
    old.close()

    journal = SqliteJournal(path, clock=clock)
    try:
        [withheld] = journal.withheld()
        assert (withheld.relpath, withheld.images, withheld.withheld, withheld.all_withheld) == (
            "shop/Lamp.jpg", 2, 1, False,
        )  # fmt: skip
    finally:
        journal.close()
    with reader(path) as pages:
        for text in ("LAMP AT", "lamp.jpg", "poster"):
            assert [record.id for record in pages.gallery(GalleryQuery(text=text)).inputs] == [1], text
        assert [record.id for record in pages.gallery(GalleryQuery(text="lamp_at")).inputs] == [1]  # `_` parts words
        assert pages.gallery(GalleryQuery(text="lamp_noon")).inputs == ()  # ... and is no wildcard
    db = sqlite3.connect(path)
    assert db.execute("SELECT size FROM result_sizes").fetchall() == [(-1,), (10,)]  # compacted, written
    [search] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'inputs_search'").fetchone()
    assert "tokenize = 'unicode61', detail = 'none'" in search  # words, without positions
    db.close()


def test_a_disposed_input_keeps_what_the_review_page_shows_of_its_requests_and_answers(
    journal: SqliteJournal,
) -> None:
    input_id = journal.claim(INBOX, "b.jpg", 10, 1)
    assert input_id is not None
    journal.set_hash(input_id, "b" * 64)
    request = {"prompt": "a lamp", "model": "V_2", "aspect_ratio": "ASPECT_1_1", "image_weight": 50}
    [job] = journal.add_jobs(input_id, [JobSpec("poster", "f1", "/remix", request, 2, 0.16)])
    journal.start_submit(job.id)
    answer = {
        "created": "2025-03-01T12:00:00+00:00",
        "data": [
            {"url": "http://u/1", "prompt": "a lamp", "seed": 3, "resolution": "1024x1024", "is_image_safe": True},
            {"url": None, "prompt": "a lamp, at dusk", "seed": 4, "is_image_safe": False, "style_type": "GENERAL"},
        ],
    }
    journal.record_answer(job.id, answer)
    assert journal.get_job(job.id).response == answer  # its links are still to be fetched
    journal.record_written(job.id, ["/out/b.poster.1.png", "/out/b.poster.2.json"])
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, "moved", "/done/b.jpg")

    slim = journal.get_job(job.id)
    assert slim.request == {"prompt": "a lamp", "model": "V_2"}
    assert slim.response == {
        "data": [
            {"seed": 3, "resolution": "1024x1024"},
            {"prompt": "a lamp, at dusk", "seed": 4, "is_image_safe": False},
        ]
    }
    assert slim.files == ("/out/b.poster.1.png", "/out/b.poster.2.json")
    [withheld] = journal.withheld()
    assert (withheld.images, withheld.withheld) == (2, 1)


def test_compacted_spend_is_summed_into_its_day_exactly(journal: SqliteJournal, clock: FakeClock) -> None:
    """A day of inputs compacted one by one adds each one's spend to the day's row: as floats, 300 amounts this
    large drifted to $266,988,574.38990122 (a million $0.08 did as much)."""
    amount, many = 889961.914633, 300
    for number in range(many):
        processed(journal, f"{number}.jpg", f"{number:064x}", usd=amount)
    assert journal.spent(START.date()).usd == 266988574.3899  # the ledger's rows, summed
    clock.advance(100 * DAY_S)
    assert journal.compact(LATER - timedelta(days=90), limit=many) == many
    assert journal.spent(START.date()).usd == 266988574.3899  # the day's row, added to 300 times


def test_a_past_days_billed_spend_of_finished_inputs_is_summed_into_its_day(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    """A year's ledger was a row per request (90 bytes with its indexes): finished ones of a past day become
    their day's totals, and every total the budget, `remixd status` and a retry read stays as it was."""
    processed(journal, "done.jpg", "aa" * 32)
    processed(journal, "sandbox.jpg", "bb" * 32, sandbox=True)
    failed = journal.claim(INBOX, "failed.jpg", 10, 1)
    unknown = journal.claim(INBOX, "unknown.jpg", 10, 1)
    assert failed is not None and unknown is not None
    [failed_job] = journal.add_jobs(failed, [spec()])
    journal.start_submit(failed_job.id)
    journal.record_answer(failed_job.id, {"data": [{"url": "http://u/1"}]})
    journal.record_job_failure(failed_job.id, ErrorRecord("download_failed", "gone"), final=True)
    journal.finish_input(failed, "failed")
    journal.set_disposed(failed, "moved", "/failed/failed.jpg")
    [unknown_job] = journal.add_jobs(unknown, [spec()])
    journal.start_submit(unknown_job.id)  # sent, never answered: a possible payment
    day = START.date()
    before = (journal.spent(day), journal.spent(day, sandbox=True), journal.possible_payments())
    payments = journal.unwritten_payments(failed)
    assert journal.fold_spend(day, limit=100) == 0  # today's stay rows: spend by price source
    clock.advance(DAY_S)
    assert journal.fold_spend(clock.utcnow().date(), limit=1) == 1  # bounded
    assert journal.fold_spend(clock.utcnow().date(), limit=100) == 1
    assert (journal.spent(day), journal.spent(day, sandbox=True), journal.possible_payments()) == before
    assert before[0] == Spend(images=3, usd=approx(0.24), unknown=1)
    assert journal.unwritten_payments(failed) == payments
    assert journal.get_job(unknown_job.id).possible_payments == 1
    rows = sqlite3.connect(path).execute("SELECT job_id, status FROM spend ORDER BY id").fetchall()
    assert rows == [(failed_job.id, "billed"), (unknown_job.id, "sent")]
