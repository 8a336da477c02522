"""A year of journal stays small: what each row stores, which indexes exist, and journals of older schemas."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remixd.journal import readonly
from remixd.journal.browse import GalleryQuery, reader
from remixd.journal.compact import result_files, result_folder, result_names, result_tails
from remixd.journal.layout import PATH_HELD
from remixd.journal.records import JobSpec, Spend
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, approx, old_journal

INBOX = "/srv/inbox"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SHA = "ab" * 32
FINGERPRINT = "cd" * 32
OLD_VERSION = 12  # the schema before the journal of a year was made smaller


def written(journal: SqliteJournal, relpath: str, sha256: str = SHA, prompt: str = "a lamp") -> int:
    """An input whose job was sent, answered, written and moved; its job id."""
    input_id = journal.claim(INBOX, relpath, 10, 1)
    assert input_id is not None
    journal.set_hash(input_id, sha256)
    [job] = journal.add_jobs(input_id, [JobSpec("poster", FINGERPRINT, "/remix", {"prompt": prompt}, 1, 0.08)])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {"data": [{"url": "http://u/1", "prompt": f"{prompt} at dusk"}]})
    journal.record_written(job.id, [f"/out/{relpath}.poster.1.png"])
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, "moved", f"/done/{relpath}")
    return job.id


def planned(journal: SqliteJournal, relpath: str, rule: str, prompt: str) -> int:
    """An input claimed with one job planned, nothing sent; its id."""
    input_id = journal.claim(INBOX, relpath, 10, 1)
    assert input_id is not None
    journal.add_jobs(input_id, [JobSpec(rule, FINGERPRINT, "/remix", {"prompt": prompt}, 1, 0.08)])
    return input_id


def plans(journal: SqliteJournal, *asks: Callable[[], object]) -> list[str]:
    """The query plan of every SELECT the journal ran for `asks`."""
    statements: list[str] = []
    connection = journal._db._connection
    connection.set_trace_callback(statements.append)
    try:
        for ask in asks:
            ask()
    finally:
        connection.set_trace_callback(None)
    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    return [" | ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql).fetchall()) for sql in selects]


def test_the_duplicate_check_and_the_resume_read_by_index_not_by_table(journal: SqliteJournal) -> None:
    """A year of journal holds a million finished jobs: a lookup that scans them takes seconds."""
    for number in range(3):
        written(journal, f"{number}.jpg", f"{number:064x}")
    found = plans(journal, lambda: journal.find_duplicate(SHA, "poster", FINGERPRINT), journal.generating)
    assert found, "no query was traced"
    for plan in found:
        assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), plan


def test_a_journal_of_the_schema_before_opens_with_its_records_and_its_spend(path: Path, clock: FakeClock) -> None:
    """Rows as remixd wrote them before its journal was made smaller: the same records, counts and spend."""
    at = "2025-03-01T12:00:00.250000+00:00"
    old = old_journal(path, OLD_VERSION)
    two_inputs(old, (SHA, "ef" * 32, FINGERPRINT), at)
    old.execute(
        """INSERT INTO spend (job_id, day, at, images, usd, status) VALUES
           (1, '2025-03-01', ?1, 1, 0.08, 'billed'), (2, '2025-03-01', ?1, 2, 0.16, 'billed')""",
        (at,),
    )
    old.execute("INSERT INTO spend_days VALUES ('2025-03-01', 0, 'sent', 1, 1, 0.08)")
    old_key = hashlib.sha256(f"{'12' * 32}\0poster\0f1".encode()).digest()[:16]  # 16 bytes then
    old.execute('INSERT INTO results VALUES (?, 0, \'["/out/old.poster.1.png", "/elsewhere/b.png"]\')', (old_key,))
    old.close()

    journal = SqliteJournal(path, clock=clock)
    try:
        done = journal.get_input(1)
        moment = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
        assert (done.sha256, done.state, done.claimed_at, done.finished_at, done.disposed_to) == (
            SHA, "done", moment, moment, "/done/a.jpg",
        )  # fmt: skip
        [job] = done.jobs
        assert (job.fingerprint, job.request, job.files, job.completed_at) == (
            FINGERPRINT, {"model": "V_2", "prompt": "a lamp"}, ("/out/a.poster.1.png",), moment,
        )  # fmt: skip
        assert job.response == {"data": [{"prompt": "a lamp at dusk", "seed": 3}]}
        found = journal.find_duplicate(SHA, "poster", FINGERPRINT)
        assert found is not None and found.id == 1
        compacted = journal.find_duplicate("12" * 32, "poster", "f1")
        assert compacted is not None and compacted.files == ("/out/old.poster.1.png", "/elsewhere/b.png")
        assert [(job.id, job.generation_id, job.generation_at) for job in journal.generating()] == [
            (2, "gen-1", moment)
        ]
        assert journal.spent(moment.date()) == Spend(images=4, usd=approx(0.32), unknown=1)
        assert (journal.counts()["done"], journal.counts()["claimed"], journal.job_counts()["written"]) == (1, 1, 1)
        assert [record.id for record in journal.unfinished()] == [2]
    finally:
        journal.close()
    assert stored(path, "SELECT typeof(claimed_at), typeof(sha256) FROM inputs") == [("integer", "blob")] * 2
    assert stored(path, "SELECT typeof(at) FROM spend") == [("integer",)] * 2
    # The tables made again have every index they had: status's recent failures, the claim check, ...
    indexes = {row[0] for row in stored(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"inputs_failed", "inputs_active", "inputs_path", "inputs_sha256", "jobs_busy", "spend_job"} <= indexes


def direct(path: Path, word: str) -> list[int]:
    """The inputs the search index itself says hold `word`."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT rowid FROM inputs_search WHERE inputs_search MATCH ?", (f'"{word}"',)).fetchall()
        assert db.execute("INSERT INTO inputs_search (inputs_search) VALUES ('integrity-check')") is not None
    db.close()
    return [row[0] for row in rows]


