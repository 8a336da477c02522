"""A finished job packed (journal.packing) reads back as the record it was, whichever dictionary packed it."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from remixd.errors import ErrorRecord
from remixd.journal.browse import GalleryQuery, reader
from remixd.journal.compact import slim_answer, slim_request
from remixd.journal.records import JobRecord, JobSpec
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, old_journal

INBOX = "/srv/inbox"
FINGERPRINT = "cd" * 32
PACKED_VERSION = 17  # the schema before a finished job's request, answer and files were packed


def stored(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(sql).fetchall()
    db.close()
    return rows


def claimed(journal: SqliteJournal, relpath: str, spec: JobSpec) -> tuple[int, JobRecord]:
    input_id = journal.claim(INBOX, relpath, 10, 1)
    assert input_id is not None
    journal.set_hash(input_id, f"{len(relpath):064x}")
    [job] = journal.add_jobs(input_id, [spec])
    return input_id, job


def disposed(journal: SqliteJournal, input_id: int, job_id: int) -> JobRecord:
    """The job as it was just before its input was disposed of (whole), as the packed one should read."""
    whole = journal.get_job(job_id)
    journal.finish_input(input_id, "done")
    journal.set_disposed(input_id, "moved", f"/done/{input_id}.jpg")
    assert whole.response is not None
    slim = slim_answer(whole.response, whole.request.get("prompt"))
    slimmed = dataclasses.replace(whole, request=slim_request(whole.request), response=slim)
    return dataclasses.replace(slimmed, generation_id=None, generation_seed=None)


def test_a_legacy_job_packed_gives_back_every_field_it_had(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    """Sent twice (an error between), its download failed once, files in two folders: all of it packed."""
    spec = JobSpec("poster", FINGERPRINT, "/remix", {"prompt": "a lamp", "model": "V_2", "seed": 7}, 2, 0.16)
    input_id, job = claimed(journal, "lamp.jpg", spec)
    for seconds, step in (
        (0.1, lambda: journal.start_submit(job.id)),
        (2.5, lambda: journal.record_job_failure(job.id, ErrorRecord("api_unavailable", "503", "later"), final=False)),
        (30.0, lambda: journal.start_submit(job.id)),
        (5.2, lambda: journal.record_answer(job.id, {"data": [{"prompt": "a lamp at dusk", "seed": 9}, {"seed": 10}]})),
        (0.3, lambda: journal.record_job_failure(job.id, ErrorRecord("download", "reset", "again"), final=False)),
        (0.6, lambda: journal.record_written(job.id, ["/out/a/lamp.poster.1.png", "/out/a/lamp.poster.2.png",
                                                      "/elsewhere/lamp.poster.2.json"])),
    ):  # fmt: skip
        clock.advance(seconds + 0.000_007)
        step()
    expected = disposed(journal, input_id, job.id)
    assert (expected.attempts, expected.last_error) == (2, ErrorRecord("download", "reset", "again"))
    assert journal.get_job(job.id) == expected
    with reader(path) as pages:
        [shown] = pages.gallery(GalleryQuery()).inputs
        assert shown.jobs == (expected,)
    # What no SQL reads of it is in its packed value, its row's columns hold what costs no bytes.
    moved = "SELECT endpoint, cost_usd, attempts, last_error, created_at, submitted_at, answered_at, generation_id"
    assert stored(path, moved + ", packed IS NOT NULL, files FROM jobs") == [
        ("", 0.0, 0, None, 0, None, None, None, 1, None)
    ]
    assert stored(path, "SELECT path FROM jobs JOIN result_folders ON result_folders.id = files_in") == [("/out/a",)]
    assert stored(path, "SELECT substr(packed, 1, 1) FROM jobs") == [(b"\x02",)]  # dictionary 2


def test_a_v2_job_and_its_duplicate_packed_give_back_every_field(
    journal: SqliteJournal, path: Path, clock: FakeClock
) -> None:
    """A generation's id, time and seed; a clock stepped back before it was written; a duplicate never sent."""
    request = {"prompt": "a chair", "model": "ideogram-4", "rendering_speed": "default"}
    spec = JobSpec("square", FINGERPRINT, "/v2/image/remix/ideogram-4", request, 1, 0.06, cost_source="quote")
    input_id, job = claimed(journal, "chair.jpg", spec)
    clock.advance(0.1)
    journal.start_submit(job.id)
    clock.advance(0.8)
    journal.record_generation(job.id, "Zm9vYmFyYmF6cXV4cXV1eA", 2_147_483_000, images=1)
    clock.advance(41.7)
    journal.record_answer(job.id, {"data": [{"prompt": "a chair, oak", "seed": 3, "resolution": "2048x2048"}]})
    clock.advance(-3.25)  # the wall clock set back: written "before" it was answered
    journal.record_written(job.id, ["/out/chair.square.1.png"])
    whole = journal.get_job(job.id)
    assert (whole.generation_id, whole.generation_seed, whole.cost_source) == (
        "Zm9vYmFyYmF6cXV4cXV1eA", 2_147_483_000, "quote",
    )  # fmt: skip
    assert whole.generation_at == datetime(2025, 3, 1, 12, 0, 0, 900_000, tzinfo=UTC)
    expected = disposed(journal, input_id, job.id)
    packed = journal.get_job(job.id)
    assert packed == expected  # all but its generation's id and seed, which the sidecars name
    assert (packed.generation_id, packed.generation_at, packed.generation_seed) == (None, whole.generation_at, None)

    again, duplicate = claimed(journal, "chair (copy).jpg", spec)
    earlier = journal.find_duplicate(f"{len('chair.jpg'):064x}", "square", FINGERPRINT)
    assert earlier is not None
    clock.advance(1.0)
    journal.mark_duplicate(duplicate.id, earlier)
    whole = journal.get_job(duplicate.id)
    journal.finish_input(again, "duplicate")
    journal.set_disposed(again, "deleted")
    assert (whole.submitted_at, whole.attempts, whole.response, whole.files) == (None, 0, None, expected.files)
    assert journal.get_job(duplicate.id) == dataclasses.replace(
        whole, request={"prompt": "a chair", "model": "ideogram-4"}
    )
    assert stored(path, "SELECT count(*) FROM jobs WHERE packed IS NOT NULL AND endpoint = ''") == [(2,)]


