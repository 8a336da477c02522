"""A lost journal rebuilt from the sidecars: what was done is never paid for again (README "The sidecars are a
second journal").

A sidecar on disk means its result is complete, and it names what made it: the source's sha256, the rule and its
fingerprint, what it cost and when it was sent. With the journal gone (deleted, or state_dir moved), a kept
input, or the same image dropped again, would be sent and paid for again. Each finished job the sidecars tell of
is written back in the form compaction leaves (journal.compact): its result key and files for the duplicate
check (`results`), its spend summed into its day (`spend_days`, so today's budget counts what was already paid),
its place in the counts by state (`tallies`), and for an input kept in its inbox its size and mtime (`kept`: the
unchanged file is not claimed again, as with the journal that was lost). Each failed input its error file tells
of is written back as its row, for `remixd retry`, and what it may have paid into its day; so is what a retried
input's earlier attempts paid, which its sidecars name (each payment once, however many documents name it).

A million sidecars are never held in memory (README "A million files"): each is staged as one row of a
temporary table as it is read, a batch at a time, and the jobs are put together from there by SQLite, whose
temporary files live on disk. Memory stays flat in the number of sidecars (bench figure 10).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from remixd.journal.compact import result_key, store_results
from remixd.journal.ledger import ADD_USD, dollars, micros
from remixd.journal.records import Payment
from remixd.journal.schema import dump_json, pack_hash, stamp

T = TypeVar("T")

BATCH = 5_000  # rows staged or written per statement, and between two words of progress

_SPEND_DAY = f"""INSERT INTO spend_days VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, images = images + excluded.images, {ADD_USD}"""  # noqa: S608
_TALLY = """INSERT INTO tallies VALUES (?, ?, ?)
    ON CONFLICT DO UPDATE SET count = count + excluded.count"""
_FAILED = """INSERT INTO inputs (inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at, finished_at,
    error, disposal, disposed_to) VALUES (?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?, 'moved', ?)"""
# One row per result sidecar. `job` tells the sidecars of one job from another's, `input` one input from another:
# hashes of what names them, for this rebuild only (a collision of two would at worst miscount them; `result`,
# the duplicate check's key, is exact). The columns after `file` are the job's, the same in each of its sidecars,
# and read from its first (the lowest `place`), as the lost journal had them.
_STAGE = """CREATE TEMP TABLE rebuild_sidecars (reroll INTEGER NOT NULL, input INTEGER NOT NULL, job INTEGER NOT NULL,
    result BLOB NOT NULL, place INTEGER NOT NULL, rule TEXT NOT NULL, file TEXT NOT NULL, images INTEGER NOT NULL,
    day TEXT NOT NULL, sandbox INTEGER NOT NULL, usd_micros INTEGER NOT NULL, possible INTEGER NOT NULL, inbox TEXT,
    relpath TEXT, size INTEGER, mtime_ns INTEGER)"""
_STAGED = "INSERT INTO temp.rebuild_sidecars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# Each payment the error files and the sidecars name for nothing written, once: an input's every sidecar names
# its earlier attempts' payments, and an error file left behind by a retry that stopped halfway names them too.
_STAGE_PAYMENTS = """CREATE TEMP TABLE rebuild_payments (inbox TEXT NOT NULL, relpath TEXT NOT NULL,
    rule TEXT NOT NULL, at INTEGER NOT NULL, day TEXT NOT NULL, sandbox INTEGER NOT NULL, status TEXT NOT NULL,
    images INTEGER NOT NULL, usd_micros INTEGER NOT NULL, PRIMARY KEY (inbox, relpath, rule, at)) WITHOUT ROWID"""
_PAID = "INSERT OR IGNORE INTO temp.rebuild_payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_PAID_BY_DAY = """SELECT day, sandbox, status, count(*), sum(images), sum(usd_micros) FROM temp.rebuild_payments
    GROUP BY day, sandbox, status"""
# The first written result of a key is the original (rerolls come after it); an input's jobs, and a job's
# sidecars in their order, come together.
_IN_ORDER = "SELECT * FROM temp.rebuild_sidecars ORDER BY reroll, input, job, result, place"


class ResultSidecar(NamedTuple):
    """One result sidecar as the rebuild needs it: its job (one request sent, its results written) and its place."""

    inbox: str
    relpath: str
    sha256: str  # the source's
    rule: str
    fingerprint: str
    submitted_at: str  # the request's time as the sidecar names it (ISO, UTC): its day is its first ten characters
    reroll: int | None  # `remixd reroll`'s id: sent again on purpose, paid again, not a result of its own
    place: int  # of this result in its job, from 1
    images: int  # the job's
    file: str  # as the journal keeps it: the result's image, or this sidecar when withheld
    cost_usd: float  # of one image
    sandbox: bool
    possible_payments: int  # earlier requests for it a crash caught in flight: each may have been billed
    kept: tuple[int, int] | None  # (size, mtime_ns) of an input that stayed in its inbox (`after: keep`)
    earlier: tuple[Payment, ...] = ()  # what the input's attempts before `remixd retry` paid for nothing written


@dataclass(frozen=True)
class FailedInput:
    """One failed input as its error file tells it: enough for `remixd retry`, the counts and the budget."""

    inbox: str
    relpath: str
    sha256: str | None
    size: int
    mtime_ns: int
    document: dict[str, Any]  # the error file, as the journal keeps it (`inputs.error`)
    failed_at: datetime
    failed_copy: str | None  # where it waits in its failed folder (`disposed_to`); None when it is gone
    payments: tuple[Payment, ...] = ()  # what its unwritten jobs sent: each counts against its day's budget


@dataclass(frozen=True)
class Rebuilt:
    inputs: int
    jobs: int
    usd: float
    failed: int = 0
    incomplete: int = 0  # jobs with fewer sidecars than results


def _staged(item: ResultSidecar) -> tuple[Any, ...]:
    reroll = -1 if item.reroll is None else item.reroll
    kept = (item.inbox, item.relpath, *item.kept) if item.kept is not None else (None, None, None, None)
    return (
        item.reroll is not None, hash((item.inbox, item.relpath, item.sha256, reroll)),
        hash((item.inbox, item.relpath, item.sha256, item.rule, item.fingerprint, item.submitted_at, reroll)),
        result_key(item.sha256, item.rule, item.fingerprint), item.place, item.rule, item.file, item.images,
        item.submitted_at[:10], int(item.sandbox), micros(item.cost_usd) * item.images, item.possible_payments,
        *kept,
    )  # fmt: skip


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch


@dataclass
class _Totals:
    """What the ordered pass over the staged sidecars counted; money in integer micro-dollars (journal.ledger)."""

    inputs: int = 0
    jobs: int = 0
    incomplete: int = 0
    spend: dict[tuple[str, int, str], list[int]] = field(default_factory=dict)  # [requests, images, micros]

    def add(self, key: tuple[str, int, str], requests: int, images: int, usd_micros: int) -> None:
        """Spend of one day (`key`: day, sandbox, status)."""
        summed = self.spend.setdefault(key, [0, 0, 0])
        summed[0] += requests
        summed[1] += images
        summed[2] += usd_micros


def _stage_payments(db: sqlite3.Connection, named: Iterable[tuple[str, str, Iterable[Payment]]]) -> None:
    """The payments for nothing written that a batch of sidecars or error files name, each (inbox, relpath,
    payments), in one statement: almost every batch names none."""
    db.executemany(
        _PAID,
        [
            (
                inbox, relpath, paid.rule, stamp(paid.sent_at), paid.sent_at.astimezone(UTC).date().isoformat(),
                int(paid.sandbox), paid.status, paid.images, micros(paid.usd),
            )
            for inbox, relpath, payments in named
            for paid in payments
        ],
    )  # fmt: skip


def _write_failed(db: sqlite3.Connection, failed: Iterable[FailedInput]) -> int:
    """The failed inputs' rows, a batch at a time, and their payments staged; how many."""
    written = 0
    for batch in _batches(failed):
        db.executemany(
            _FAILED,
            [
                (
                    item.inbox, item.relpath, item.size, item.mtime_ns, pack_hash(item.sha256), stamp(item.failed_at),
                    stamp(item.failed_at), stamp(item.failed_at), dump_json(item.document), item.failed_copy,
                )
                for item in batch
            ],
        )  # fmt: skip
        written += len(batch)
        _stage_payments(db, ((item.inbox, item.relpath, item.payments) for item in batch))
    return written


