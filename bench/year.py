"""The journal of a year: 10,000 inputs a day for 365 days, with finished inputs compacted after keep_days.

Building it through remixd would take days, so it is written with SQL, in the shapes remixd writes: inputs
within keep_days whole (request, answer, times, paths as a real run leaves them), older ones in the compacted
form of `remixd.journal.compact`, except one day, which is written whole and compacted by remixd itself (and
timed), so the two forms are compared on the same data. A few inputs are left claimed, for the recovery.

Its jobs are of the route the example config chooses (V2: Ideogram 4.0 on v2, async, each job with its
generation's id, time and seed, priced by the account's quote) unless `build` is told LEGACY (`/remix`, none of
these), the route the earlier figures were measured on.
"""

from __future__ import annotations

import base64
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


@dataclass(frozen=True)
class Route:
    endpoint: str  # as the worker journals it: the route's path
    model: str
    usd: float  # an image's price
    cost_source: str
    generations: bool  # async: a generation's id, time and seed journalled


V2 = Route("/v2/image/remix/ideogram-4", "ideogram-4", 0.06, "quote", generations=True)
LEGACY = Route("/remix", "V_2", 0.08, "table", generations=False)
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


def _gap(number: int, seconds: float, step: int) -> int:
    """Microseconds between two steps of input `number`: about `seconds`, to the microsecond as a clock has it."""
    return int(seconds * 1e6) + (number * 7_919 + step * 104_729) % 100_000 - 50_000


def _whole(first_id: int, count: int, day: datetime, route: Route, failed_only: bool = False) -> Iterator[Rows]:
    """(input, job, spend) rows of `count` inputs finished on `day`, as remixd's journal holds them."""
    from remixd.journal.compact import SLIM_GENERATION, slim_answer, slim_request  # the remixd beside bench/
    from remixd.journal.packing import LEFT, pack_job

    for offset in range(count):
        number = first_id + offset
        if failed_only and number % FAILED_EVERY:
            continue
        failed = number % FAILED_EVERY == 0
        moment = day + timedelta(seconds=offset * 86_400 / count)
        # Detected, claimed ~1 s later (settled), planned, sent ~0.1 s later, answered ~5 s later, written ~0.5 s later.
        detected = _stamp(moment)
        claimed = detected + _gap(number, 1.0, 0)
        created = claimed + _gap(number, 0.06, 1)
        submitted = created + _gap(number, 0.1, 2)
        answered = submitted + _gap(number, 5.0, 3)
        completed = answered + _gap(number, 0.5, 4)
        sha = hashlib.sha256(number.to_bytes(8, "big")).hexdigest()
        relpath = _relpath(number)
        prompt = f"A serene tropical beach, photo-{number:08d}"
        request = {**inputs.REQUEST, "prompt": prompt, "num_images": 1}
        seed, generation_id = 12345, None
        if route.generations:  # v2: the model in the route, no seed sent; the API's own, and its generation
            request = {"model": route.model, "prompt": prompt, "num_images": 1}
            seed = int(sha[:8], 16) % 2_147_483_648
            generation_id = base64.urlsafe_b64encode(bytes.fromhex(sha[8:40])).decode().rstrip("=")
        error = {"kind": "api_rejected", "message": "the API refused the image: 400 bad image", "hint": "check it"}
        # The answer as the client keeps it; a disposed input keeps its slim form, as remixd slims it.
        response = {
            "created": moment.isoformat(),
            "data": [
                {
                    "prompt": f"A serene tropical beach, photo-{number:08d}, with palm trees and soft light",
                    "resolution": "1024x1024",
                    "is_image_safe": True,
                    "seed": seed,
                    "style_type": "GENERAL",
                }
            ],
            "generation_id": generation_id,
            "seed": seed if route.generations else None,
            "usage_cost_usd_micros": None,
        }
        output = f"/srv/shop/outbox/{relpath[:-4]}.poster.1.png"
        job: dict[str, object] = {
            "id": number, "input_id": number, "rule": RULE, "fingerprint": _FINGERPRINT_ID,
            "endpoint": route.endpoint, "request": json.dumps(request, sort_keys=True), "images": 1,
            "cost_usd": route.usd,
            "state": "failed" if failed else "written", "attempts": 1,
            "last_error": json.dumps(error) if failed else None, "response": None, "files": "[]",
            "created_at": created, "submitted_at": submitted, "answered_at": None if failed else answered,
            "completed_at": completed, "generation_id": generation_id,
            "generation_at": submitted + _gap(number, 0.3, 5) if route.generations else None,
            "generation_seed": seed if route.generations else None, "cost_source": route.cost_source,
            "packed": None, "files_in": None,
        }  # fmt: skip
        if not failed:  # disposed of: packed, as remixd.journal.compact.slim_finished packs it
            columns = {**job, **SLIM_GENERATION}
            packed = pack_job(slim_request(request), slim_answer(response, request["prompt"]), [output], columns)
            job.update(LEFT, request=None, files=None, packed=packed.value, files_in=packed.folder)
        yield (
            (number, INBOX, relpath, _size(number), 1_700_000_000_000_000_000 + number, bytes.fromhex(sha),
             "failed" if failed else "done", detected, claimed, completed,
             json.dumps({"error": error}) if failed else None, "moved",
             ("/srv/shop/failed/" if failed else "/srv/shop/done/") + relpath),
            tuple(job.values()),
            (number, moment.date().isoformat(), submitted, 1, route.usd),
        )  # fmt: skip


