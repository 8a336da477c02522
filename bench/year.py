"""The journal of a year: 10,000 inputs a day for 365 days, with finished inputs compacted after keep_days.

Building it through remixd would take days, so it is written with SQL, in the shapes remixd writes: inputs
within keep_days whole (request, answer, times, paths as a real run leaves them), older ones in the compacted
form of `remixd.journal.compact`, except one day, which is written whole and compacted by remixd itself (and
timed), so the two forms are compared on the same data. A few inputs are left claimed, for the recovery.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import inputs

INBOX = "/srv/shop/inbox"
RULE, FINGERPRINT = "poster", hashlib.sha256(b"poster rule").hexdigest()
ENDPOINT = "/remix"  # as the worker journals it: the route's path
_FINGERPRINT_ID = 1  # the rule's fingerprint, the first `build` names (journal.layout: jobs name it by number)
Rows = tuple[tuple[object, ...], ...]  # one input's (input, job, spend) rows
UNFINISHED = 100  # claimed when the daemon stopped: what the recovery resumes
FAILED_EVERY = 500  # one input in 500 fails, and stays whole however old


@dataclass(frozen=True)
class Year:
    path: Path
    inputs: int
    build_s: float
    compact_day_s: float  # remixd compacting one day of 10,000 finished inputs
    bytes_whole_per_input: float
    bytes_compacted_per_input: float


def _stamp(moment: datetime) -> int:
    from remixd.journal.schema import stamp  # the remixd beside bench/: its layout of times

    return stamp(moment)


def _relpath(number: int) -> str:
    return f"folder-{number // 1000:05d}/photo-{number:08d}.jpg"


def _size(number: int) -> int:
    """Photos' sizes differ: the plan's lookup of sizes that can be duplicates holds one row per size."""
    return 100_000 + number % 900_000


def _whole(first_id: int, count: int, day: datetime, failed_only: bool = False) -> Iterator[Rows]:
    """(input, job, spend) rows of `count` inputs finished on `day`, as remixd's journal holds them."""
    from remixd.journal.compact import slim_answer, slim_request  # the remixd beside bench/
    from remixd.journal.packing import pack_job

    for offset in range(count):
        number = first_id + offset
        if failed_only and number % FAILED_EVERY:
            continue
        failed = number % FAILED_EVERY == 0
        moment = day + timedelta(seconds=offset * 86_400 / count)
        at = _stamp(moment)
        sha = hashlib.sha256(number.to_bytes(8, "big")).hexdigest()
        relpath = _relpath(number)
        request = {**inputs.REQUEST, "prompt": f"A serene tropical beach, photo-{number:08d}", "num_images": 1}
        error = {"kind": "api_rejected", "message": "the API refused the image: 400 bad image", "hint": "check it"}
        # The answer as the client keeps it; a disposed input keeps its slim form, as remixd slims it.
        response = {
            "created": moment.isoformat(),
            "data": [
                {
                    "prompt": f"A serene tropical beach, photo-{number:08d}, with palm trees and soft light",
                    "resolution": "1024x1024",
                    "is_image_safe": True,
                    "seed": 12345,
                    "style_type": "GENERAL",
                }
            ],
            "generation_id": None,
            "seed": None,
            "usage_cost_usd_micros": None,
        }
        output = f"/srv/shop/outbox/{relpath[:-4]}.poster.1.png"
        yield (
            (number, INBOX, relpath, _size(number), 1_700_000_000_000_000_000 + number, bytes.fromhex(sha),
             "failed" if failed else "done", at, at, at, json.dumps({"error": error}) if failed else None, "moved",
             ("/srv/shop/failed/" if failed else "/srv/shop/done/") + relpath),
            (number, number, RULE, _FINGERPRINT_ID, ENDPOINT,
             json.dumps(request, sort_keys=True) if failed else None, 1, 0.08,
             "failed" if failed else "written", 1, json.dumps(error) if failed else None, None,
             "[]" if failed else None, at, at, None if failed else at, at, None,
             None if failed else pack_job(slim_request(request), slim_answer(response, request["prompt"]), [output])),
            (number, moment.date().isoformat(), at, 1, 0.08),
        )  # fmt: skip


def _insert_whole(db: sqlite3.Connection, rows: Iterator[Rows]) -> None:
    batch: list[Rows] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 10_000:
            _flush(db, batch)
            batch = []
    _flush(db, batch)


