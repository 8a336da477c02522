"""The SQLite journal's job transitions: planned, sent, accepted, answered, written, failed or a duplicate.

Each transition is written before the work it describes starts (README, "The journal decides"); the ones that
protect money are durable commits, and the spend ledger (journal.ledger) moves in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from remixd.errors import ErrorRecord
from remixd.journal import ledger
from remixd.journal.compact import result_files, result_key
from remixd.journal.layout import BY_FINGERPRINT, BY_SHA256
from remixd.journal.records import Earlier, JobRecord, JobSpec
from remixd.journal.rows import JournalRows, expect
from remixd.journal.schema import WITHHELD_COUNT, dump_json, pack_hash, stamp

_ANSWERED = (
    "UPDATE jobs SET state = 'answered', response = ?1, answered_at = ?2, last_error = NULL,"  # noqa: S608 — literal
    " cost_usd = COALESCE(?3, cost_usd), cost_source = CASE WHEN ?3 IS NULL THEN cost_source ELSE 'usage' END,"
    " withheld = " + WITHHELD_COUNT.format(answer="?1") + " WHERE id = ?4"
)

_COMPACTED = """SELECT f.path, p.tails, r.names FROM results r LEFT JOIN result_places p ON p.id = r.place
    LEFT JOIN result_folders f ON f.id = p.folder WHERE r.key = ?"""


class JobTransitions(JournalRows):
    """The jobs' part of `SqliteJournal` (journal.sqlite)."""

    def add_jobs(self, input_id: int, specs: Sequence[JobSpec]) -> list[JobRecord]:
        """Record the planned jobs; idempotent per (input, rule), so a resumed input can call it again."""
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            now = self._now()
            for spec in specs:
                db.execute(
                    """INSERT OR IGNORE INTO jobs (input_id, rule, fingerprint, endpoint, request, images,
                       cost_usd, state, created_at, sandbox, cost_source)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)""",
                    (
                        input_id,
                        spec.rule,
                        fingerprint_id(db, spec.fingerprint),
                        spec.endpoint,
                        dump_json(spec.request),
                        spec.images,
                        spec.cost_usd,
                        now,
                        int(spec.sandbox),
                        spec.cost_source,
                    ),
                )
        jobs = {job.rule: job for job in self._jobs("input_id = ?", (input_id,))}
        return [jobs[spec.rule] for spec in specs]

    def start_submit(self, job_id: int) -> None:
        """Written (durably) before the request is sent: after a crash, `submitting` means "maybe billed", and
        the request already counts as paid (journal/ledger.py). From `submitting` when a job caught in flight
        by a crash is sent again; from `answered` only when a policy resends a job whose URLs expired.
        Nothing is read back: the request leaves next, and a read here waited for the journal's lock first."""
        with self._db.write(durable=True, urgent=True) as db:
            row = expect(db, "jobs", job_id, ("pending", "submitting", "answered"))
            moment = self._clock.utcnow()
            db.execute(
                "UPDATE jobs SET state = 'submitting', attempts = attempts + 1, submitted_at = ? WHERE id = ?",
                (stamp(moment), job_id),
            )
            ledger.record_sent(db, row, moment)

    def record_generation(self, job_id: int, generation_id: str, seed: int | None, *, images: int) -> None:
        """Ideogram accepted an async request: its id first, durably, and its request is billed from now on
        (a generation that fails is refunded in `record_job_failure`)."""
        with self._db.write(durable=True, urgent=True) as db:
            row = expect(db, "jobs", job_id, ("submitting",))
            moment = self._clock.utcnow()
            db.execute(
                "UPDATE jobs SET state = 'generating', generation_id = ?, generation_at = ?, generation_seed = ?,"
                " last_error = NULL WHERE id = ?",
                (generation_id, stamp(moment), seed, job_id),
            )
            ledger.record_billed(db, job_id, images, row["cost_usd"], moment)

    def record_answer(
        self, job_id: int, response: Mapping[str, Any], *, images: int | None = None, cost_usd: float | None = None
    ) -> None:
        """The API answered 200 (or the generation completed): keep its answer (the result URLs) before
        downloading; the request was billed (a generation when accepted). `cost_usd`: what it really cost, by
        the API's own usage figure (the job's cost_source becomes `usage`); None keeps the planned price.

        A synchronous answer is the only copy of its result links: durable. A polled generation's is not: its
        id is, and a power cut that loses the answer means polling again, while waiting for the disk here
        keeps the next upload from its place at the API."""
        states = self._db.read("SELECT state FROM jobs WHERE id = ?", (job_id,))
        durable = not states or states[0]["state"] != "generating"
        with self._db.write(durable=durable) as db:
            row = expect(db, "jobs", job_id, ("submitting", "generating"))
            moment = self._clock.utcnow()
            db.execute(_ANSWERED, (dump_json(response), stamp(moment), cost_usd, job_id))
            if row["state"] == "generating":
                if cost_usd is not None or images is not None:
                    db.execute(
                        "UPDATE spend SET images = COALESCE(?, images), usd = COALESCE(?, usd) WHERE id ="
                        " (SELECT MAX(id) FROM spend WHERE job_id = ?)",
                        (images, cost_usd, job_id),
                    )
                return
            ledger.record_billed(
                db,
                job_id,
                row["images"] if images is None else images,
                row["cost_usd"] if cost_usd is None else cost_usd,
                moment,
            )

    def record_written(self, job_id: int, files: Sequence[str]) -> None:
        with self._db.write() as db:
            expect(db, "jobs", job_id, ("answered", "written"))
            db.execute(
                "UPDATE jobs SET state = 'written', files = ?, completed_at = ? WHERE id = ?",
                (dump_json(list(files)), self._now(), job_id),
            )
            # `remixd plan` hashes only a file of a size some written result's source had (journal.readonly).
            db.execute(
                "INSERT OR IGNORE INTO result_sizes SELECT size FROM inputs WHERE id = (SELECT input_id FROM jobs"
                " WHERE id = ?)",
                (job_id,),
            )

    def record_job_failure(
        self, job_id: int, error: ErrorRecord, *, final: bool, not_billed: bool = False
    ) -> JobRecord:
        """final: the job failed. Otherwise keep the error and the job retryable: an answered job stays
        answered (its download is retried, it is never sent again); any other goes back to pending.
        A written job can fail too: its files went missing and its links expired before a new download.
        not_billed: the API's answer to the request just sent says nothing ran; it no longer counts as paid."""
        with self._db.write() as db:
            if not_billed:
                ledger.withdraw(db, job_id)
            states = (
                ("pending", "submitting", "generating", "answered", "written")
                if final
                else ("pending", "submitting", "generating", "answered")
            )
            row = expect(db, "jobs", job_id, states)
            if final and row["state"] == "generating":
                # A generation that failed is not billed (reference `ideogram-api-2026.md` §7): refund it.
                db.execute(
                    "UPDATE spend SET images = 0, usd = 0 WHERE id = (SELECT MAX(id) FROM spend WHERE job_id = ?)",
                    (job_id,),
                )
            if final:
                state, completed = "failed", self._now()
            else:
                kept = row["state"] in ("answered", "generating")  # never sent again: downloaded or polled
                state, completed = (row["state"] if kept else "pending"), None
            db.execute(
                "UPDATE jobs SET state = ?, last_error = ?, completed_at = ? WHERE id = ?",
                (state, dump_json(error.to_json()), completed, job_id),
            )
        return self.get_job(job_id)

    def mark_duplicate(self, job_id: int, earlier: Earlier) -> None:
        """Not sent: same content, rule and request were done before; the job points at those files (and at
        the earlier job, unless that one was compacted away)."""
        with self._db.write() as db:
            expect(db, "jobs", job_id, ("pending",))
            if earlier.id is not None:
                expect(db, "jobs", earlier.id, ("written",))
            db.execute(
                "UPDATE jobs SET state = 'duplicate', duplicate_of = ?, files = ?, completed_at = ? WHERE id = ?",
                (earlier.id, dump_json(list(earlier.files)), self._now(), job_id),
            )

    def find_duplicate(self, sha256: str, rule: str, fingerprint: str) -> Earlier | None:
        """The first written result of the same content, rule and request, whether its input is still whole
        or was compacted (journal.compact)."""
        jobs = self._jobs(
            f"rule = ? AND {BY_FINGERPRINT} AND state = 'written' AND input_id IN "  # noqa: S608 — literal
            f"(SELECT id FROM inputs WHERE {BY_SHA256}) ORDER BY id LIMIT 1",
            (rule, pack_hash(fingerprint), pack_hash(sha256), pack_hash(sha256)),
        )
        if jobs:
            return Earlier(jobs[0].id, jobs[0].files)
        key = result_key(sha256, rule, fingerprint)
        rows = self._db.read(_COMPACTED, (key,))
        return Earlier(None, result_files(rows[0]["path"], rows[0]["tails"], rows[0]["names"])) if rows else None


def fingerprint_id(db: sqlite3.Connection, fingerprint: str) -> int:
    """The number `fingerprint` (hex) is named by in `fingerprints` (journal.layout), in the caller's write."""
    packed = pack_hash(fingerprint)
    db.execute("INSERT OR IGNORE INTO fingerprints (hash) VALUES (?)", (packed,))
    return int(db.execute("SELECT id FROM fingerprints WHERE hash = ?", (packed,)).fetchone()[0])