def rebuild(
    db: sqlite3.Connection,
    sidecars: Iterable[ResultSidecar],
    failed: Iterable[FailedInput],
    progress: Callable[[int], None],
) -> Rebuilt:
    """Write what `sidecars` and `failed` tell back in the caller's write transaction; `progress` is told how
    many jobs are written. A failed input is a row of its own, as the lost journal had it (failed inputs are
    never compacted): `remixd retry` finds it by its failed copy, `remixd status` counts it."""
    for table in ("rebuild_sidecars", "rebuild_payments"):  # left by a rebuild that failed halfway
        db.execute(f"DROP TABLE IF EXISTS temp.{table}")
    db.execute(_STAGE)
    db.execute(_STAGE_PAYMENTS)
    try:
        for batch in _batches(sidecars):
            db.executemany(_STAGED, map(_staged, batch))
            _stage_payments(db, ((item.inbox, item.relpath, item.earlier) for item in batch))
        totals = _Totals()
        failures = _write_failed(db, failed)
        for day, sandbox, status, requests, images, usd in db.execute(_PAID_BY_DAY):
            totals.add((day, sandbox, status), requests, images, usd)
        for jobs in _batches(_jobs(db.execute(_IN_ORDER), totals)):
            progress(totals.jobs - len(jobs))
            store_results(db, [job[:3] for job in jobs])
            db.executemany("INSERT OR REPLACE INTO kept VALUES (?, ?, ?, ?)", [job[3] for job in jobs if job[3]])
        if totals.jobs:
            progress(totals.jobs)
        spend = [(*key, requests, images, dollars(usd)) for key, (requests, images, usd) in totals.spend.items()]
        db.executemany(_SPEND_DAY, spend)
        if totals.jobs:
            # The sources' sizes are not kept here: -1 tells `remixd plan` that any file may be a duplicate.
            db.execute("INSERT OR IGNORE INTO result_sizes VALUES (-1)")
            db.execute(_TALLY, ("inputs", "done", totals.inputs))
            db.execute(_TALLY, ("jobs", "written", totals.jobs))
    finally:
        db.execute("DROP TABLE temp.rebuild_sidecars")
        db.execute("DROP TABLE temp.rebuild_payments")
    billed = sum(usd for (_day, _sandbox, status), (_, _, usd) in totals.spend.items() if status == "billed")
    return Rebuilt(totals.inputs, totals.jobs, dollars(billed), failures, totals.incomplete)


def _jobs(rows: Iterable[sqlite3.Row], totals: _Totals) -> Iterator[tuple[Any, ...]]:
    """Each job of the staged sidecars, in _IN_ORDER, as (result key, rule, its files, its kept row or None),
    counted into `totals`."""
    last_input = None
    for (_reroll, input_key, _job, key), staged in itertools.groupby(rows, key=lambda row: tuple(row[:4])):
        first, *rest = staged
        rule, file, images, day, sandbox, usd, possible = first[5:12]
        totals.jobs += 1
        totals.inputs += input_key != last_input
        last_input = input_key
        totals.incomplete += 1 + len(rest) < images
        totals.add((day, sandbox, "billed"), 1, images, usd)
        if possible:
            totals.add((day, sandbox, "sent"), possible, images * possible, usd * possible)
        kept = tuple(first[12:]) if first[14] is not None else None
        yield key, rule, [file, *(row[6] for row in rest)], kept