_JOB_COLUMNS = """id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, attempts, last_error,
    response, files, created_at, submitted_at, answered_at, completed_at, generation_id, generation_at,
    generation_seed, cost_source, packed, files_in"""
_FILES_IN = -1  # of a job's row: its folder of files, named by number in _flush


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

    # A moved input's destination by its folder's number, as remixd.journal.sqlite.set_disposed keeps it, and
    # a packed job's files by theirs, as remixd.journal.compact.slim_finished does.
    places = [disposed_folder(str(row[0][2]), str(row[0][12])) for row in batch]
    names = {*places, *(row[1][_FILES_IN] for row in batch)} - {None}
    folders = {folder: folder_id(db, str(folder)) for folder in sorted(names, key=str)}
    db.executemany(
        "INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?)",
        [(*row[0][:12], folders[place]) for row, place in zip(batch, places, strict=True)],
    )
    db.executemany(
        f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * len(_JOB_COLUMNS.split(',')))})",  # noqa: S608
        [(*row[1][:_FILES_IN], folders.get(row[1][_FILES_IN])) for row in batch],
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


def _insert_compacted(db: sqlite3.Connection, first_id: int, count: int, day: datetime, route: Route) -> None:
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
        (day.date().isoformat(), len(done), len(done), route.usd * len(done)),
    )
    for kind, state in (("inputs", "done"), ("jobs", "written")):
        db.execute(
            "INSERT INTO tallies VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count",
            (kind, state, len(done)),
        )
    _insert_whole(db, _whole(first_id, count, day, route, failed_only=True))


def size(path: Path) -> int:
    return sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{path}{suffix}").exists())


def build(
    path: Path, *, per_day: int, days: int, keep_days: int, note: Callable[[str], None], route: Route = V2
) -> Year:
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
        _insert_compacted(db, 1 + day * per_day, per_day, first + timedelta(days=day), route)
    one_day = 1 + (old_days - 1) * per_day
    _insert_whole(db, _whole(one_day, per_day, first + timedelta(days=old_days - 1), route))  # compacted below
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before_day = size(path)
    db.execute("BEGIN")
    recent = one_day + per_day
    _insert_whole(db, _whole(recent, keep_days * per_day, first + timedelta(days=old_days), route))
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
