"""Read-only views of the journal for the review page: the overview's counts and the gallery's pages.

Each reader has its own SQLite connection, opened read-only beside the daemon's (WAL lets readers and the
writer work at once), so a page never waits for a worker and can never change what the journal says. Pages are
keyset-paged by input id, newest first: a page costs the same on the first page and the thousandth, at 100,000
inputs as at 100 (bench/review.py measures it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from remixd.errors import JournalError
from remixd.journal import ledger, packing, search
from remixd.journal.layout import BUSY_JOBS, DISPOSED_FOLDER, FINGERPRINT_HASH, NOT_DONE
from remixd.journal.records import INPUT_STATES, InputRecord, InputState, JobRecord, Spend
from remixd.journal.rows import input_record, job_record
from remixd.journal.schema import stamp

MAX_PAGE = 100
_COLUMNS = f"jobs.*, {ledger.POSSIBLE_PAYMENTS}, {FINGERPRINT_HASH}, {packing.FILES_FOLDER}"
_JOBS = f"SELECT {_COLUMNS} FROM jobs "  # noqa: S608 — literal columns


@dataclass(frozen=True)
class GalleryQuery:
    """What the gallery shows: a search in file names, prompts (sent and returned) and rule names, filters,
    and where the page starts (`before`: older than that input id; `after`: newer than it)."""

    text: str = ""
    inbox: str | None = None
    rule: str | None = None
    state: InputState | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 24


@dataclass(frozen=True)
class GalleryPage:
    inputs: tuple[InputRecord, ...]
    newer: int | None  # pass as `after` for the newer page; None on the newest page
    older: int | None  # pass as `before` for the older page; None on the oldest page


@dataclass(frozen=True)
class Overview:
    inboxes: dict[str, dict[str, int]]  # inbox -> input state -> count
    submitting: int  # requests sent and not answered yet: images being made at Ideogram
    generating: int  # async v2 generations accepted by Ideogram, polled until done
    downloading: int  # answered, results not yet written
    failed_since: int  # inputs failed since the overview's `since`
    spent: Spend  # today (UTC), as budget.* counts it
    sandbox: Spend  # what the sandbox's requests today would have cost: never billed


@contextmanager
def reader(path: Path) -> Iterator[JournalReader]:
    """A read-only reader of the journal at `path`, closed on leaving."""
    opened = JournalReader(path)
    try:
        yield opened
    finally:
        opened.close()


class JournalReader:
    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as error:
            raise JournalError(f"cannot read the journal {path}: {error}", "check state_dir") from error
        self._db.row_factory = sqlite3.Row
        packing.register(self._db)  # the search reads packed jobs' prompts

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes whenever another connection (the daemon) committed: the cheap "anything new?" check."""
        return int(self._read("PRAGMA data_version")[0][0])

    def overview(self, since: datetime, today: date) -> Overview:
        self._db.execute("BEGIN")  # one snapshot for every count
        try:
            inboxes: dict[str, dict[str, int]] = {}
            for row in self._read("SELECT inbox, state, count FROM inbox_tallies WHERE count > 0"):
                inboxes.setdefault(row[0], dict.fromkeys(INPUT_STATES, 0))[row[1]] = row[2]
            jobs: dict[str, int] = {
                row[0]: row[1]
                for row in self._read(
                    f"SELECT state, count(*) FROM jobs WHERE {BUSY_JOBS} GROUP BY state"  # noqa: S608 — literal
                )
            }
            failed = self._read(
                "SELECT count(*) FROM inputs WHERE state = 'failed' AND finished_at >= ?", (stamp(since),)
            )[0][0]
            # As the budget counts it: every request sent today, answered or not, the sandbox's apart.
            spend = {
                row[0]: row
                for row in self._read(
                    f"SELECT j.sandbox, coalesce(sum(s.images), 0), {ledger.sql_sum_usd('s.usd')},"  # noqa: S608
                    " coalesce(sum(s.status = 'sent'), 0) FROM spend s JOIN jobs j ON j.id = s.job_id"
                    " WHERE s.day = ? GROUP BY j.sandbox",
                    (today.isoformat(),),
                )
            }
        finally:
            self._db.execute("COMMIT")
        return Overview(
            inboxes=inboxes,
            submitting=int(jobs.get("submitting", 0)),
            generating=int(jobs.get("generating", 0)),
            downloading=int(jobs.get("answered", 0)),
            failed_since=int(failed),
            spent=_spend(spend.get(0)),
            sandbox=_spend(spend.get(1)),
        )

    def rules(self) -> list[str]:
        """Every rule name the journal has seen (the gallery's rule filter), compacted jobs' too (journal.layout)."""
        return [row[0] for row in self._read("SELECT name FROM rule_names ORDER BY name")]

    def gallery(self, query: GalleryQuery) -> GalleryPage:
        matched = search.match(query.text) if query.text else None
        conditions, parameters = _conditions(query, matched)
        source, key = (search.SEARCHED, search.SEARCHED_ID) if matched else ("inputs i", "i.id")
        if matched:
            conditions.insert(0, "inputs_search MATCH ?")
            parameters.insert(0, matched)
        limit = max(1, min(query.limit, MAX_PAGE))
        newest_first = query.after is None
        if query.before is not None:
            conditions.append(f"{key} < ?")
            parameters.append(query.before)
        if query.after is not None:
            conditions.append(f"{key} > ?")
            parameters.append(query.after)
        where = " AND ".join(conditions) or "1"
        order = "DESC" if newest_first else "ASC"
        # `where` is built from this module's literal conditions; every value is a parameter: no injection.
        sql = f"SELECT i.*, {DISPOSED_FOLDER} FROM {source} WHERE {where} ORDER BY {key} {order} LIMIT ?"  # noqa: S608
        self._db.execute("BEGIN")
        try:
            rows = self._read(sql, (*parameters, limit + 1))
            more = len(rows) > limit
            rows = rows[:limit] if newest_first else list(reversed(rows[:limit]))
            jobs = self._jobs_of([row["id"] for row in rows])
        finally:
            self._db.execute("COMMIT")
        inputs = tuple(input_record(row, tuple(jobs.get(row["id"], ()))) for row in rows)
        if not inputs:
            return GalleryPage((), None, None)
        came_from_newer, came_from_older = query.before is not None, query.after is not None
        newer = inputs[0].id if (came_from_newer or (more and not newest_first)) else None
        older = inputs[-1].id if (came_from_older or (more and newest_first)) else None
        return GalleryPage(inputs, newer, older)

    def get_input(self, input_id: int) -> InputRecord | None:
        rows = self._read(f"SELECT *, {DISPOSED_FOLDER} FROM inputs WHERE id = ?", (input_id,))  # noqa: S608
        if not rows:
            return None
        return input_record(rows[0], tuple(self._jobs_of([input_id]).get(input_id, ())))

    def get_job(self, job_id: int) -> JobRecord | None:
        rows = self._read(_JOBS + "WHERE id = ?", (job_id,))
        return job_record(rows[0]) if rows else None

    def _jobs_of(self, input_ids: Sequence[int]) -> dict[int, list[JobRecord]]:
        jobs: dict[int, list[JobRecord]] = {}
        if not input_ids:
            return jobs
        marks = ", ".join("?" for _ in input_ids)
        sql = _JOBS + f"WHERE input_id IN ({marks}) ORDER BY id"
        for row in self._read(sql, input_ids):
            jobs.setdefault(row["input_id"], []).append(job_record(row))
        return jobs

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise JournalError(f"cannot read the journal: {error}", "check state_dir") from error