def test_a_job_packed_in_dictionary_1_still_reads_as_it_was(path: Path, clock: FakeClock) -> None:
    """Packed when a journal of the schema before packing was upgraded: kept in dictionary 1, its columns whole."""
    at = 1_740_830_400_250_000  # 2025-03-01 12:00:00.25 UTC
    old = old_journal(path, PACKED_VERSION)
    old.execute(
        """INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at,
           finished_at, disposal, disposed_to) VALUES (1, ?, 'a.jpg', 10, 5, NULL, 'done', ?2, ?2, ?2, 'moved', ?3)""",
        (INBOX, at, "/done/a.jpg"),
    )
    old.execute(
        """INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts,
           response, files, created_at, submitted_at, answered_at, completed_at, generation_id, generation_at,
           generation_seed, cost_source) VALUES
           (1, 1, 'poster', ?1, '/v2/image/remix/ideogram-4', '{"model": "ideogram-4", "prompt": "a lamp"}', 1,
            0.06, 'written', 1, '{"data": [{"prompt": "a lamp at dusk", "seed": 3}]}', '["/out/a.poster.1.png"]',
            ?2, ?2 + 1, ?2 + 2, ?2 + 3, 'gen-1', ?2 + 4, 5, 'usage')""",
        (bytes.fromhex(FINGERPRINT), at),
    )
    old.close()
    journal = SqliteJournal(path, clock=clock)
    try:
        moment = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
        micro = moment.resolution
        assert journal.get_job(1) == JobRecord(
            id=1, input_id=1, rule="poster", fingerprint=FINGERPRINT, endpoint="/v2/image/remix/ideogram-4",
            request={"model": "ideogram-4", "prompt": "a lamp"}, images=1, cost_usd=0.06, state="written",
            attempts=1, last_error=None, response={"data": [{"prompt": "a lamp at dusk", "seed": 3}]},
            files=("/out/a.poster.1.png",), created_at=moment, submitted_at=moment + micro,
            answered_at=moment + 2 * micro, completed_at=moment + 3 * micro, duplicate_of=None,
            generation_id="gen-1", generation_at=moment + 4 * micro, generation_seed=5, cost_source="usage",
        )  # fmt: skip
    finally:
        journal.close()
    assert stored(path, "SELECT substr(packed, 1, 1), endpoint, files_in FROM jobs") == [
        (b"\x01", "/v2/image/remix/ideogram-4", None)
    ]


FILES_IN_VERSION = 27  # the schema before a packed job's files were named in their folder (dictionary 2)


def test_a_job_in_flight_in_a_journal_of_the_schema_before_is_packed_in_dictionary_2(
    path: Path, clock: FakeClock
) -> None:
    at = 1_740_830_400_250_000  # 2025-03-01 12:00:00.25 UTC
    old = old_journal(path, FILES_IN_VERSION)
    old.execute(
        """INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at)
           VALUES (1, ?, 'a.jpg', 10, 5, NULL, 'claimed', ?2, ?2)""",
        (INBOX, at),
    )
    old.execute("INSERT INTO fingerprints VALUES (1, ?)", (bytes.fromhex(FINGERPRINT),))
    old.execute(
        """INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts,
           response, files, created_at, submitted_at, answered_at) VALUES
           (1, 1, 'poster', 1, '/remix', '{"model": "V_2", "prompt": "a lamp", "seed": 4}', 1, 0.08, 'answered', 1,
            '{"data": [{"prompt": "a lamp at dusk", "url": "http://u/1"}]}', '[]', ?1, ?1 + 100000, ?1 + 5000000)""",
        (at,),
    )
    old.close()
    journal = SqliteJournal(path, clock=clock)
    try:
        journal.record_written(1, ["/out/a.poster.1.png"])
        expected = disposed(journal, 1, 1)
        assert expected.submitted_at == datetime(2025, 3, 1, 12, 0, 0, 350_000, tzinfo=UTC)
        assert journal.get_job(1) == expected
    finally:
        journal.close()
    assert stored(path, "SELECT substr(packed, 1, 1), endpoint, files_in FROM jobs") == [(b"\x02", "", 1)]
