# literal expectations read best here; the subprocess runs sys.executable on a fixed script
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from remixd.clock import Clock
from remixd.errors import ErrorRecord, JournalError
from remixd.journal.database import INCREMENTAL, WAL_LIMIT_BYTES
from remixd.journal.records import Candidate, JobSpec, Journal, Reroll, Spend
from remixd.journal.schema import MIGRATIONS
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import approx

INBOX = "/srv/inbox"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Moments(Clock):
    """The journal reads only `utcnow`: a moment the test sets, in any time zone (or none)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def utcnow(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Moments:
    return Moments()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path, clock: Moments) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(path, clock=clock)
    yield opened
    opened.close()


def test_sqlite_journal_meets_the_protocol(journal: SqliteJournal) -> None:
    stages_see: Journal = journal  # checked by mypy --strict: the stages depend on the protocol only
    assert stages_see.counts()["claimed"] == 0


def spec(rule: str = "poster", fingerprint: str = "f1", images: int = 1, cost: float = 0.08) -> JobSpec:
    return JobSpec(
        rule=rule,
        fingerprint=fingerprint,
        endpoint="http://127.0.0.1:1/remix",
        request={"prompt": "a beach", "model": "V_2", "num_images": images},
        images=images,
        cost_usd=cost,
    )


def finish_written(journal: SqliteJournal, relpath: str, sha256: str, fingerprint: str = "f1") -> int:
    """An input taken all the way to written + done; returns its job id."""
    input_id = journal.claim(INBOX, relpath, 10, 1)
    assert input_id is not None
    journal.set_hash(input_id, sha256)
    [job] = journal.add_jobs(input_id, [spec(fingerprint=fingerprint)])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {"created": "x", "data": [{"url": "http://u/1"}]})
    journal.record_written(job.id, [f"/out/{relpath}.poster.1.png"])
    journal.finish_input(input_id, "done")
    return job.id


# -- claims --------------------------------------------------------------------------------------------------


def test_a_file_is_claimed_once(journal: SqliteJournal) -> None:
    first = journal.claim(INBOX, "a.jpg", 100, 5)
    assert first is not None
    assert journal.claim(INBOX, "a.jpg", 100, 5) is None
    assert journal.claim(INBOX, "a.jpg", 200, 6) is None  # still active: a change waits for the first to end
    assert journal.claim("/srv/other", "a.jpg", 100, 5) not in (None, first)
    assert journal.claim(INBOX, "b.jpg", 100, 5) not in (None, first)
    assert journal.get_input(first).state == "claimed"


def test_a_kept_input_is_not_redone_unless_it_changed(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5)
    assert input_id is not None
    journal.finish_input(input_id, "done")
    assert journal.claim(INBOX, "a.jpg", 100, 5) is None  # disposal pending: still active
    journal.set_disposed(input_id, "kept")
    assert journal.claim(INBOX, "a.jpg", 100, 5) is None
    assert journal.claim(INBOX, "a.jpg", 100, 6) is not None  # touched
    assert journal.claim(INBOX, "b.jpg", 100, 5) is not None


def test_a_reroll_of_a_kept_input_lets_exactly_one_claim_of_it_through(journal: SqliteJournal) -> None:
    done = journal.claim(INBOX, "a.jpg", 100, 5)
    assert done is not None
    journal.set_hash(done, "ab" * 32)
    journal.finish_input(done, "done")
    journal.set_disposed(done, "kept")
    reroll_id = journal.add_reroll(journal.get_input(done), seed=7)
    assert journal.waiting_rerolls() == {(INBOX, "a.jpg")}
    assert journal.claim(INBOX, "b.jpg", 100, 5) is not None  # another file takes nothing of it

    again = journal.claim(INBOX, "a.jpg", 100, 5)

    assert again is not None and journal.waiting_rerolls() == set()
    assert journal.take_reroll(again) == Reroll(reroll_id, 7, done)  # taken by the claim, before any hash
    assert journal.claim(INBOX, "a.jpg", 100, 5) is None  # in progress
    journal.finish_input(again, "done")
    journal.set_disposed(again, "kept")
    assert journal.claim(INBOX, "a.jpg", 100, 5) is None  # kept again: the reroll was carried out once
    assert journal.done_input(at=(INBOX, "a.jpg")) == journal.get_input(again)


def test_a_kept_file_changed_since_its_reroll_was_asked_for_never_takes_it(journal: SqliteJournal) -> None:
    done = journal.claim(INBOX, "a.jpg", 100, 5)
    assert done is not None
    journal.set_hash(done, "ab" * 32)
    journal.finish_input(done, "done")
    journal.set_disposed(done, "kept")
    journal.add_reroll(journal.get_input(done), seed=7)
    edited = journal.claim(INBOX, "a.jpg", 120, 6)  # rewritten: a new input of its own
    assert edited is not None
    journal.set_hash(edited, "cd" * 32)
    assert journal.take_reroll(edited) is None
    journal.finish_input(edited, "done")
    journal.set_disposed(edited, "kept")

    assert journal.claim(INBOX, "a.jpg", 120, 6) is None  # the reroll was of other bytes: it lets nothing in


def test_an_image_shares_its_companions_with_an_unfinished_one_of_its_folder_and_stem(
    journal: SqliteJournal,
) -> None:
    txt = (("mug.txt", "a mug"),)

    def claimed(relpath: str, companions: tuple[tuple[str, str], ...] = txt) -> int:
        [input_id] = journal.claim_many([Candidate(INBOX, relpath, 1, 1, START, companions)])
        assert input_id is not None
        return input_id

    jpg = claimed("sub/mug.jpg")
    for other in ("sub/mug.tar.gz", "mug.png", "sub/mug.x/mug.png", "sub/mugs.png"):  # not its stem or folder
        claimed(other)
    claimed("sub/mug.gif", (("mug.yaml", "seed: 1"),))  # its stem, other companions
    assert not journal.shares_companions(journal.get_input(jpg))
    png = claimed("sub/mug.png")
    assert journal.shares_companions(journal.get_input(jpg))
    journal.finish_input(png, "failed")
    assert journal.shares_companions(journal.get_input(jpg))  # its disposal is still to come
    journal.set_disposed(png, "moved", "/srv/failed/sub/mug.png")
    assert not journal.shares_companions(journal.get_input(jpg))


def test_a_moved_input_dropped_again_under_its_name_is_a_new_input(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5)
    assert input_id is not None
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, "moved", "/srv/done/a.jpg")
    again = journal.claim(INBOX, "a.jpg", 100, 5)
    assert again is not None
    assert again != input_id
    assert journal.get_input(input_id).disposed_to == "/srv/done/a.jpg"


def test_claims_survive_a_restart(path: Path, clock: Moments) -> None:
    first = SqliteJournal(path, clock=clock)
    active = first.claim(INBOX, "a.jpg", 100, 5)
    kept = first.claim(INBOX, "k.jpg", 100, 5)
    assert active is not None
    assert kept is not None
    first.finish_input(kept, "done")
    first.set_disposed(kept, "kept")
    first.close()
    second = SqliteJournal(path, clock=clock)
    try:
        assert second.claim(INBOX, "a.jpg", 100, 5) is None
        assert second.claim(INBOX, "k.jpg", 100, 5) is None
        assert second.claim(INBOX, "n.jpg", 100, 5) is not None
    finally:
        second.close()


def test_claim_many_never_queues_a_file_twice_even_within_one_batch(journal: SqliteJournal) -> None:
    seen = Candidate(INBOX, "a.jpg", 1, 1, START)
    ids = journal.claim_many([seen, Candidate(INBOX, "b.jpg", 1, 1, START), seen])
    assert ids[0] is not None
    assert ids[1] is not None
    assert ids[2] is None
    assert journal.claim_many([seen]) == [None]


def test_threads_claiming_the_same_files_get_each_once(journal: SqliteJournal) -> None:
    won: list[int] = []
    lock = threading.Lock()

    def claim_all() -> None:
        for number in range(200):
            input_id = journal.claim(INBOX, f"{number}.jpg", 1, 1)
            if input_id is not None:
                with lock:
                    won.append(input_id)

    threads = [threading.Thread(target=claim_all) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(won) == 200
    assert len(set(won)) == 200


def test_twenty_thousand_claims_in_bulk(journal: SqliteJournal) -> None:
    candidates = [Candidate(INBOX, f"folder{n % 50}/image {n}.jpg", n, n, START) for n in range(20_000)]
    started = time.perf_counter()
    ids = journal.claim_many(candidates)
    elapsed = time.perf_counter() - started
    rescan_started = time.perf_counter()
    again = journal.claim_many(candidates)
    rescan_elapsed = time.perf_counter() - rescan_started
    print(f"claim_many: 20000 claims {elapsed:.3f}s, 20000 refused {rescan_elapsed:.3f}s")
    assert len(set(ids)) == 20_000
    assert None not in ids
    assert again == [None] * 20_000
    assert journal.counts()["claimed"] == 20_000


# -- jobs ----------------------------------------------------------------------------------------------------


def test_a_job_goes_through_its_states_with_timings(journal: SqliteJournal, clock: Moments) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5, detected_at=START - timedelta(seconds=3))
    assert input_id is not None
    journal.set_hash(input_id, "ab" * 32)
    [job] = journal.add_jobs(input_id, [spec(images=2, cost=0.16)])
    assert (job.state, job.attempts, job.images, job.request["prompt"]) == ("pending", 0, 2, "a beach")
    clock.advance(seconds=1)
    journal.start_submit(job.id)
    submitted = journal.get_job(job.id)
    assert (submitted.state, submitted.attempts, submitted.submitted_at) == ("submitting", 1, clock.now)
    clock.advance(seconds=5)
    response = {
        "created": "2025-03-01T12:00:06+00:00",
        "data": [{"url": "http://u/1"}, {"url": "http://u/2"}],
    }
    journal.record_answer(job.id, response)
    answered = journal.get_job(job.id)
    assert (answered.state, answered.response, answered.answered_at) == ("answered", response, clock.now)
    clock.advance(seconds=1)
    journal.record_written(job.id, ["/out/a.poster.1.png", "/out/a.poster.2.png"])
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, "moved", "/done/a.jpg")
    record = journal.get_input(input_id)
    assert record.state == "done"
    assert record.sha256 == "ab" * 32
    assert record.detected_at == START - timedelta(seconds=3)
    assert record.finished_at == clock.now
    assert record.disposal == "moved"
    assert record.jobs[0].state == "written"
    assert record.jobs[0].files == ("/out/a.poster.1.png", "/out/a.poster.2.png")
    assert record.jobs[0].completed_at == clock.now
    assert journal.unfinished() == []


def test_add_jobs_is_idempotent_per_rule(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5)
    assert input_id is not None
    first = journal.add_jobs(input_id, [spec("poster"), spec("square")])
    again = journal.add_jobs(input_id, [spec("poster"), spec("square")])
    assert [job.id for job in first] == [job.id for job in again]
    assert len(journal.get_input(input_id).jobs) == 2


def test_failures_keep_an_answer_and_never_lose_it(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [spec()])
    journal.start_submit(job.id)
    busy = ErrorRecord("api_unavailable", "429", "wait", http_status=429)
    retry = journal.record_job_failure(job.id, busy, final=False)
    assert (retry.state, retry.last_error, retry.completed_at) == ("pending", busy, None)
    journal.start_submit(job.id)
    assert journal.get_job(job.id).attempts == 2
    journal.record_answer(job.id, {"data": [{"url": "http://u/1"}]})
    download = ErrorRecord("api_unavailable", "reset")
    kept = journal.record_job_failure(job.id, download, final=False)
    assert kept.state == "answered"  # the download is retried; the request is never sent again
    assert kept.response == {"data": [{"url": "http://u/1"}]}
    expired = ErrorRecord("url_expired", "410", http_status=410, response={"detail": "expired"})
    failed = journal.record_job_failure(job.id, expired, final=True)
    assert (failed.state, failed.last_error) == ("failed", expired)


def test_a_transition_the_state_machine_forbids_is_refused(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 100, 5)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [spec()])
    with pytest.raises(JournalError, match="pending, expected submitting"):
        journal.record_answer(job.id, {})
    with pytest.raises(JournalError):
        journal.record_written(job.id, [])
    journal.finish_input(input_id, "failed", {"kind": "input", "message": "bad", "hint": ""})
    with pytest.raises(JournalError):
        journal.finish_input(input_id, "done")
    with pytest.raises(JournalError, match="no job 999"):
        journal.start_submit(999)
    assert journal.get_job(job.id).state == "pending"  # a refused change leaves no trace


# -- crash recovery ------------------------------------------------------------------------------------------


def test_unfinished_after_a_crash_lists_what_to_resume(path: Path, clock: Moments) -> None:
    crashed = SqliteJournal(path, clock=clock)
    answered = crashed.claim(INBOX, "answered.jpg", 1, 1)
    pending_move = crashed.claim(INBOX, "pending-move.jpg", 1, 1)
    disposed = crashed.claim(INBOX, "disposed.jpg", 1, 1)
    fresh = crashed.claim(INBOX, "fresh.jpg", 1, 1)
    assert None not in (answered, pending_move, disposed, fresh)
    assert answered is not None and pending_move is not None and disposed is not None
    [job] = crashed.add_jobs(answered, [spec()])
    crashed.start_submit(job.id)
    crashed.record_answer(job.id, {"data": [{"url": "http://u/1"}]})
    crashed.finish_input(pending_move, "done")
    crashed.finish_input(disposed, "done")
    crashed.set_disposed(disposed, "deleted")
    # No close(): the process "died". A second journal opens the same file meanwhile.
    reopened = SqliteJournal(path, clock=clock)
    try:
        unfinished = {record.relpath: record for record in reopened.unfinished()}
        assert sorted(unfinished) == ["answered.jpg", "fresh.jpg", "pending-move.jpg"]
        [resumed] = unfinished["answered.jpg"].jobs
        assert (resumed.state, resumed.response) == ("answered", {"data": [{"url": "http://u/1"}]})
        assert unfinished["pending-move.jpg"].disposal == "pending"
        assert unfinished["fresh.jpg"].jobs == ()
        assert reopened.claim(INBOX, "answered.jpg", 1, 1) is None
    finally:
        reopened.close()
        crashed.close()


def test_an_answer_survives_kill_9(path: Path, clock: Moments) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from remixd.journal.sqlite import SqliteJournal
        from remixd.journal.records import JobSpec
        journal = SqliteJournal(Path({str(path)!r}))
        input_id = journal.claim("/in", "a.jpg", 1, 1)
        [job] = journal.add_jobs(input_id, [JobSpec("poster", "f", "e", {{}}, 1, 0.08)])
        journal.start_submit(job.id)
        journal.record_answer(job.id, {{"data": [{{"url": "http://u/1"}}]}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)
    assert finished.returncode == -9, finished.stderr
    reopened = SqliteJournal(path, clock=clock)
    try:
        [record] = reopened.unfinished()
        assert record.jobs[0].state == "answered"
        assert record.jobs[0].response == {"data": [{"url": "http://u/1"}]}
        yesterday = datetime.now(UTC).date() - timedelta(days=1)  # the child used the real clock
        assert reopened.spent_since(yesterday, datetime.now(UTC).date()).images == 1
    finally:
        reopened.close()


# -- duplicates ----------------------------------------------------------------------------------------------


def test_duplicates_are_found_by_content_rule_and_request(journal: SqliteJournal) -> None:
    sha = "cd" * 32
    earlier = finish_written(journal, "a.jpg", sha)
    found = journal.find_duplicate(sha, "poster", "f1")
    assert found is not None
    assert found.id == earlier
    assert journal.find_duplicate(sha, "poster", "f2") is None
    assert journal.find_duplicate(sha, "square", "f1") is None
    assert journal.find_duplicate("ef" * 32, "poster", "f1") is None

    later = journal.claim(INBOX, "copy of a.jpg", 10, 1)
    assert later is not None
    journal.set_hash(later, sha)
    [job] = journal.add_jobs(later, [spec()])
    journal.mark_duplicate(job.id, found)
    duplicate = journal.get_job(job.id)
    assert (duplicate.state, duplicate.duplicate_of) == ("duplicate", earlier)
    assert duplicate.files == ("/out/a.jpg.poster.1.png",)
    assert journal.find_duplicate(sha, "poster", "f1") == found  # the original, not the duplicate


def test_a_job_not_yet_written_is_no_duplicate_source(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "a.jpg", 1, 1)
    assert input_id is not None
    journal.set_hash(input_id, "aa" * 32)
    [job] = journal.add_jobs(input_id, [spec()])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {})
    assert journal.find_duplicate("aa" * 32, "poster", "f1") is None


# -- budget --------------------------------------------------------------------------------------------------


def answer(journal: SqliteJournal, relpath: str, images: int, cost: float) -> int:
    input_id = journal.claim(INBOX, relpath, 1, 1)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [spec(images=images, cost=cost)])
    journal.start_submit(job.id)
    journal.record_answer(job.id, {})
    return job.id


def test_spend_counts_every_request_sent_by_utc_day(journal: SqliteJournal, clock: Moments) -> None:
    clock.now = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)
    answer(journal, "a.jpg", 2, 0.16)
    never_answered = journal.claim(INBOX, "b.jpg", 1, 1)
    assert never_answered is not None
    [job] = journal.add_jobs(never_answered, [spec(images=4, cost=0.32)])
    journal.start_submit(job.id)  # sent, never answered: it may have been billed, so it counts
    clock.advance(minutes=2)
    answered_twice = answer(journal, "c.jpg", 1, 0.1)
    journal.start_submit(answered_twice)  # resubmitted after its URLs expired: billed again
    journal.record_answer(answered_twice, {})
    # 01:30 at UTC+2 is 23:30 UTC the day before
    clock.now = datetime(2025, 3, 3, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    answer(journal, "d.jpg", 3, 0.3)
    assert journal.spent(date(2025, 3, 1)) == Spend(images=2 + 4, usd=approx(0.48), unknown=1)
    assert journal.spent(date(2025, 3, 2)) == Spend(images=1 + 1 + 3, usd=approx(0.5), unknown=0)
    assert journal.spent(date(2025, 3, 3)).images == 0
    assert journal.possible_payments() == Spend(images=4, usd=approx(0.32), unknown=1)
    assert journal.get_job(job.id).possible_payments == 1


def test_a_run_across_midnight_utc_counts_its_spend_on_both_days(journal: SqliteJournal, clock: Moments) -> None:
    # A request stays on the day it was sent, answered after midnight or never: a check of one day against the
    # API's ledger (which has no days) misses the rest, as a kill storm that crossed midnight did ("300 <= 274").
    clock.now = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
    late = journal.claim(INBOX, "late.jpg", 1, 1)
    assert late is not None
    [job] = journal.add_jobs(late, [spec(images=2, cost=0.16)])
    journal.start_submit(job.id)
    clock.advance(seconds=2)
    journal.record_answer(job.id, {})
    answer(journal, "next.jpg", 1, 0.08)
    never_answered = journal.claim(INBOX, "caught.jpg", 1, 1)
    assert never_answered is not None
    [caught] = journal.add_jobs(never_answered, [spec(images=1, cost=0.08)])
    journal.start_submit(caught.id)
    assert journal.spent(date(2025, 3, 2)) == Spend(images=2, usd=approx(0.16), unknown=1)
    both = journal.spent_since(date(2025, 3, 1), date(2025, 3, 2))
    assert both == Spend(images=4, usd=approx(0.32), unknown=1)
    assert both.images - journal.possible_payments().images == 3  # every answered request, once


def test_an_answer_that_says_nothing_ran_withdraws_the_payment(journal: SqliteJournal, clock: Moments) -> None:
    today = clock.now.date()
    input_id = journal.claim(INBOX, "a.jpg", 1, 1)
    assert input_id is not None
    [job] = journal.add_jobs(input_id, [spec(images=2, cost=0.16)])
    journal.start_submit(job.id)
    assert journal.spent(today) == Spend(images=2, usd=approx(0.16), unknown=1)
    busy = ErrorRecord("api_unavailable", "429 inflight_limit", http_status=429)
    journal.record_job_failure(job.id, busy, final=False, not_billed=True)
    assert journal.spent(today) == Spend(images=0, usd=0.0, unknown=0)
    journal.start_submit(job.id)
    reset = ErrorRecord("api_unavailable", "the connection broke after the request was sent")
    journal.record_job_failure(job.id, reset, final=False)  # it may have run: still counted, as unknown
    journal.start_submit(job.id)
    journal.record_answer(job.id, {}, images=2, cost_usd=0.16)
    assert journal.spent(today) == Spend(images=4, usd=approx(0.32), unknown=1)
    assert journal.get_job(job.id).possible_payments == 1


def test_a_first_schema_journal_counts_its_requests_caught_in_flight(path: Path, clock: Moments) -> None:
    path.parent.mkdir(parents=True)
    first = sqlite3.connect(path)
    first.executescript(";".join([*MIGRATIONS[0], "CREATE TABLE schema_version (version INTEGER NOT NULL)"]))
    moment = "2025-03-01T12:00:00.000000+00:00"
    first.execute("INSERT INTO schema_version VALUES (1)")
    first.execute(
        "INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, state, detected_at, claimed_at) "
        "VALUES (1, ?, 'a.jpg', 1, 1, 'claimed', ?, ?)",
        (INBOX, moment, moment),
    )
    first.execute(
        "INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts, "
        "created_at, submitted_at) VALUES (1, 1, 'poster', 'f1', 'e', '{}', 2, 0.16, 'submitting', 1, ?, ?)",
        (moment, moment),
    )
    first.commit()
    first.close()
    journal = SqliteJournal(path, clock=clock)
    try:
        assert journal.spent(date(2025, 3, 1)) == Spend(images=2, usd=approx(0.16), unknown=1)
        assert journal.get_job(1).possible_payments == 1
    finally:
        journal.close()


# -- operator views ------------------------------------------------------------------------------------------


def test_recent_failures_read_the_newest_not_every_failure(journal: SqliteJournal, clock: Moments) -> None:
    # A year of journal holds thousands of failed inputs; status shows ten, and must not sort them all first.
    unreadable = {"kind": "input", "message": "not an image", "hint": "drop a JPEG"}
    for number in range(2000):
        clock.advance(seconds=1)
        claimed = journal.claim(INBOX, f"bad{number}.jpg", 1, number)
        assert claimed is not None
        journal.finish_input(claimed, "failed", unreadable)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    journal._db._connection.set_progress_handler(count, 100)  # every 100 SQLite VM instructions
    failures = journal.recent_failures(10)
    assert [failure.relpath for failure in failures] == [f"bad{number}.jpg" for number in range(1999, 1989, -1)]
    assert steps[0] < 20, f"{steps[0] * 100} VM instructions for ten failures: every failed input was read"


def test_counts_failures_and_retry(journal: SqliteJournal, clock: Moments) -> None:
    finish_written(journal, "ok.jpg", "11" * 32)
    bad_input = journal.claim(INBOX, "broken.jpg", 1, 1)
    rejected = journal.claim(INBOX, "rejected.jpg", 1, 1)
    journal.claim(INBOX, "working.jpg", 1, 1)
    assert bad_input is not None
    assert rejected is not None
    unreadable = {"kind": "input", "message": "not an image", "hint": "drop a JPEG"}
    journal.finish_input(bad_input, "failed", unreadable)
    journal.set_disposed(bad_input, "moved", "/failed/broken.jpg")
    clock.advance(minutes=1)
    [job] = journal.add_jobs(rejected, [spec("square")])
    journal.start_submit(job.id)
    safety = ErrorRecord("api_rejected", "422 unsafe image", http_status=422)
    journal.record_job_failure(job.id, safety, final=True)
    journal.finish_input(rejected, "failed", {"error": safety.to_json()})
    journal.set_disposed(rejected, "moved", "/failed/rejected.jpg")

    counts = journal.counts()
    assert (counts["done"], counts["failed"], counts["claimed"], counts["duplicate"]) == (1, 2, 1, 0)
    assert journal.job_counts()["written"] == 1
    assert journal.job_counts()["failed"] == 1
    failures = journal.recent_failures(10)
    assert [(f.relpath, f.rule, f.error) for f in failures] == [
        ("rejected.jpg", "square", safety),
        ("broken.jpg", None, ErrorRecord("input", "not an image", "drop a JPEG")),
    ]
    assert failures[0].failed_at == clock.now
    assert len(journal.recent_failures(1)) == 1
    assert [record.relpath for record in journal.failed_inputs()] == ["broken.jpg", "rejected.jpg"]

    assert journal.reset_for_retry(bad_input) is True
    assert journal.reset_for_retry(bad_input) is False
    assert [record.relpath for record in journal.failed_inputs()] == ["rejected.jpg"]
    assert journal.claim(INBOX, "broken.jpg", 1, 1) is not None  # moved back by `remixd retry`


def test_a_vanished_input_needs_no_disposal(journal: SqliteJournal) -> None:
    input_id = journal.claim(INBOX, "gone.jpg", 1, 1)
    assert input_id is not None
    journal.finish_input(input_id, "vanished")
    assert journal.unfinished() == []
    assert journal.claim(INBOX, "gone.jpg", 1, 1) is not None


# -- the file itself -----------------------------------------------------------------------------------------


def test_the_file_is_wal_with_a_schema_version(journal: SqliteJournal, path: Path, clock: Moments) -> None:
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL
        assert other.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    reopened = SqliteJournal(path, clock=clock)  # opening again migrates nothing
    reopened.close()
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        other.execute("INSERT INTO schema_version VALUES (99)")
    other.close()
    with pytest.raises(JournalError, match="newer than this remixd"):
        SqliteJournal(path, clock=clock)


def test_an_unwritable_state_dir_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(JournalError, match="cannot open the journal") as caught:
        SqliteJournal(blocker / "journal.sqlite3")
    assert "writable" in caught.value.hint


def test_a_file_that_is_not_a_journal_is_a_journal_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(JournalError, match=r"is damaged \(file is not a database\)"):
        SqliteJournal(path)


def test_only_the_page_check_reads_every_page_for_damage(path: Path) -> None:
    """The whole-file check takes seconds on a year of journal: opening it (`remixd status`, the daemon's start
    before READY=1) does not wait for it."""
    journal = SqliteJournal(path)
    journal.claim_many([Candidate(INBOX, f"photo-{n:05d}-{'x' * 60}.jpg", n, n, START) for n in range(2_000)])
    journal.close()
    pages = path.stat().st_size // 4096
    with path.open("r+b") as file:  # a torn page deep in the inputs, which opening alone never reads
        file.seek((pages - 2) * 4096)
        file.write(b"\xde\xad" * 2048)
    journal = SqliteJournal(path)
    try:
        with pytest.raises(JournalError, match="is damaged"):
            journal.check_pages(lambda: False)
    finally:
        journal.close()


def test_a_page_check_cancelled_says_nothing_of_the_pages(
    journal: SqliteJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remixd.journal import database

    monkeypatch.setattr(database, "CHECK_STEPS", 1)  # a small journal is checked in fewer steps than a slice
    steps = iter([True])  # the daemon stopping cancels it at its first step
    assert journal.check_pages(lambda: next(steps)) is False
    assert journal.check_pages(lambda: False) is True


def test_a_naive_clock_is_refused(path: Path) -> None:
    journal = SqliteJournal(path, clock=Moments(datetime(2025, 1, 1)))  # naive on purpose
    try:
        with pytest.raises(ValueError, match="naive"):
            journal.claim(INBOX, "a.jpg", 1, 1)
    finally:
        journal.close()


def test_the_wal_stays_bounded_under_steady_writes(journal: SqliteJournal, path: Path) -> None:
    """A WAL left at its high-water mark ate the space freed on a small state fs: it is checkpointed and cut."""
    wal = Path(f"{path}-wal")
    for batch in range(60):  # about 12 MB of rows, in transactions the size of a busy scan's
        journal.claim_many([Candidate(INBOX, f"b{batch}/{n:04d}-{'x' * 120}.jpg", n, n, START) for n in range(400)])
    for number in range(300):  # then a quiet spell of single claims, a few checkpoints' worth
        journal.claim(INBOX, f"quiet/{number}.jpg", 1, 1)
    assert wal.stat().st_size <= WAL_LIMIT_BYTES + 64 * 1024  # not the high-water mark of the busy spell


def test_a_claim_renamed_before_any_work_is_forgotten_for_its_new_claim_not_left_vanished(
    journal: SqliteJournal,
) -> None:
    first = journal.claim("/in", "a.jpg", 100, 7)
    moved = journal.claim("/in", "b.jpg", 100, 7)  # `mv a.jpg b.jpg`: same size and mtime, a new name
    other = journal.claim("/in", "c.jpg", 100, 8)
    assert first is not None and moved is not None and other is not None
    assert journal.forget_renamed(first) == "b.jpg"
    assert [record.relpath for record in journal.unfinished()] == ["b.jpg", "c.jpg"]
    assert journal.counts()["claimed"] == 2 and journal.counts()["vanished"] == 0
    assert journal.forget_renamed(other) is None  # no later claim of the same file: it did vanish
    journal.add_jobs(moved, [spec()])
    assert journal.claim("/in", "d.jpg", 100, 7) is not None  # and renamed again
    assert journal.forget_renamed(moved) is None  # work was planned for it: it stays, whatever happens


def test_a_rename_is_told_by_the_files_device_and_inode_where_the_platform_gives_them(
    journal: SqliteJournal,
) -> None:
    """A copy that kept the mtime (`cp -p a.jpg copy.jpg`, then a.jpg removed) is not a.jpg renamed."""
    [first, copy] = journal.claim_many(
        [
            Candidate("/in", "a.jpg", 100, 7, START, file_id=(1, 100)),
            Candidate("/in", "copy.jpg", 100, 7, START, file_id=(1, 200)),
        ]
    )
    assert first is not None and copy is not None
    assert journal.forget_renamed(first) is None  # a.jpg vanished: it is reported so, not hidden as a rename
    assert journal.claim_many([Candidate("/in", "b.jpg", 100, 7, START, file_id=(1, 100))])[0] is not None
    assert journal.forget_renamed(first) == "b.jpg"  # the same file under a new name
    unknown = journal.claim("/in", "c.jpg", 100, 8)  # a platform without inodes: size and mtime decide
    assert unknown is not None and journal.claim("/in", "d.jpg", 100, 8) is not None
    assert journal.forget_renamed(unknown) == "d.jpg"