def _spend(row: sqlite3.Row | None) -> Spend:
    if row is None:
        return Spend(images=0, usd=0.0)
    return Spend(images=int(row[1]), usd=ledger.dollars(row[2]), unknown=int(row[3]))


def _conditions(query: GalleryQuery, matched: str | None) -> tuple[list[str], list[Any]]:
    """The page's conditions on input `i`; `matched`, the index's query for the search, `gallery` asks itself."""
    conditions: list[str] = []
    parameters: list[Any] = []
    if query.inbox is not None:
        # Not by the index of paths: the page walks inputs by id, and the inbox's every path would be sorted.
        conditions.append("+i.inbox = ?")
        parameters.append(query.inbox)
    if query.state is not None:
        # A state not done is found by its index, which holds only those (journal.layout); done is most rows.
        conditions.append("i.state = ?" if query.state in ("done", "duplicate") else f"{NOT_DONE} AND i.state = ?")
        parameters.append(query.state)
    if query.rule is not None:
        conditions.append("EXISTS (SELECT 1 FROM jobs r WHERE r.input_id = i.id AND r.rule = ?)")
        parameters.append(query.rule)
    if query.text and matched is None:
        searched, values = search.names_condition(query.text)
        conditions.append(searched)
        parameters += values
    return conditions, parameters
