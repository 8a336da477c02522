"""The spend ledger: every request counts as paid from the moment it is sent (README, "Every request counts").

A request's spend row is written in the same transaction that records it as sent, with status `sent`. The
API's 200 turns it `billed` (with what the answer holds); an answer that says nothing ran (429, 5xx, a 4xx
rejection) withdraws it. A row still `sent` is a request whose outcome nobody knows: a crash, a timeout or a
reset caught it in flight, so it counts against the budget and is shown as a possible payment.
These helpers run inside a write transaction of `journal.database`.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from remixd.journal.schema import stamp

# The journal keeps USD as REAL, as the API and the price table give it; every sum of amounts is taken in
# integer micro-dollars, exact at any count: floats added one by one drift (a million $0.08 summed to
# $80,000.000001), and the budget and `remixd status` would read the drift as money.
MICROS = 1_000_000


def micros(usd: float) -> int:
    return round(usd * MICROS)


def dollars(amount: int) -> float:
    """Integer micro-dollars as USD: the float nearest the exact amount."""
    return amount / MICROS


def sql_micros(column: str) -> str:
    """SQL: a column of USD as integer micro-dollars (`column` is always a literal name)."""
    return f"CAST(round({column} * {MICROS}) AS INTEGER)"


def sql_sum_usd(column: str) -> str:
    """SQL: the exact sum of a column of USD, in integer micro-dollars (0 for no rows)."""
    return f"coalesce(sum({sql_micros(column)}), 0)"


# An upsert's `usd` added exactly: the sum of the two amounts in micro-dollars, kept as USD.
ADD_USD = f"usd = ({sql_micros('usd')} + {sql_micros('excluded.usd')}) / {MICROS}.0"

# The jobs' column of possible payments, for `SELECT jobs.*, <this> FROM jobs`.
POSSIBLE_PAYMENTS = (
    "(SELECT count(*) FROM spend WHERE spend.job_id = jobs.id AND spend.status = 'sent') AS possible_payments"
)
_NEWEST_SENT = "(SELECT max(id) FROM spend WHERE job_id = ? AND status = 'sent')"


def record_sent(db: sqlite3.Connection, job: sqlite3.Row, moment: datetime) -> None:
    """The job's request is about to leave: it is a possible payment of the job's images, today."""
    db.execute(
        "INSERT INTO spend (job_id, day, at, images, usd, status) VALUES (?, ?, ?, ?, ?, 'sent')",
        (job["id"], moment.astimezone(UTC).date().isoformat(), stamp(moment), job["images"], job["cost_usd"]),
    )


def record_billed(db: sqlite3.Connection, job_id: int, images: int, usd: float, moment: datetime) -> None:
    """The API answered the newest request of the job: it was billed, for what the answer holds."""
    cursor = db.execute(
        f"UPDATE spend SET status = 'billed', images = ?, usd = ? WHERE id = {_NEWEST_SENT}",  # noqa: S608 — literal
        (images, usd, job_id),
    )
    if cursor.rowcount == 0:  # sent under a journal that did not record requests as sent
        db.execute(
            "INSERT INTO spend (job_id, day, at, images, usd, status) VALUES (?, ?, ?, ?, ?, 'billed')",
            (job_id, moment.astimezone(UTC).date().isoformat(), stamp(moment), images, usd),
        )


def withdraw(db: sqlite3.Connection, job_id: int) -> None:
    """The API's answer to the newest request of the job says nothing ran: it cost nothing."""
    db.execute(f"DELETE FROM spend WHERE id = {_NEWEST_SENT}", (job_id,))  # noqa: S608 — literal condition


def spend_sql(where: str, where_days: str) -> str:
    """(images, micro-dollars summed, requests never answered) of the spend rows matching `where` (on `spend s`
    joined to `jobs j`) and of the day totals matching `where_days` (on `spend_days`): past days' finished
    requests, compacted inputs and a rebuild's sidecars are summed there. Both are literal conditions."""
    return (
        f"SELECT coalesce(sum(images), 0), {sql_sum_usd('usd')}, coalesce(sum(unknown), 0) FROM ("  # noqa: S608
        "SELECT s.images, s.usd, s.status = 'sent' AS unknown FROM spend s JOIN jobs j ON j.id = s.job_id "
        "WHERE " + where + " UNION ALL SELECT images, usd, CASE status WHEN 'sent' THEN requests ELSE 0 END "
        "FROM spend_days WHERE " + where_days + ")"
    )
