"""What the SQLite journal's parts share: its database, its clock, and reading rows back as records.

`SqliteJournal` (journal.sqlite) is put together from parts by responsibility: claims and inputs there, job
transitions in `journal.jobs`, the operator's views in `journal.views`, a lost journal's rebuild in
`journal.rebuild`. Each part reads through this base.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remixd.clock import Clock
from remixd.errors import JournalError
from remixd.journal import ledger
from remixd.journal.database import Database
from remixd.journal.records import InputRecord, JobRecord
from remixd.journal.schema import input_record, job_record, stamp


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
