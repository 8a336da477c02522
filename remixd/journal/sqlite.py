"""The SQLite journal: what remixd claimed, sent, was answered, wrote and disposed of.

SQLite in WAL mode is the source of truth after a crash (README, "The journal decides"): each state is written
before the work it describes starts, so a restart resumes from here, never from memory. Stages see only
`journal.records` (the records, the states and the `Journal` protocol); the SQL schema and the row conversion live
in `journal.schema`, the connection, its transactions and migrations in `journal.database`. This module is the one
implementation of the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import ErrorRecord, JournalError
from remixd.journal import ledger, rerolls
from remixd.journal.compact import compact, result_key
from remixd.journal.database import Database, count_states, expect
from remixd.journal.records import (
    INPUT_STATES,
    JOB_STATES,
    Candidate,
    Disposal,
    Earlier,
    Failure,
    FinishState,
    InputRecord,
    JobRecord,
    JobSpec,
    Reroll,
    Spend,
)
from remixd.journal.schema import (
    dump_json,
    input_record,
    job_record,
    load_json,
    parse_moment,
    parse_moment_or_none,
    stamp,
)
from remixd.journal.withheld import Withheld, find_withheld

_BLOCKING_CLAIM = """SELECT 1 FROM inputs WHERE inbox = ?1 AND relpath = ?2 AND (
    state = 'claimed' OR disposal = 'pending'
    OR (disposal = 'kept' AND size = ?3 AND mtime_ns = ?4 AND state IN ('done', 'duplicate', 'failed')))
    UNION ALL SELECT 1 FROM kept WHERE inbox = ?1 AND relpath = ?2 AND size = ?3 AND mtime_ns = ?4
    LIMIT 1"""
_INSERT_INPUT = """INSERT INTO inputs (inbox, relpath, size, mtime_ns, state, detected_at, claimed_at, companions)
    VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?)"""
_UNFINISHED = "state = 'claimed' OR disposal = 'pending'"

JOURNAL_NAME = "journal.sqlite3"  # in state_dir


class SqliteJournal:
    """The SQLite journal: one connection shared by the worker threads, guarded by a lock."""

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._db = Database(path)

    def _now(self) -> str:
        return stamp(self._clock.utcnow())

    # -- claims ----------------------------------------------------------------------------------------------

    def claim(
        self, inbox: str, relpath: str, size: int, mtime_ns: int, detected_at: datetime | None = None
    ) -> int | None:
        """The new input's id, or None when this file is already active or was finished and kept unchanged."""
        candidate = Candidate(inbox, relpath, size, mtime_ns, detected_at or self._clock.utcnow())
        return self.claim_many([candidate])[0]

    def claim_many(self, candidates: Iterable[Candidate]) -> list[int | None]:
        """`claim` for a whole scan, in one transaction (a 20,000-file backlog takes well under a second)."""
        ids: list[int | None] = []
        with self._db.write() as db:
            now = self._now()
            for item in candidates:
                blocked = db.execute(_BLOCKING_CLAIM, (item.inbox, item.relpath, item.size, item.mtime_ns))
                if blocked.fetchone() is not None:
                    ids.append(None)
                    continue
                cursor = db.execute(
                    _INSERT_INPUT,
                    (
                        item.inbox, item.relpath, item.size, item.mtime_ns, stamp(item.detected_at), now,
                        dump_json(item.companions) if item.companions else None,
                    ),
                )  # fmt: skip
                ids.append(cursor.lastrowid)
        return ids

    def set_hash(self, input_id: int, sha256: str) -> None:
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            db.execute("UPDATE inputs SET sha256 = ? WHERE id = ?", (sha256, input_id))

    # -- jobs ------------------------------------------------------------------------------------------------

    def add_jobs(self, input_id: int, specs: Sequence[JobSpec]) -> list[JobRecord]:
        """Record the planned jobs; idempotent per (input, rule), so a resumed input can call it again."""
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            now = self._now()
            for spec in specs:
                db.execute(
                    """INSERT OR IGNORE INTO jobs (input_id, rule, fingerprint, endpoint, request, images,
                       cost_usd, state, created_at, sandbox) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)""",
                    (
                        input_id,
                        spec.rule,
                        spec.fingerprint,
                        spec.endpoint,
                        dump_json(spec.request),
                        spec.images,
                        spec.cost_usd,
                        now,
                        int(spec.sandbox),
                    ),
                )
        jobs = {job.rule: job for job in self._jobs("input_id = ?", (input_id,))}
        return [jobs[spec.rule] for spec in specs]

    def start_submit(self, job_id: int) -> JobRecord:
        """Written (durably) before the request is sent: after a crash, `submitting` means "maybe billed", and
        the request already counts as paid (journal/ledger.py). From `submitting` when a job caught in flight
        by a crash is sent again; from `answered` only when a policy resends a job whose URLs expired."""
        with self._db.write(durable=True) as db:
            row = expect(db, "jobs", job_id, ("pending", "submitting", "answered"))
            moment = self._clock.utcnow()
            db.execute(
                "UPDATE jobs SET state = 'submitting', attempts = attempts + 1, submitted_at = ? WHERE id = ?",
                (stamp(moment), job_id),
            )
            ledger.record_sent(db, row, moment)
        return self.get_job(job_id)

    def record_generation(self, job_id: int, generation_id: str, seed: int | None, *, images: int) -> None:
        """Ideogram accepted an async request: its id first, durably, and its request is billed from now on
        (a generation that fails is refunded in `record_job_failure`)."""
        with self._db.write(durable=True) as db:
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
        downloading; the request was billed (a generation when accepted, now at what it really cost)."""
        with self._db.write(durable=True) as db:
            row = expect(db, "jobs", job_id, ("submitting", "generating"))
            moment = self._clock.utcnow()
            db.execute(
                "UPDATE jobs SET state = 'answered', response = ?, answered_at = ?, last_error = NULL,"
                " cost_usd = COALESCE(?, cost_usd) WHERE id = ?",
                (dump_json(response), stamp(moment), cost_usd, job_id),
            )
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
            if not earlier.compacted:
                expect(db, "jobs", earlier.id, ("written",))
            db.execute(
                "UPDATE jobs SET state = 'duplicate', duplicate_of = ?, files = ?, completed_at = ? WHERE id = ?",
                (None if earlier.compacted else earlier.id, dump_json(list(earlier.files)), self._now(), job_id),
            )

    def find_duplicate(self, sha256: str, rule: str, fingerprint: str) -> Earlier | None:
        """The first written result of the same content, rule and request, whether its input is still whole
        or was compacted (journal.compact)."""
        jobs = self._jobs(
            "rule = ? AND fingerprint = ? AND state = 'written' AND input_id IN "
            "(SELECT id FROM inputs WHERE sha256 = ?) ORDER BY id LIMIT 1",
            (rule, fingerprint, sha256),
        )
        if jobs:
            return Earlier(jobs[0].id, jobs[0].files, compacted=False)
        key = result_key(sha256, rule, fingerprint)
        rows = self._db.read("SELECT job_id, files FROM results WHERE key = ?", (key,))
        return Earlier(rows[0]["job_id"], tuple(load_json(rows[0]["files"])), compacted=True) if rows else None

    # -- inputs ----------------------------------------------------------------------------------------------

    def finish_input(self, input_id: int, state: FinishState, error: Mapping[str, Any] | None = None) -> None:
        """The input is done, a duplicate, failed or vanished; its disposal is pending till `set_disposed`."""
        if state not in ("done", "duplicate", "failed", "vanished"):
            raise ValueError(f"an input cannot finish as {state!r}")
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            db.execute(
                "UPDATE inputs SET state = ?, finished_at = ?, error = ?, disposal = ? WHERE id = ?",
                (
                    state,
                    self._now(),
                    None if error is None else dump_json(error),
                    "none" if state == "vanished" else "pending",
                    input_id,
                ),
            )

    def set_disposed(self, input_id: int, disposal: Disposal, destination: str | None = None) -> None:
        """moved (to `destination`), deleted or kept; only a kept input is skipped when seen unchanged."""
        if disposal not in ("moved", "deleted", "kept"):
            raise ValueError(f"{disposal!r} is not a completed disposal")
        with self._db.write() as db:
            row = expect(db, "inputs", input_id, ("done", "duplicate", "failed"))
            if row["disposal"] not in ("pending", disposal):
                raise JournalError(f"input {input_id} was already disposed of ({row['disposal']})")
            db.execute(
                "UPDATE inputs SET disposal = ?, disposed_to = ? WHERE id = ?", (disposal, destination, input_id)
            )

    def get_input(self, input_id: int) -> InputRecord:
        inputs = self._inputs("id = ?", (input_id,))
        if not inputs:
            raise JournalError(f"no input {input_id} in the journal")
        return inputs[0]

    def get_job(self, job_id: int) -> JobRecord:
        jobs = self._jobs("id = ?", (job_id,))
        if not jobs:
            raise JournalError(f"no job {job_id} in the journal")
        return jobs[0]

    def unfinished(self) -> list[InputRecord]:
        """What a restart must resume: claimed inputs (with their jobs) and finished ones not disposed of."""
        return self._inputs(_UNFINISHED)

    def unfinished_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(id, inbox) of up to `limit` unfinished inputs with ids above `after`, in claim order: the queue's
        supply (intake.backlog). NOT INDEXED: walking the table by id from `after` reads only what lies ahead,
        where the partial index would sort every unfinished input at each call."""
        rows = self._db.read(
            """SELECT id, inbox FROM inputs NOT INDEXED WHERE id > ? AND (state = 'claimed' OR disposal = 'pending')
               ORDER BY id LIMIT ?""",
            (after, limit),
        )
        return [(row["id"], row["inbox"]) for row in rows]

    def generating(self) -> list[JobRecord]:
        """Jobs whose async generation Ideogram accepted and has not finished, oldest first."""
        return self._jobs("state = 'generating' ORDER BY generation_at", ())

    def failed_inputs(self) -> list[InputRecord]:
        return self._inputs("state = 'failed'")

    def reset_for_retry(self, input_id: int) -> bool:
        """`remixd retry`: the failed input may be claimed again. False when it is not failed."""
        with self._db.write() as db:
            cursor = db.execute(
                "UPDATE inputs SET state = 'retried' WHERE id = ? AND state = 'failed' AND disposal IS NOT 'pending'",
                (input_id,),
            )
            return cursor.rowcount == 1

    def add_reroll(self, of_input: InputRecord, seed: int) -> int:
        """`remixd reroll`: the next claim of this content at this path is sent again, with `seed`."""
        with self._db.write() as db:
            return rerolls.add(db, of_input, seed, self._now())

    def take_reroll(self, input_id: int) -> Reroll | None:
        with self._db.write() as db:
            return rerolls.take(db, input_id)

    def cancel_reroll(self, reroll_id: int) -> None:
        with self._db.write() as db:
            rerolls.cancel(db, reroll_id)

    def done_input(
        self, *, disposed_to: str | None = None, source: tuple[str, str, str] | None = None
    ) -> InputRecord | None:
        """The latest done input moved to `disposed_to`, or made from `source` (inbox, relpath, sha256)."""
        if disposed_to is not None:
            found = self._inputs(
                "state IN ('done', 'duplicate') AND disposal = 'moved' AND disposed_to = ?", (disposed_to,)
            )
        elif source is not None:
            found = self._inputs(
                "state IN ('done', 'duplicate') AND disposal = 'moved' AND inbox = ? AND relpath = ? AND sha256 = ?",
                source,
            )
        else:
            raise ValueError("name the done copy or the source")
        return found[-1] if found else None

    # -- operator views --------------------------------------------------------------------------------------

    def oldest_claim(self) -> datetime | None:
        """When the oldest input still being processed was claimed (the metrics' backlog age)."""
        row = self._db.read("SELECT min(claimed_at) FROM inputs WHERE state = 'claimed'", ())[0]
        return parse_moment_or_none(row[0])

    def spent(self, day: date, *, sandbox: bool = False) -> Spend:
        """What the requests sent that UTC day cost, answered or not (`unknown`: never answered); with
        `sandbox`, what the sandbox's would have (never billed, never counted against budget.*). Compacted
        inputs' spend is summed per day (journal.compact)."""
        return self._spend(
            "s.day = ?1 AND j.sandbox = ?2", "day = ?1 AND sandbox = ?2", (day.isoformat(), int(sandbox))
        )

    def possible_payments(self) -> Spend:
        """Every request, any day, that was sent and never answered either way: each may have been billed."""
        return self._spend("s.status = 'sent' AND j.sandbox = 0", "status = 'sent' AND sandbox = 0", ())

    def _spend(self, where: str, where_days: str, parameters: Sequence[Any]) -> Spend:
        # `where` and `where_days` are always one of this module's literal conditions
        sql = (
            "SELECT coalesce(sum(images), 0), coalesce(sum(usd), 0.0), coalesce(sum(unknown), 0) FROM ("  # noqa: S608
            "SELECT s.images, s.usd, s.status = 'sent' AS unknown FROM spend s JOIN jobs j ON j.id = s.job_id "
            "WHERE " + where + " UNION ALL SELECT images, usd, CASE status WHEN 'sent' THEN requests ELSE 0 END "
            "FROM spend_days WHERE " + where_days + ")"
        )
        row = self._db.read(sql, parameters)[0]
        return Spend(images=int(row[0]), usd=round(float(row[1]), 6), unknown=int(row[2]))

    def counts(self) -> dict[str, int]:
        """Inputs by state, compacted ones included (kept by triggers: no count over millions of rows)."""
        return count_states(self._db.read("SELECT state, count FROM tallies WHERE kind = 'inputs'"), INPUT_STATES)

    def job_counts(self) -> dict[str, int]:
        return count_states(self._db.read("SELECT state, count FROM tallies WHERE kind = 'jobs'"), JOB_STATES)

    def withheld(self, since: datetime | None = None) -> list[Withheld]:
        """Inputs with images withheld by the safety check (journal/withheld.py), newest first."""
        return find_withheld(self._db, since)

    def recent_failures(self, limit: int = 10) -> list[Failure]:
        """Newest first; one line per failed job, or per failed input when no job failed (e.g. unreadable)."""
        rows = self._db.read(
            """SELECT i.id, i.inbox, i.relpath, j.rule, coalesce(j.last_error, i.error) AS error,
                      coalesce(j.completed_at, i.finished_at) AS failed_at
               FROM inputs i LEFT JOIN jobs j ON j.input_id = i.id AND j.state = 'failed'
               WHERE i.state = 'failed' ORDER BY failed_at DESC, i.id DESC, j.id DESC LIMIT ?""",
            (limit,),
        )
        failures = []
        for row in rows:
            stored = load_json(row["error"]) or {}
            if isinstance(stored.get("error"), dict):  # an input's error is its whole error file
                stored = stored["error"]
            failures.append(
                Failure(
                    input_id=row["id"],
                    inbox=row["inbox"],
                    relpath=row["relpath"],
                    rule=row["rule"],
                    error=ErrorRecord.from_json(stored),
                    failed_at=parse_moment(row["failed_at"]),
                )
            )
        return failures

    # -- keeping a year of journal small (README "A year of journal") ----------------------------------------

    def compact(self, before: datetime, limit: int) -> int:
        """Compact up to `limit` inputs finished before `before` to what the duplicate check needs."""
        with self._db.write() as db:
            return compact(db, stamp(before), limit)

    def reclaim(self, pages: int) -> int:
        """Give up to `pages` free pages back to the file system; the number of free pages left."""
        return self._db.reclaim(pages)

    def close(self) -> None:
        self._db.close()

    # -- rows to records -------------------------------------------------------------------------------------

    # `where` is always one of this module's literal conditions, values go through parameters: no injection.
    def _jobs(self, where: str, parameters: Sequence[Any]) -> list[JobRecord]:
        sql = f"SELECT jobs.*, {ledger.POSSIBLE_PAYMENTS} FROM jobs WHERE " + where  # noqa: S608 — see above
        return [job_record(row) for row in self._db.read(sql, parameters)]

    def _inputs(self, where: str, parameters: Sequence[Any] = ()) -> list[InputRecord]:
        sql = "SELECT * FROM inputs WHERE " + where + " ORDER BY id"  # noqa: S608 — literal condition
        owned = "input_id IN (SELECT id FROM inputs WHERE " + where + ") ORDER BY id"  # noqa: S608 — as above
        # One read transaction: inputs and their jobs come from the same snapshot, even if another
        # process writes in between.
        with self._db.snapshot():
            rows = self._db.read(sql, parameters)
            jobs: dict[int, list[JobRecord]] = {}
            for job in self._jobs(owned, parameters):
                jobs.setdefault(job.input_id, []).append(job)
        return [input_record(row, tuple(jobs.get(row["id"], ()))) for row in rows]