def _flush(db: sqlite3.Connection, batch: list[Rows]) -> None:
    from remixd.journal.compact import disposed_folder, folder_id  # the remixd beside bench/

    # A moved input's destination by its folder's number, as remixd.journal.sqlite.set_disposed keeps it.
    places = [disposed_folder(str(row[0][2]), str(row[0][12])) for row in batch]
    folders = {folder: folder_id(db, folder) for folder in set(places) if folder is not None}
    db.executemany(
        "INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?)",
        [(*row[0][:12], folders[str(place)]) for row, place in zip(batch, places, strict=True)],
    )
    db.executemany(
        """INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts,
           last_error, response, files, created_at, submitted_at, answered_at, completed_at, duplicate_of, packed)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [row[1] for row in batch],
    )
    from remixd.journal.ledger import ADD_USD  # the remixd beside bench/

    # A finished job's billed request of a past day is summed into its day (remixd.journal.compact.fold_spend).
    today = datetime.now(UTC).date().isoformat()
    folded = [row[1][8] == "written" and str(row[2][1]) < today for row in batch]
    rows = [row[2] for row, fold in zip(batch, folded, strict=True) if not fold]
    db.executemany("INSERT INTO spend (job_id, day, at, images, usd) VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany(
        f"""INSERT INTO spend_days VALUES (?, 0, 'billed', 1, ?, ?) ON CONFLICT DO UPDATE SET
           requests = requests + 1, images = images + excluded.images, {ADD_USD}""",  # noqa: S608 — literal
        [(row[2][1], row[2][3], row[2][4]) for row, fold in zip(batch, folded, strict=True) if fold],
    )
    written = [(row[0][3],) for row in batch if row[1][8] == "written"]  # as remixd keeps them when written
    db.executemany("INSERT OR IGNORE INTO result_sizes VALUES (?)", written)


def _insert_compacted(db: sqlite3.Connection, first_id: int, count: int, day: datetime) -> None:
    """What remixd.journal.compact leaves of a day of finished inputs (failed ones stay whole)."""
    from remixd.journal.compact import result_key, store_results  # the remixd beside bench/

    done = [number for number in range(first_id, first_id + count) if number % FAILED_EVERY]
    store_results(
        db,
        (
            (
                result_key(hashlib.sha256(number.to_bytes(8, "big")).hexdigest(), RULE, FINGERPRINT),
                RULE,
                [f"/srv/shop/outbox/{_relpath(number)[:-4]}.poster.1.png"],
            )
            for number in done
        ),
    )
    db.executemany("INSERT OR IGNORE INTO result_sizes VALUES (?)", ((_size(number),) for number in done))
    db.execute(
        "INSERT INTO spend_days VALUES (?, 0, 'billed', ?, ?, ?)",
        (day.date().isoformat(), len(done), len(done), 0.08 * len(done)),
    )
    for kind, state in (("inputs", "done"), ("jobs", "written")):
        db.execute(
            "INSERT INTO tallies VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count",
            (kind, state, len(done)),
        )
    _insert_whole(db, _whole(first_id, count, day, failed_only=True))


def size(path: Path) -> int:
    return sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{path}{suffix}").exists())


def build(path: Path, *, per_day: int, days: int, keep_days: int, note: Callable[[str], None]) -> Year:
    from remixd.journal import packing
    from remixd.journal.sqlite import SqliteJournal

    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    SqliteJournal(path).close()  # remixd's own schema
    now = datetime.now(UTC)
    first = now - timedelta(days=days)
    db = sqlite3.connect(path, isolation_level=None)
    packing.register(db)  # the search's triggers read packed jobs through it
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    db.execute("INSERT INTO fingerprints VALUES (?, ?)", (_FINGERPRINT_ID, bytes.fromhex(FINGERPRINT)))
    old_days = days - keep_days
    for day in range(old_days - 1):  # compacted: what daily compaction leaves
        _insert_compacted(db, 1 + day * per_day, per_day, first + timedelta(days=day))
    one_day = 1 + (old_days - 1) * per_day
    _insert_whole(db, _whole(one_day, per_day, first + timedelta(days=old_days - 1)))  # remixd compacts it below
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before_day = size(path)
    db.execute("BEGIN")
    recent = one_day + per_day
    _insert_whole(db, _whole(recent, keep_days * per_day, first + timedelta(days=old_days)))
    total = recent + keep_days * per_day - 1
    db.executemany(
        """INSERT INTO inputs (id, inbox, relpath, size, mtime_ns, state, detected_at, claimed_at)
           VALUES (?, ?, ?, 1, 1, 'claimed', ?, ?)""",
        ((total + n, INBOX, f"unfinished/{n}.jpg", _stamp(now), _stamp(now)) for n in range(1, UNFINISHED + 1)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    whole_size = size(path)
    journal = SqliteJournal(path)
    try:
        compact_started = time.perf_counter()
        compacted = 0
        while batch := journal.compact(now - timedelta(days=keep_days), 2_000):
            compacted += batch
        compact_s = time.perf_counter() - compact_started
        journal.reclaim(pages=1 << 30)
    finally:
        journal.close()
    checkpoint = sqlite3.connect(path)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    recent_count = keep_days * per_day
    day_saved = whole_size - size(path)
    note(
        f"year journal: built in {time.perf_counter() - started:.0f} s; remixd compacted {compacted} inputs of one "
        f"day in {compact_s:.2f} s, freeing {day_saved / 1e6:.1f} MB"
    )
    whole_per_input = (whole_size - before_day) / recent_count
    compacted_part = size(path) - recent_count * whole_per_input
    return Year(
        path=path,
        inputs=total + UNFINISHED,
        build_s=time.perf_counter() - started,
        compact_day_s=compact_s * per_day / max(compacted, 1),
        bytes_whole_per_input=whole_per_input,
        bytes_compacted_per_input=compacted_part / (old_days * per_day),
    )
