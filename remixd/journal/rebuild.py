"""A lost journal rebuilt from the sidecars: what was done is never paid for again (README "The sidecars are a
second journal").

A sidecar on disk means its result is complete, and it names what made it: the source's sha256, the rule and its
fingerprint, what it cost and when it was sent. With the journal gone (deleted, or state_dir moved), a kept
input, or the same image dropped again, would be sent and paid for again. Each finished job the sidecars tell of
is written back in the form compaction leaves (journal.compact): its result key and files for the duplicate
check (`results`), its spend summed into its day (`spend_days`, so today's budget counts what was already paid),
its place in the counts by state (`tallies`), and for an input kept in its inbox its size and mtime (`kept`: the
unchanged file is not claimed again, as with the journal that was lost). Each failed input its error file tells
of is written back as its row, for `remixd retry`.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remixd.journal.compact import result_key, store_results
from remixd.journal.rows import JournalRows
from remixd.journal.schema import dump_json, pack_hash, stamp

_SPEND_DAY = """INSERT INTO spend_days VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, images = images + excluded.images, usd = usd + excluded.usd"""
_TALLY = """INSERT INTO tallies VALUES (?, ?, ?)
    ON CONFLICT DO UPDATE SET count = count + excluded.count"""
BATCH = 5_000  # results written between two words of progress (a million jobs take more than a minute)
_FAILED = """INSERT INTO inputs (inbox, relpath, size, mtime_ns, sha256, state, detected_at, claimed_at, finished_at,
    error, disposal, disposed_to) VALUES (?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?, 'moved', ?)"""
NO_JOB = 0  # `results.job_id` of a rebuilt result: the job that wrote it is in no journal


@dataclass(frozen=True)
class FinishedJob:
    """One job as its sidecars tell it: one request sent, its results written."""

    inbox: str
    relpath: str
    sha256: str  # the source's
    rule: str
    fingerprint: str
    files: tuple[str, ...]  # as the journal keeps them: each result's image, or its sidecar when withheld
    day: str  # the UTC day its request was sent, YYYY-MM-DD
    sandbox: bool
    images: int
    usd: float
    possible_payments: int  # earlier requests for it a crash caught in flight: each may have been billed
    reroll: int | None  # `remixd reroll`'s id: sent again on purpose, paid again, not a result of its own
    kept: tuple[int, int] | None = None  # (size, mtime_ns) of an input that stayed in its inbox (`after: keep`)


@dataclass(frozen=True)
class FailedInput:
    """One failed input as its error file tells it: enough for `remixd retry` and the counts."""

    inbox: str
    relpath: str
    sha256: str | None
    size: int
    mtime_ns: int
    document: dict[str, Any]  # the error file, as the journal keeps it (`inputs.error`)
    failed_at: datetime
    failed_copy: str | None  # where it waits in its failed folder (`disposed_to`); None when it is gone


@dataclass(frozen=True)
class Rebuilt:
    inputs: int
    jobs: int
    usd: float
    failed: int = 0


def rebuild(
    db: sqlite3.Connection, jobs: Sequence[FinishedJob], failed: Sequence[FailedInput], progress: Callable[[int], None]
) -> Rebuilt:
    """Write `jobs` and `failed` back in the caller's write transaction; `progress` is told how many jobs are
    written. A failed input is a row of its own, as the lost journal had it (failed inputs are never
    compacted): `remixd retry` finds it by its failed copy, `remixd status` counts it."""
    db.executemany(
        _FAILED,
        [
            (
                item.inbox, item.relpath, item.size, item.mtime_ns, pack_hash(item.sha256), stamp(item.failed_at),
                stamp(item.failed_at), stamp(item.failed_at), dump_json(item.document), item.failed_copy,
            )
            for item in failed
        ],
    )  # fmt: skip
    if not jobs:
        return Rebuilt(0, 0, 0.0, len(failed))
    spend: dict[tuple[str, int, str], float] = defaultdict(float)
    requests: Counter[tuple[str, int, str]] = Counter()
    images: Counter[tuple[str, int, str]] = Counter()
    results: list[tuple[bytes, int, Sequence[str]]] = []
    for job in sorted(jobs, key=lambda job: job.reroll is not None):  # the first written result is the original
        results.append((result_key(job.sha256, job.rule, job.fingerprint), NO_JOB, job.files))
        billed = (job.day, int(job.sandbox), "billed")
        requests[billed] += 1
        images[billed] += job.images
        spend[billed] += job.usd
        if job.possible_payments:
            sent = (job.day, int(job.sandbox), "sent")
            requests[sent] += job.possible_payments
            images[sent] += job.images * job.possible_payments
            spend[sent] += job.usd * job.possible_payments
    for start in range(0, len(results), BATCH):
        progress(start)
        store_results(db, results[start : start + BATCH])
    progress(len(results))
    # The sources' sizes are not kept here: -1 tells `remixd plan` that any file may be a duplicate (it hashes all).
    db.execute("INSERT OR IGNORE INTO result_sizes VALUES (-1)")
    kept = [(job.inbox, job.relpath, *job.kept) for job in jobs if job.kept is not None]
    db.executemany("INSERT OR REPLACE INTO kept VALUES (?, ?, ?, ?)", kept)  # unchanged, never claimed again
    db.executemany(_SPEND_DAY, [(*key, requests[key], images[key], round(spend[key], 6)) for key in requests])
    inputs = len({(job.inbox, job.relpath, job.sha256, job.reroll) for job in jobs})
    db.execute(_TALLY, ("inputs", "done", inputs))
    db.execute(_TALLY, ("jobs", "written", len(jobs)))
    usd = round(sum(value for key, value in spend.items() if key[2] == "billed"), 6)
    return Rebuilt(inputs, len(jobs), usd, len(failed))


class Rebuilding(JournalRows):
    """The lost-journal part of `SqliteJournal` (journal.sqlite)."""

    def is_new(self) -> bool:
        """Nothing was ever claimed, compacted, kept or spent here: a new journal, or one lost and begun again."""
        row = self._db.read(
            "SELECT EXISTS (SELECT 1 FROM inputs) OR EXISTS (SELECT 1 FROM results) "
            "OR EXISTS (SELECT 1 FROM spend_days) OR EXISTS (SELECT 1 FROM kept)"
        )[0]
        return not row[0]

    def rebuild(
        self, jobs: Sequence[FinishedJob], failed: Sequence[FailedInput], progress: Callable[[int], None]
    ) -> Rebuilt:
        """What the sidecars say was done and paid, and the error files what failed, in one transaction (a
        start killed halfway leaves the journal new, and the next start rebuilds it whole)."""
        with self._db.write(durable=True) as db:
            return rebuild(db, jobs, failed, progress)