def test_the_search_keeps_no_copy_of_the_text_and_forgets_what_is_compacted(journal: SqliteJournal, path: Path) -> None:
    written(journal, "Lamp.jpg")
    written(journal, "chair.jpg", "ee" * 32, prompt="a chair")
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'inputs_search%'")}
    db.close()
    assert tables == {"inputs_search", "inputs_search_data", "inputs_search_idx", "inputs_search_config"}
    with reader(path) as pages:
        for text in ("lamp.JPG", "lamp at dusk", "a lamp", "LAMP.", "a la"):
            assert [record.relpath for record in pages.gallery(GalleryQuery(text=text)).inputs] == ["Lamp.jpg"], text
    assert direct(path, "lamp") == [1]
    assert journal.compact(START + timedelta(days=1), limit=1) == 1  # the lamp
    assert direct(path, "lamp") == []
    assert direct(path, "chair") == [2]


def test_a_resumed_input_planned_again_is_still_found(journal: SqliteJournal, path: Path) -> None:
    input_id = journal.claim(INBOX, "resumed.jpg", 10, 1)
    assert input_id is not None
    spec = JobSpec("poster", FINGERPRINT, "/remix", {"prompt": "a harbour"}, 1, 0.08)
    journal.add_jobs(input_id, [spec])
    journal.add_jobs(input_id, [spec])  # after a restart: already planned, nothing changes
    with reader(path) as pages:
        assert [record.id for record in pages.gallery(GalleryQuery(text="harbour")).inputs] == [input_id]
        assert [record.id for record in pages.gallery(GalleryQuery(text="resumed")).inputs] == [input_id]
    assert direct(path, "harbour") == [input_id]


