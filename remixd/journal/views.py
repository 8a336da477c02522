"""The SQLite journal's operator views: spend, counts by state, the oldest claim, withheld images, failures.

They read and never write; `remixd status`, the metrics, the budget and the review page use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from remixd.errors import ErrorRecord
from remixd.journal.layout import NOT_DONE, path_held
from remixd.journal.ledger import dollars, spend_sql, sql_sum_usd
from remixd.journal.records import INPUT_STATES, JOB_STATES, Failure, Payment, Spend
from remixd.journal.rows import JournalRows, count_states
from remixd.journal.schema import load_json, parse_moment, parse_moment_or_none
from remixd.journal.withheld import Withheld, find_withheld

# The claim of the input's path just before it: the attempt `remixd retry` put back, when it is one.
# The input claimed at this one's path before it, by the index of paths, which holds a retried input (not done):
# a retried one counts only if no done input moved or deleted (which that index does not hold) was claimed there
# in between, read from the ids between the two (a retried file is claimed again within seconds: a few rows).
_LAST_BEFORE = f"""SELECT earlier.state, earlier.error FROM inputs AS this JOIN inputs AS earlier
    ON earlier.inbox = this.inbox AND earlier.relpath = this.relpath AND earlier.id < this.id
    AND {path_held("earlier.")}
    WHERE this.id = ? AND (earlier.state != 'retried' OR NOT EXISTS (SELECT 1 FROM inputs AS later
        WHERE later.id > earlier.id AND later.id < this.id AND later.inbox = this.inbox
        AND later.relpath = this.relpath))
    ORDER BY earlier.id DESC LIMIT 1"""  # noqa: S608 — a literal condition


class OperatorViews(JournalRows):
    """The read-only views of `SqliteJournal` (journal.sqlite)."""

    def oldest_claim(self) -> datetime | None:
        """When the oldest input still being processed was claimed (the metrics' backlog age)."""
        row = self._db.read(f"SELECT min(claimed_at) FROM inputs WHERE {NOT_DONE} AND state = 'claimed'")[0]  # noqa: S608
        return parse_moment_or_none(row[0])

    def spent(self, day: date, *, sandbox: bool = False) -> Spend:
        """What the requests sent that UTC day cost, answered or not (`unknown`: never answered); with
        `sandbox`, what the sandbox's would have (never billed, never counted against budget.*). Compacted
        inputs' spend is summed per day (journal.compact)."""
        return self._spend(
            "s.day = ?1 AND j.sandbox = ?2", "day = ?1 AND sandbox = ?2", (day.isoformat(), int(sandbox))
        )

    def spent_since(self, first: date, last: date | None = None) -> Spend:
        """What the requests sent on every UTC day from `first` to `last` (today, by the journal's clock) cost,
        answered or not, the sandbox's apart: a run's own spend against an API's ledger, which has no days. A
        request is dated by the UTC day it was sent (the budget's day), so a run that crossed midnight UTC
        has its spend on two days, and one day's figure looks like answered requests gone missing."""
        last = self._clock.utcnow().date() if last is None else last
        return self._spend(
            "s.day BETWEEN ?1 AND ?2 AND j.sandbox = 0",
            "day BETWEEN ?1 AND ?2 AND sandbox = 0",
            (first.isoformat(), last.isoformat()),
        )

    def spent_by_source(self, day: date) -> dict[str, float]:
        """That UTC day's billed spend by where each job's price came from (quote, usage, table): today's
        (past days' finished requests keep only their totals: journal.compact.fold_spend)."""
        rows = self._db.read(
            f"SELECT j.cost_source, {sql_sum_usd('s.usd')} FROM spend s JOIN jobs j ON j.id = s.job_id"  # noqa: S608
            " WHERE s.day = ? AND j.sandbox = 0 GROUP BY j.cost_source ORDER BY j.cost_source",
            (day.isoformat(),),
        )
        return {str(row[0]): dollars(row[1]) for row in rows}

    def possible_payments(self) -> Spend:
        """Every request, any day, that was sent and never answered either way: each may have been billed."""
        return self._spend("s.status = 'sent' AND j.sandbox = 0", "status = 'sent' AND sandbox = 0", ())

    def unwritten_payments(self, input_id: int) -> list[Payment]:
        """The requests the input's jobs sent that wrote no result: billed, or possibly (README "The sidecars
        are a second journal"). A written job's payments are in its sidecars."""
        rows = self._db.read(
            "SELECT j.rule, s.at, s.images, s.usd, s.status, j.cost_source, j.sandbox FROM spend s"
            " JOIN jobs j ON j.id = s.job_id WHERE j.input_id = ? AND j.state != 'written' ORDER BY s.id",
            (input_id,),
        )
        return [
            Payment(row[0], parse_moment(row[1]), row[2], row[3], row[4], row[5], sandbox=bool(row[6])) for row in rows
        ]

    def earlier_payments(self, input_id: int) -> list[Payment]:
        """What the input's earlier attempts paid (README "The sidecars are a second journal"): it failed after
        paying, `remixd retry` put it back (and removed its error file), and this claim of its path is the
        attempt after. The error file the last attempt left is kept in its row: its `payments` name what it
        sent that wrote no result, and what the attempts before it had, so one document holds them all."""
        rows = self._db.read(_LAST_BEFORE, (input_id,))
        if not rows or rows[0]["state"] != "retried":
            return []
        document = load_json(rows[0]["error"]) or {}
        sandbox = bool(document.get("sandbox"))
        return [Payment.from_json(paid, sandbox=sandbox) for paid in document.get("payments") or ()]

    def _spend(self, where: str, where_days: str, parameters: Sequence[Any]) -> Spend:
        # `where` and `where_days` are always one of this module's literal conditions
        row = self._db.read(spend_sql(where, where_days), parameters)[0]
        return Spend(images=int(row[0]), usd=dollars(row[1]), unknown=int(row[2]))

    def size(self) -> tuple[int, int]:
        """(bytes, free bytes) of the journal's file: free pages are given back to the file system a few at a
        time by the daemon's housekeeping (incremental vacuum)."""
        pages, free, page = (
            self._db.read(f"PRAGMA {name}")[0][0] for name in ("page_count", "freelist_count", "page_size")
        )
        return pages * page, free * page

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
        # Newest by the input's end, walking inputs_failed backwards (SQLite's planner prefers the state index
        # and then sorts every failed input); +j.state: each input's jobs are found by input (a handful).
        rows = self._db.read(
            """SELECT i.id, i.inbox, i.relpath, j.rule, coalesce(j.last_error, i.error) AS error,
                      coalesce(j.completed_at, i.finished_at) AS failed_at
               FROM inputs i INDEXED BY inputs_failed LEFT JOIN jobs j ON j.input_id = i.id AND +j.state = 'failed'
               WHERE i.state = 'failed' ORDER BY i.finished_at DESC, i.id DESC, j.id DESC LIMIT ?""",
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
