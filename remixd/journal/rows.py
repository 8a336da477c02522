"""What the SQLite journal's parts share: its database, its clock, and reading rows back as records.

`SqliteJournal` (journal.sqlite) is put together from parts by responsibility: claims and inputs there, job
transitions in `journal.jobs`, the operator's views in `journal.views`. Each part reads through this base.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Literal, cast

from remixd.clock import Clock
from remixd.errors import ErrorRecord, JournalError
from remixd.journal import ledger
from remixd.journal.database import Database
from remixd.journal.layout import DISPOSED_FOLDER, FINGERPRINT_HASH
from remixd.journal.packing import FILES_FOLDER, job_columns
from remixd.journal.records import CostSource, Disposal, InputRecord, InputState, JobRecord, JobState
from remixd.journal.schema import load_json, parse_moment, parse_moment_or_none, stamp, unpack_hash


class JournalRows:
    """The database and clock of one journal, and its rows read as records."""

    _db: Database
    _clock: Clock

    def _now(self) -> int:
        return stamp(self._clock.utcnow())

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

    # -- rows to records -------------------------------------------------------------------------------------

    # `where` is always one of the journal modules' literal conditions, values go through parameters: no injection.
    def _jobs(self, where: str, parameters: Sequence[Any]) -> list[JobRecord]:
        columns = f"jobs.*, {ledger.POSSIBLE_PAYMENTS}, {FINGERPRINT_HASH}, {FILES_FOLDER}"
        sql = f"SELECT {columns} FROM jobs WHERE " + where  # noqa: S608
        return [job_record(row) for row in self._db.read(sql, parameters)]

    def _inputs(self, where: str, parameters: Sequence[Any] = ()) -> list[InputRecord]:
        sql = f"SELECT *, {DISPOSED_FOLDER} FROM inputs WHERE " + where + " ORDER BY id"  # noqa: S608 — literal
        owned = "input_id IN (SELECT id FROM inputs WHERE " + where + ") ORDER BY id"  # noqa: S608 — as above
        # One read transaction: inputs and their jobs come from the same snapshot, even if another
        # process writes in between.
        with self._db.snapshot():
            rows = self._db.read(sql, parameters)
            jobs: dict[int, list[JobRecord]] = {}
            for job in self._jobs(owned, parameters):
                jobs.setdefault(job.input_id, []).append(job)
        return [input_record(row, tuple(jobs.get(row["id"], ()))) for row in rows]


def job_record(row: sqlite3.Row) -> JobRecord:
    """`row`: the job's columns, POSSIBLE_PAYMENTS (journal.ledger), FINGERPRINT_HASH (journal.layout) and
    FILES_FOLDER (journal.packing)."""
    job = job_columns(row)
    return JobRecord(
        id=job["id"],
        input_id=job["input_id"],
        rule=job["rule"],
        fingerprint=str(unpack_hash(job["fingerprint_hash"])),
        endpoint=job["endpoint"],
        request=job["request"],
        images=job["images"],
        cost_usd=job["cost_usd"],
        state=cast("JobState", job["state"]),
        attempts=job["attempts"],
        last_error=None if job["last_error"] is None else ErrorRecord.from_json(load_json(job["last_error"])),
        response=job["response"],
        files=tuple(job["files"]),
        created_at=parse_moment(job["created_at"]),
        submitted_at=parse_moment_or_none(job["submitted_at"]),
        answered_at=parse_moment_or_none(job["answered_at"]),
        completed_at=parse_moment_or_none(job["completed_at"]),
        duplicate_of=job["duplicate_of"],
        sandbox=bool(job["sandbox"]),
        generation_id=job["generation_id"],
        generation_at=parse_moment_or_none(job["generation_at"]),
        generation_seed=job["generation_seed"],
        possible_payments=job["possible_payments"],
        cost_source=cast("CostSource", job["cost_source"]),
    )


def input_record(row: sqlite3.Row, jobs: tuple[JobRecord, ...]) -> InputRecord:
    """`row`: the input's columns and DISPOSED_FOLDER (journal.layout)."""
    disposed_to = row["disposed_to"]
    if disposed_to is None and row["disposed_in"] is not None:
        disposed_to = f"{row['disposed_folder']}/{row['relpath']}"
    return InputRecord(
        id=row["id"],
        inbox=row["inbox"],
        relpath=row["relpath"],
        size=row["size"],
        mtime_ns=row["mtime_ns"],
        sha256=unpack_hash(row["sha256"]),
        state=cast("InputState", row["state"]),
        detected_at=parse_moment(row["detected_at"]),
        claimed_at=parse_moment(row["claimed_at"]),
        finished_at=parse_moment_or_none(row["finished_at"]),
        error=load_json(row["error"]),
        disposal=cast("Disposal | None", row["disposal"]),
        disposed_to=disposed_to,
        jobs=jobs,
        companions=tuple((name, text) for name, text in load_json(row["companions"]) or ()),
    )


def expect(
    db: sqlite3.Connection, table: Literal["inputs", "jobs"], row_id: int, states: tuple[str, ...]
) -> sqlite3.Row:
    """Fetch a row and refuse a transition from a state that does not allow it: that is always a bug."""
    sql = "SELECT * FROM inputs WHERE id = ?" if table == "inputs" else "SELECT * FROM jobs WHERE id = ?"
    row: sqlite3.Row | None = db.execute(sql, (row_id,)).fetchone()
    if row is None:
        raise JournalError(f"no {table[:-1]} {row_id} in the journal")
    if row["state"] not in states:
        raise JournalError(f"{table[:-1]} {row_id} is {row['state']}, expected {' or '.join(states)}")
    return row


def count_states(rows: list[sqlite3.Row], states: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(states, 0)
    counts.update({row[0]: row[1] for row in rows})
    return counts