def stored(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def test_times_are_stored_as_integers_hashes_as_their_bytes_and_fingerprints_by_number(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    """32 bytes of ISO text and 64 of hex, in each row and each index on it, were most of a year of journal."""
    clock.advance(0.000_001)
    job_id = written(journal, "lamp.jpg")
    kinds = "SELECT typeof(claimed_at), typeof(finished_at), typeof(sha256), length(sha256) FROM inputs"
    assert stored(path, kinds) == [("integer", "integer", "blob", 32)]
    times = "SELECT typeof(created_at), typeof(completed_at), typeof(fingerprint) FROM jobs"
    assert stored(path, times) == [("integer", "integer", "integer")]  # the fingerprint's number
    assert stored(path, "SELECT typeof(hash), length(hash) FROM fingerprints") == [("blob", 32)]
    assert stored(path, "SELECT typeof(at) FROM spend") == [("integer",)]
    record = journal.get_input(1)
    assert (record.sha256, record.claimed_at, record.jobs[0].fingerprint) == (SHA, clock.utcnow(), FINGERPRINT)
    assert journal.get_job(job_id).completed_at == clock.utcnow()  # to the microsecond
    duplicate = journal.find_duplicate(SHA, "poster", FINGERPRINT)
    assert duplicate is not None and duplicate.id == job_id


def test_a_compacted_result_keeps_its_files_by_folder_under_a_shorter_key(journal: SqliteJournal, path: Path) -> None:
    """2.75 million compacted results of a year mostly share a few thousand folders: each is named once."""
    written(journal, "lamp.jpg")
    written(journal, "chair.jpg", "ee" * 32)
    assert journal.compact(START + timedelta(days=1), limit=10) == 2
    rows = """SELECT length(key), f.path, p.tails, r.names FROM results r JOIN result_places p ON p.id = r.place
        JOIN result_folders f ON f.id = p.folder"""
    assert sorted(stored(path, rows)) == [
        (10, "/out", ".poster.1.png", "chair.jpg"), (10, "/out", ".poster.1.png", "lamp.jpg"),
    ]  # fmt: skip
    assert stored(path, "SELECT count(*) FROM result_places") == [(1,)]  # the folder and ending, named once
    found = journal.find_duplicate(SHA, "poster", FINGERPRINT)
    assert found is not None and (found.id, found.files) == (None, ("/out/lamp.jpg.poster.1.png",))


@pytest.mark.parametrize(
    "files",
    [
        (),
        ("/out/a.png",),
        ("/out/a.png", "/out/a.json"),
        ("/out/a.png", "/other/b.png", "/out/sub/c.png"),
        ("relative/a.png",),
        ("/out/a.png", "relative/b.png"),
        ("/out/[draft] a.png",),
        ("[draft] a.png",),
        ("/out/a.poster.1.png", "/out/a.poster.2.webp"),
        ("/out/[a].poster.1.png",),
        ("/out/a.b.poster.1.png", "/out/a.b.poster.2.png"),
        ("/out/a.poster.1.png", "/out/b.poster.2.png"),
        ("/out/a.poster.1.png", "/out/a.other.2.png"),
        ("/out/a.poster.1.png", "/out/sub/a.poster.2.png"),
        ("/out/.poster.1.png",),
        ("/out/a.poster.x.png",),
    ],
)
def test_a_compacted_result_gives_back_the_files_it_was_given(files: tuple[str, ...]) -> None:
    folder = result_folder(files)
    names = result_names(files, folder)
    assert result_files(folder, None, names) == files
    if folder is not None:
        assert result_files(folder, *reversed(result_tails(names, ("poster",)))) == files


def test_a_compacted_result_of_one_file_keeps_its_bare_name_and_those_kept_as_lists_still_read() -> None:
    assert result_names(("/out/a.poster.1.png",), "/out") == "a.poster.1.png"
    assert result_files("/out", None, '["a.poster.1.png"]') == ("/out/a.poster.1.png",)  # as an older remixd kept it


@pytest.mark.parametrize(
    ("names", "parts"),
    [
        ("a.poster.1.png", ("a", ".poster.1.png")),
        ('["a.b.poster.1.png", "a.b.poster.2.webp"]', ("a.b", '[".poster.1.png", ".poster.2.webp"]')),
        ("a.12345.1.png", ("a.12345.1.png", "")),  # a seed where the rule stands: no place of its own
        ("a-1.png", ("a-1.png", "")),  # an output name of another shape
        ('["a.poster.1.png", "b.poster.2.png"]', ('["a.poster.1.png", "b.poster.2.png"]', "")),
    ],
)
def test_a_result_s_names_keep_their_stem_when_they_end_as_the_default_output_name(
    names: str, parts: tuple[str, str]
) -> None:
    assert result_tails(names, ("poster",)) == parts


def test_a_search_too_short_for_the_index_looks_at_file_names_and_rule_names(
    journal: SqliteJournal, path: Path
) -> None:
    written(journal, "Lamp.jpg")
    planned(journal, "chair.jpg", "bw", "a lamp")
    with reader(path) as pages:
        assert [record.relpath for record in pages.gallery(GalleryQuery(text="BW")).inputs] == ["chair.jpg"]
        assert [record.relpath for record in pages.gallery(GalleryQuery(text="am")).inputs] == ["Lamp.jpg"]
        assert [record.relpath for record in pages.gallery(GalleryQuery(text="p.")).inputs] == ["Lamp.jpg"]


def used_bytes(path: Path) -> int:
    """What the journal's pages hold, the free ones not counted (they go back to the file system)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "freelist_count", "page_size")
        )
    db.close()
    return int((pages - free) * size)


FINISHED_INPUTS = 300
# 437 now; 492 before the columns no SQL reads of a packed job were packed, 655 with a search by trigrams, 737
# before the index by state was partial.
BYTES_PER_FINISHED_INPUT = 450


def test_a_finished_input_within_keep_days_costs_a_bounded_number_of_bytes(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    """A year of journal holds 905,000 finished inputs within keep_days: each byte of one is a megabyte there.
    Inputs as a real run leaves them (the full request and answer, slimmed when disposed of)."""
    empty = used_bytes(path)
    for number in range(FINISHED_INPUTS):
        relpath = f"shoot-{number // 100:03d}/photo-{number:06d}.jpg"
        input_id = journal.claim("/srv/shop/inbox", relpath, 100_000 + number, 1_700_000_000_000_000_000 + number)
        assert input_id is not None
        journal.set_hash(input_id, f"{number:064x}")
        prompt = f"A serene tropical beach, photo-{number:06d}"
        request = {"prompt": prompt, "model": "V_2", "aspect_ratio": "ASPECT_1_1", "seed": 12345}
        [job] = journal.add_jobs(input_id, [JobSpec("poster", FINGERPRINT, "/remix", request, 1, 0.08)])
        clock.advance(0.1 + number * 1e-6)  # sent, answered and written a while after: times that differ
        journal.start_submit(job.id)
        item = {"url": f"https://ideogram.example/{number}", "prompt": f"{prompt}, with palm trees", "seed": 12345,
                "resolution": "1024x1024", "is_image_safe": True}  # fmt: skip
        clock.advance(5.0 + number * 3e-6)
        journal.record_answer(job.id, {"created": "2025-03-01T12:00:00+00:00", "data": [item]})
        clock.advance(0.5 + number * 7e-6)
        journal.record_written(job.id, [f"/srv/shop/outbox/{relpath[:-4]}.poster.1.png"])
        journal.finish_input(input_id, "done")
        journal.set_disposed(input_id, "moved", f"/srv/shop/done/{relpath}")
    clock.advance(86_400)  # a day later: the upkeep sums yesterday's billed spend into its day
    assert journal.fold_spend(clock.utcnow().date(), FINISHED_INPUTS) == FINISHED_INPUTS
    per_input = (used_bytes(path) - empty) / FINISHED_INPUTS
    assert per_input <= BYTES_PER_FINISHED_INPUT, f"{per_input:.0f} bytes per finished input"
    last = journal.get_input(FINISHED_INPUTS)
    assert last.jobs[0].request == {"model": "V_2", "prompt": "A serene tropical beach, photo-000299"}
    assert last.jobs[0].response == {"data": [{"prompt": "A serene tropical beach, photo-000299, with palm trees",
                                               "resolution": "1024x1024", "seed": 12345}]}  # fmt: skip
    assert last.jobs[0].files == ("/srv/shop/outbox/shoot-002/photo-000299.poster.1.png",)
    assert last.disposed_to == "/srv/shop/done/shoot-002/photo-000299.jpg"


PACKED_VERSION = 17  # the schema before a finished job's request, answer and files were packed


def two_inputs(old: sqlite3.Connection, hashes: tuple[object, object, object], at: object) -> None:
    """Into an old journal: a.jpg done with its written job, b.jpg claimed with a generation pending; `hashes`
    (a.jpg's sha256, b.jpg's, the jobs' fingerprint) and `at` as that schema stored them."""
    sha, other, fingerprint = hashes
    old.execute(
        """INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at,
           finished_at, disposal, disposed_to) VALUES
           (1, ?1, 'a.jpg', 10, 5, ?2, 'done', ?3, ?3, ?3, 'moved', '/done/a.jpg'),
           (2, ?1, 'b.jpg', 11, 6, ?4, 'claimed', ?3, ?3, NULL, NULL, NULL)""",
        (INBOX, sha, at, other),
    )
    old.execute(
        """INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts,
           response, files, created_at, submitted_at, answered_at, completed_at, generation_id, generation_at) VALUES
           (1, 1, 'poster', ?1, '/remix', '{"model": "V_2", "prompt": "a lamp"}', 1, 0.08, 'written', 1,
            '{"data": [{"prompt": "a lamp at dusk", "seed": 3}]}', '["/out/a.poster.1.png"]', ?2, ?2, ?2, ?2,
            NULL, NULL),
           (2, 2, 'poster', ?1, '/v2/remix', '{"prompt": "b"}', 2, 0.16, 'generating', 1, NULL, '[]', ?2, ?2,
            NULL, NULL, 'gen-1', ?2)""",
        (fingerprint, at),
    )


def test_a_journal_of_the_schema_before_packing_opens_with_its_records(path: Path, clock: FakeClock) -> None:
    """Rows as the remixd before packing wrote them: a disposed input's job is packed, the rest stay as they
    were; the same records, duplicate check, generations, spend, counts, search and indexes."""
    at = 1_740_830_400_250_000  # 2025-03-01 12:00:00.25 UTC
    old = old_journal(path, PACKED_VERSION)
    two_inputs(old, (bytes.fromhex(SHA), bytes.fromhex("ef" * 32), bytes.fromhex(FINGERPRINT)), at)
    old.execute(
        """INSERT INTO spend (job_id, day, at, images, usd, status) VALUES
           (1, '2025-03-01', ?1, 1, 0.08, 'billed'), (2, '2025-03-01', ?1, 2, 0.16, 'sent')""",
        (at,),
    )
    old.close()

    journal = SqliteJournal(path, clock=clock)
    try:
        moment = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
        assert journal.get_input(1).disposed_to == "/done/a.jpg"
        assert journal.done_input(disposed_to="/done/a.jpg") == journal.get_input(1)
        [job] = journal.get_input(1).jobs
        assert (job.request, job.response, job.files, job.completed_at) == (
            {"model": "V_2", "prompt": "a lamp"}, {"data": [{"prompt": "a lamp at dusk", "seed": 3}]},
            ("/out/a.poster.1.png",), moment,
        )  # fmt: skip
        found = journal.find_duplicate(SHA, "poster", FINGERPRINT)
        assert found is not None and (found.id, found.files) == (1, ("/out/a.poster.1.png",))
        [generating] = journal.generating()
        assert (generating.id, generating.request, generating.files, generating.possible_payments) == (
            2, {"prompt": "b"}, (), 1,
        )  # fmt: skip
        assert journal.spent(moment.date()) == Spend(images=3, usd=approx(0.24), unknown=1)
        assert (journal.counts()["done"], journal.counts()["claimed"], journal.job_counts()["written"]) == (1, 1, 1)
        assert [record.id for record in journal.unfinished()] == [2]
        assert journal.compact(moment + timedelta(days=1), limit=10) == 1  # from its packed files
        compacted = journal.find_duplicate(SHA, "poster", FINGERPRINT)
        assert compacted is not None and (compacted.id, compacted.files) == (None, ("/out/a.poster.1.png",))
    finally:
        journal.close()
    assert direct(path, "lamp") == []  # the search forgot the compacted input, from its packed prompts
    indexes = {str(name): sql for name, sql in stored(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert {"jobs_busy", "jobs_duplicate_of", "jobs_withheld", "sqlite_autoindex_jobs_1"} <= set(indexes)
    assert "jobs_rule_input" not in indexes  # (input, rule) serves its queries
    assert indexes["inputs_sha256"] == "CREATE INDEX inputs_sha256 ON inputs (substr(sha256, 1, 8))"
    assert indexes["inputs_path"] == f"CREATE INDEX inputs_path ON inputs (relpath) WHERE {PATH_HELD}"
    assert stored(path, "SELECT id, request IS NULL, typeof(packed) FROM jobs") == [(2, 0, "null")]
    assert stored(path, "SELECT id, disposed_to, disposed_in FROM inputs") == [(2, None, None)]  # 1 compacted


def test_a_disposed_input_s_jobs_are_packed_and_found_by_the_search(journal: SqliteJournal, path: Path) -> None:
    written(journal, "lamp.jpg")
    assert stored(path, "SELECT request, response, files, typeof(packed) FROM jobs") == [(None, None, None, "blob")]
    with reader(path) as pages:
        [found] = pages.gallery(GalleryQuery(text="lamp at dusk")).inputs
    assert found.jobs[0].response == {"data": [{"prompt": "a lamp at dusk"}]}
    assert direct(path, "dusk") == [1]


def test_a_moved_input_keeps_its_destination_by_folder_unless_it_was_renamed(
    journal: SqliteJournal, path: Path
) -> None:
    """done/ + relpath, as most are, costs the folder's number; a destination renamed on the way stays whole."""
    written(journal, "sub/lamp.jpg")
    chair = journal.claim(INBOX, "chair.jpg", 10, 1)
    assert chair is not None
    journal.finish_input(chair, "failed", {"error": {"kind": "unreadable"}})
    journal.set_disposed(chair, "moved", "/failed/chair (2).jpg")
    assert stored(path, "SELECT disposed_to, disposed_in IS NOT NULL FROM inputs ORDER BY id") == [
        (None, 1), ("/failed/chair (2).jpg", 0),
    ]  # fmt: skip
    assert (journal.get_input(1).disposed_to, journal.get_input(chair).disposed_to) == (
        "/done/sub/lamp.jpg", "/failed/chair (2).jpg",
    )  # fmt: skip
    found = journal.done_input(disposed_to="/done/sub/lamp.jpg")
    assert found is not None and found.id == 1
    assert journal.done_input(disposed_to="/done/lamp.jpg") is None
    with reader(path) as pages:
        shown = pages.get_input(1)
        assert shown is not None and shown.disposed_to == "/done/sub/lamp.jpg"
        assert [record.disposed_to for record in pages.gallery(GalleryQuery()).inputs] == [
            "/failed/chair (2).jpg", "/done/sub/lamp.jpg",
        ]  # fmt: skip


STATES_VERSION = 22  # the schema before inputs were indexed by state only where not done


def test_a_journal_of_the_schema_before_the_partial_state_index_opens_with_its_counts(
    path: Path, clock: FakeClock
) -> None:
    """Rows as the remixd before wrote them: the same records, duplicate check, generations, spend, counts and
    search; the review page's counts per inbox are what the index of every input said, and then follow the rows."""
    at = 1_740_830_400_250_000  # 2025-03-01 12:00:00.25 UTC
    old = old_journal(path, STATES_VERSION - 1)
    two_inputs(old, (bytes.fromhex(SHA), bytes.fromhex("ef" * 32), bytes.fromhex(FINGERPRINT)), at)
    old.execute("INSERT INTO spend (job_id, day, at, images, usd, status) VALUES (2, '2025-03-01', ?, 2, 0.16, 'sent')",
                (at,))  # fmt: skip
    old.close()

    journal = SqliteJournal(path, clock=clock)
    try:
        moment = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
        [job] = journal.get_input(1).jobs
        assert (job.request, job.files, job.completed_at) == ({"model": "V_2", "prompt": "a lamp"},
                                                              ("/out/a.poster.1.png",), moment)  # fmt: skip
        found = journal.find_duplicate(SHA, "poster", FINGERPRINT)
        assert found is not None and found.id == 1
        assert [(job.id, job.possible_payments) for job in journal.generating()] == [(2, 1)]
        assert journal.spent(moment.date()) == Spend(images=2, usd=approx(0.16), unknown=1)
        assert journal.possible_payments() == Spend(images=2, usd=approx(0.16), unknown=1)
        assert (journal.counts()["done"], journal.counts()["claimed"]) == (1, 1)
        assert journal.oldest_claim() == moment
        with reader(path) as pages:
            assert pages.overview(moment, moment.date()).inboxes[INBOX] == {
                "claimed": 1, "done": 1, "duplicate": 0, "failed": 0, "vanished": 0, "retried": 0,
            }  # fmt: skip
            assert [record.id for record in pages.gallery(GalleryQuery(text="lamp at dusk")).inputs] == [1]
            assert [record.id for record in pages.gallery(GalleryQuery(state="claimed")).inputs] == [2]
        journal.finish_input(2, "failed", {"error": {"kind": "unreadable"}})
        assert journal.compact(moment + timedelta(days=1), limit=10) == 1  # a.jpg leaves the page's counts
        with reader(path) as pages:
            assert pages.overview(moment, moment.date()).inboxes[INBOX]["failed"] == 1
            assert "done" not in {state for state, count in pages.overview(moment, moment.date()).inboxes[INBOX].items()
                                  if count}  # fmt: skip
        assert [record.id for record in journal.failed_inputs()] == [2]
    finally:
        journal.close()
    indexes = {str(name): sql for name, sql in stored(path, "SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "inputs_inbox_state" not in indexes
    assert indexes["inputs_path"] == f"CREATE INDEX inputs_path ON inputs (relpath) WHERE {PATH_HELD}"
    assert str(indexes["inputs_state_id"]).endswith("WHERE state NOT IN ('done', 'duplicate')")


def test_queries_by_a_state_not_done_read_the_index_that_holds_only_those(journal: SqliteJournal, path: Path) -> None:
    """The index by state holds no done input (a year's millions of them); each query by another state says the
    index's condition, or it would read every row."""
    for number in range(3):
        written(journal, f"{number}.jpg", f"{number:064x}")
    failed = journal.claim(INBOX, "failed.jpg", 10, 1)
    assert failed is not None
    journal.finish_input(failed, "failed", {"error": {"kind": "unreadable"}})
    journal.claim(INBOX, "claimed.jpg", 10, 1)
    entries = "SELECT sum(ncell) FROM dbstat WHERE name = 'inputs_state_id' AND pagetype = 'leaf'"
    assert stored(path, entries) == [(2,)]  # the failed input and the claimed one
    found = plans(journal, journal.oldest_claim, journal.failed_inputs)
    with reader(path) as pages:
        connection = pages._db
        traced: list[str] = []
        connection.set_trace_callback(traced.append)
        for state in ("failed", "claimed", "retried"):
            assert len(pages.gallery(GalleryQuery(state=state)).inputs) == (state != "retried")
        connection.set_trace_callback(None)
        found += [" | ".join(row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql))
                  for sql in traced if "FROM inputs i WHERE" in sql]  # fmt: skip
    assert len(found) == 6, found
    for plan in found:
        assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), plan


def test_a_path_s_rows_are_found_by_the_index_of_relpaths(journal: SqliteJournal, path: Path) -> None:
    """The claim check, the companions' stem, a retry's earlier attempt, a kept input at a path and a renamed
    claim: each reads a few rows, never the year's (a done input moved away is looked for at its old place by
    reading the inputs claimed after any kept there: tests/unit/journal/test_paths.py)."""
    for number in range(3):
        written(journal, f"{number}.jpg", f"{number:064x}")
    kept = journal.claim(INBOX, "kept.jpg", 10, 1)
    assert kept is not None
    journal.finish_input(kept, "done")
    journal.set_disposed(kept, "kept")
    renamed = journal.claim(INBOX, "x.jpg", 10, 1)
    assert renamed is not None
    record = journal.get_input(renamed)
    found = plans(
        journal,
        lambda: journal.claim(INBOX, "0.jpg", 10, 1),
        lambda: journal.shares_companions(record),
        lambda: journal.earlier_payments(renamed),
        lambda: journal.done_input(at=(INBOX, "kept.jpg")),
        lambda: journal.forget_renamed(renamed),
    )
    assert len(found) >= 5, found
    waiting = "SCAN rerolls USING INDEX rerolls_pending"  # the rerolls no claim took yet: a few
    for plan in found:
        assert "SCAN" not in plan.replace("SCAN CONSTANT", "").replace(waiting, ""), plan
        assert "(inbox=?)" not in plan, plan  # by inbox alone: every row of the inbox
    with sqlite3.connect(path) as db:
        view = "EXPLAIN QUERY PLAN " + readonly._BLOCKING
        assert "SCAN" not in " | ".join(row[3] for row in db.execute(view, (INBOX, "0.jpg")))
    db.close()


FINGERPRINTS_VERSION = 24  # the schema that names jobs' fingerprints by number


def test_a_journal_of_the_schema_before_fingerprints_by_number_names_each_once_and_finds_its_duplicates(
    path: Path, clock: FakeClock
) -> None:
    """`remixd plan` reads a journal as it finds it (a daemon of the remixd before may still run): the duplicate
    check answers the same before and after the daemon brings the journal to the newer schema."""
    at = 1_740_830_400_250_000
    old = old_journal(path, FINGERPRINTS_VERSION - 1)
    two_inputs(old, (bytes.fromhex(SHA), bytes.fromhex("ef" * 32), bytes.fromhex(FINGERPRINT)), at)
    old.close()
    today = datetime(2025, 3, 1, tzinfo=UTC).date()

    def asked() -> tuple[bool, bool]:
        with readonly.read_journal(path, today) as view:
            return view.written(SHA, "poster", FINGERPRINT), view.written(SHA, "poster", "ab" * 32)

    assert asked() == (True, False)
    journal = SqliteJournal(path, clock=clock)
    try:
        assert [job.fingerprint for record in (journal.get_input(1), journal.get_input(2)) for job in record.jobs] == [
            FINGERPRINT, FINGERPRINT,
        ]  # fmt: skip
        found = journal.find_duplicate(SHA, "poster", FINGERPRINT)
        assert found is not None and found.id == 1
        assert journal.find_duplicate(SHA, "poster", "ab" * 32) is None
        claimed = journal.claim(INBOX, "c.jpg", 12, 7)
        assert claimed is not None
        [job] = journal.add_jobs(claimed, [JobSpec("poster", "ab" * 32, "/remix", {}, 1, 0.08)])
        assert job.fingerprint == "ab" * 32
    finally:
        journal.close()
    assert asked() == (True, False)
    assert stored(path, "SELECT id, hex(hash) FROM fingerprints ORDER BY id") == [
        (1, FINGERPRINT.upper()), (2, "AB" * 32),
    ]  # fmt: skip
    assert stored(path, "SELECT fingerprint FROM jobs ORDER BY id") == [(1,), (1,), (2,)]


def test_the_rule_filter_s_names_are_read_from_their_own_table_and_outlive_compaction(
    journal: SqliteJournal, path: Path
) -> None:
    """Every page of the review page lists the rules: read from the jobs, it read the index of a year's jobs."""
    written(journal, "lamp.jpg")
    chair = planned(journal, "chair.jpg", "bw", "a chair")
    journal.add_jobs(chair, [JobSpec("bw", FINGERPRINT, "/remix", {"prompt": "a chair"}, 1, 0.08)])  # again
    assert journal.compact(START + timedelta(days=1), limit=10) == 1  # the lamp's poster job is gone
    with reader(path) as pages:
        traced: list[str] = []
        pages._db.set_trace_callback(traced.append)
        assert pages.rules() == ["bw", "poster"]
        pages._db.set_trace_callback(None)
        [plan] = [" | ".join(row[3] for row in pages._db.execute("EXPLAIN QUERY PLAN " + sql)) for sql in traced]
    assert "jobs" not in plan and "rule_names" in plan, plan
