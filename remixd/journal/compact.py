"""Compaction: what a finished input older than `journal.keep_days` is reduced to (README "A year of journal").

A year at 10,000 inputs a day is 3.65 million inputs, and each keeps about 1.7 kB of detail (the request sent,
the answer, times, paths) that only resuming it, `remixd status` and the review page read. Once an input is
finished, disposed of and older than keep_days, only what keeps remixd from paying for it again stays:

- per written result, its key (source hash, rule, fingerprint) and its files: the duplicate check (`results`;
  its source's size stays in `result_sizes`, kept when it was written);
- for a kept input, its path, size and mtime, so that it is not claimed again (`kept`);
- its spend, summed into its day (`spend_days`), and its place in the counts by state (`tallies`).

A finished input's billed spend of a past day is summed into its day sooner, the day after (`fold_spend`).

Failed inputs stay whole: they wait for the operator's `remixd retry`. An input whose result a newer
duplicate still points at waits until that duplicate is compacted too.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import sqlite3
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any

from remixd.journal.layout import FINGERPRINT_HASH
from remixd.journal.ledger import ADD_USD, MICROS, sql_sum_usd
from remixd.journal.packing import FILES_FOLDER, LEFT, MOVED, job_columns, pack_job
from remixd.journal.schema import dump_json, load_json, unpack_hash

COMPACTABLE = ("done", "duplicate", "vanished", "retried")
SHOWN_REQUEST = ("prompt", "model")  # what journal.slim_finished keeps of a request
SHOWN_ITEM = ("prompt", "seed", "resolution", "is_image_safe")  # ... and of each image of an answer
SLIM_GENERATION = dict.fromkeys(("generation_id", "generation_seed"))  # ... of its generation
SCAN_BATCH = 1_000  # rows read per query while looking for compactable inputs
KEY_BYTES = 10  # of a result's key
_NAME_PARTS = 4  # of the default output name: STEM.RULE.K.EXT

_TALLY = """INSERT INTO tallies VALUES (?, ?, ?)
    ON CONFLICT DO UPDATE SET count = count + excluded.count"""
# The day's USD summed exactly (journal.ledger): a day of 10,000 inputs adds 10,000 amounts.
_SPEND_TO_DAYS = f"""INSERT INTO spend_days
    SELECT s.day, j.sandbox, s.status, count(*), sum(s.images), {sql_sum_usd("s.usd")} / {MICROS}.0 FROM spend s
    JOIN jobs j ON j.id = s.job_id WHERE j.input_id = ? GROUP BY s.day, j.sandbox, s.status
    ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, images = images + excluded.images, {ADD_USD}"""  # noqa: S608


def result_key(sha256: str, rule: str, fingerprint: str) -> bytes:
    """10 bytes of sha256 over the three: a fixed-size key a tenth the size of the text it replaces. A year's
    3.65 million lookups meet a key of another of its 3.65 million results with a probability of about 2^-37
    (2^-80 per pair); 12 bytes cost 6.6 MB more of the bench's year. An older journal's longer keys (12 or 16
    bytes) start with it: `remixd plan` finds them by that start (journal.readonly), the daemon cuts them."""
    return hashlib.sha256(f"{sha256}\0{rule}\0{fingerprint}".encode()).digest()[:KEY_BYTES]


def result_folder(files: Sequence[str]) -> str | None:
    """The folder a compacted result's files are named in: the first one's, when every file is absolute."""
    if not files or not all(posixpath.isabs(name) for name in files):
        return None
    return posixpath.dirname(files[0])


def result_names(files: Sequence[str], folder: str | None) -> str:
    """The files as a compacted result keeps them: a file in `folder` by its name, any other whole. A name has
    no `/`, a whole path starts with one: `result_files` tells them apart. One file is kept as it is (4 bytes
    less than a JSON list of it, 11 MB of a year's 2.7 million results), several, or one whose name starts with
    `[`, as a JSON list."""
    names = [posixpath.basename(name) if posixpath.dirname(name) == folder else name for name in files]
    return _listed(names)


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 and not names[0].startswith("[") else dump_json(names)


def _unlisted(text: str) -> list[str]:
    return load_json(text) if text.startswith("[") else [text]


def result_tails(names: str, rules: Container[str]) -> tuple[str, str]:
    """(stem, tails) of a compacted result's names in its folder (`result_names`), when each is the default
    output name STEM.RULE.K.EXT of one STEM and a rule in `rules`; else (names, ''). A year's results mostly
    end the same way (`.poster.1.png`): their tails are named once in `result_places` with their folder, and
    each result keeps its stem, 13 of its 27 bytes in the bench's year. Only a rule's name may stand between
    the stem and the number, so an output name holding a seed or a time never makes a place of each result."""
    listed = _unlisted(names)
    parts = [name.rsplit(".", _NAME_PARTS - 1) for name in listed]
    stem = parts[0][0] if parts else ""
    if not stem or any(
        len(part) != _NAME_PARTS or part[0] != stem or part[1] not in rules or not part[2].isdecimal() for part in parts
    ):
        return names, ""
    return stem, _listed([name[len(stem) :] for name in listed])


def result_files(folder: str | None, tails: str | None, names: str) -> tuple[str, ...]:
    """The files of a compacted result: in `folder` (None: each named whole), its stem and `tails` or its names."""
    if tails:
        return tuple(posixpath.join(str(folder), names + tail) for tail in _unlisted(tails))
    listed = _unlisted(names)
    return tuple(listed if folder is None else (posixpath.join(folder, name) for name in listed))


def folder_id(db: sqlite3.Connection, path: str) -> int:
    """The number `path` is named by in `result_folders` (the folders of results and of disposed inputs)."""
    db.execute("INSERT OR IGNORE INTO result_folders (path) VALUES (?)", (path,))
    return int(db.execute("SELECT id FROM result_folders WHERE path = ?", (path,)).fetchone()[0])


def place_id(db: sqlite3.Connection, folder: int, tails: str) -> int:
    """The number a compacted result's folder and tails are named by in `result_places`."""
    db.execute("INSERT OR IGNORE INTO result_places (folder, tails) VALUES (?, ?)", (folder, tails))
    found = db.execute("SELECT id FROM result_places WHERE folder = ? AND tails = ?", (folder, tails)).fetchone()
    return int(found[0])


def disposed_folder(relpath: str, destination: str | None) -> str | None:
    """The folder a disposed input went to with its path kept below it (done/ + relpath), if it did."""
    below = destination is not None and len(destination) > len(relpath) + 1 and destination.endswith("/" + relpath)
    return destination[: -len(relpath) - 1] if below and destination is not None else None


def store_results(db: sqlite3.Connection, results: Iterable[tuple[bytes, str, Sequence[str]]]) -> None:
    """(key, rule, files) of written results, each kept once (the first written), its place named once."""
    places: dict[tuple[str, str], int] = {}
    for key, rule, files in results:
        folder = result_folder(files)
        number, names = None, result_names(files, folder)
        if folder is not None:
            names, tails = result_tails(names, (rule,))
            if (folder, tails) not in places:
                places[folder, tails] = place_id(db, folder_id(db, folder), tails)
            number = places[folder, tails]
        db.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?)", (key, number, names))


def compact(db: sqlite3.Connection, cutoff: int, limit: int) -> int:
    """Compact up to `limit` inputs finished before `cutoff` (a journal time stamp), oldest first, in the
    caller's write transaction; the number compacted. Ids follow claim times, so the walk stops at the first
    input claimed after the cutoff instead of reading the whole table."""
    compacted, after = 0, 0
    while compacted < limit:
        rows = db.execute(
            """SELECT id, inbox, relpath, size, mtime_ns, sha256, state, claimed_at, finished_at, disposal
               FROM inputs WHERE id > ? ORDER BY id LIMIT ?""",
            (after, SCAN_BATCH),
        ).fetchall()
        for row in rows:
            if row["claimed_at"] >= cutoff:
                return compacted
            after = row["id"]
            finished = row["finished_at"] is not None and row["finished_at"] < cutoff
            if finished and row["state"] in COMPACTABLE and row["disposal"] != "pending" and _compact_input(db, row):
                compacted += 1
                if compacted == limit:
                    break
        if len(rows) < SCAN_BATCH:
            break
    return compacted


def _compact_input(db: sqlite3.Connection, row: sqlite3.Row) -> bool:
    jobs = db.execute(
        f"SELECT id, rule, {FINGERPRINT_HASH}, state, request, response, files, packed, completed_at,"  # noqa: S608
        f" {FILES_FOLDER} FROM jobs WHERE input_id = ?",
        (row["id"],),
    ).fetchall()
    ids = [job["id"] for job in jobs]
    if (
        ids
        and db.execute(
            f"SELECT 1 FROM jobs WHERE duplicate_of IN ({','.join('?' * len(ids))}) LIMIT 1",  # noqa: S608 — placeholders only
            ids,
        ).fetchone()
    ):
        return False  # a newer duplicate points at this input's results: compacted after it
    if db.execute("SELECT 1 FROM rerolls WHERE ?1 IN (of_input, input_id) LIMIT 1", (row["id"],)).fetchone():
        return False  # `remixd reroll` history: kept whole (rerolls are few)
    written = [job for job in jobs if job["state"] == "written" and row["sha256"] is not None]
    sha256 = str(unpack_hash(row["sha256"]))
    keys = [result_key(sha256, job["rule"], str(unpack_hash(job["fingerprint_hash"]))) for job in written]
    store_results(db, [(key, job["rule"], job_columns(job)["files"]) for key, job in zip(keys, written, strict=True)])
    if row["disposal"] == "kept" and row["state"] in ("done", "duplicate"):
        db.execute(
            "INSERT OR REPLACE INTO kept VALUES (?, ?, ?, ?)",
            (row["inbox"], row["relpath"], row["size"], row["mtime_ns"]),
        )
    db.execute(_SPEND_TO_DAYS, (row["id"],))
    db.execute("DELETE FROM spend WHERE job_id IN (SELECT id FROM jobs WHERE input_id = ?)", (row["id"],))
    db.execute("DELETE FROM jobs WHERE input_id = ?", (row["id"],))
    db.execute("DELETE FROM inputs WHERE id = ?", (row["id"],))
    # The DELETE triggers took these rows out of the counts; a compacted input is still done (or duplicate…).
    db.execute(_TALLY, ("inputs", row["state"], 1))
    for job in jobs:
        db.execute(_TALLY, ("jobs", job["state"], 1))
    return True


# Billed requests of past UTC days whose jobs are packed (finished, their input disposed of: journal.packing):
# ids of a batch, then their sums into their days, as compaction sums them. Today's stay rows, for
# `remixd status`'s spend by price source; requests never answered stay rows, each a possible payment.
_FOLDABLE = """SELECT s.id FROM spend s JOIN jobs j ON j.id = s.job_id
    WHERE s.day < ? AND s.status = 'billed' AND j.packed IS NOT NULL LIMIT ?"""
_FOLD = f"""INSERT INTO spend_days SELECT s.day, j.sandbox, 'billed', count(*), sum(s.images),
    {sql_sum_usd("s.usd")} / {MICROS}.0
    FROM spend s JOIN jobs j ON j.id = s.job_id WHERE s.id IN (SELECT value FROM json_each(?))
    GROUP BY s.day, j.sandbox ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, images = images + excluded.images, {ADD_USD}"""  # noqa: S608


def fold_spend(db: sqlite3.Connection, before_day: str, limit: int) -> int:
    """Sum up to `limit` billed requests of finished jobs sent before `before_day` (ISO) into their days (the
    ledger of a year is then a row per day: spent() adds both), in the caller's write transaction; how many."""
    ids = dump_json([row[0] for row in db.execute(_FOLDABLE, (before_day, limit))])
    db.execute(_FOLD, (ids,))
    return db.execute("DELETE FROM spend WHERE id IN (SELECT value FROM json_each(?))", (ids,)).rowcount


def slim_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """What the review page shows of a finished job's request: its prompt and its model."""
    return {key: request[key] for key in SHOWN_REQUEST if key in request}


def slim_answer(answer: Mapping[str, Any], sent_prompt: object) -> dict[str, Any]:
    """What the review page shows of a finished job's answer, per image: the prompt Ideogram used (when it
    is not the one sent), the seed, the resolution, and a withheld verdict. The links expired within the hour."""
    items = answer.get("data")
    slim: list[Any] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            slim.append(item)
            continue
        kept = {key: item[key] for key in SHOWN_ITEM if item.get(key) is not None}
        if kept.get("prompt") == sent_prompt:
            del kept["prompt"]
        if kept.get("is_image_safe") is True:
            del kept["is_image_safe"]
        slim.append(kept)
    return {"data": slim}


# What slim_finished reads of a finished job, and what it leaves in the row (journal.packing).
_PACKABLE = f"""SELECT id, request, response, files, completed_at, {", ".join(MOVED)} FROM jobs
    WHERE input_id = ? AND state IN ('written', 'duplicate') AND packed IS NULL"""  # noqa: S608 — literal names
_PACKED = f"""UPDATE jobs SET request = NULL, response = NULL, files = NULL, packed = ?, files_in = ?,
    {", ".join(f"{name} = ?" for name in LEFT)} WHERE id = ?"""  # noqa: S608 — as above


def slim_finished(db: sqlite3.Connection, input_id: int) -> None:
    """A disposed input's finished jobs keep what the review page shows of their request and answer, half
    of a job's row (the sidecars beside the results keep the whole of both), packed with their files and the
    columns no SQL reads of them (journal.packing): they never change again. A generation's id and seed go:
    remixd polled by the id, and the sidecars name both (26 of a v2 job's 156 bytes packed, the id random). Its
    time stays (3 bytes), with the job's others: when Ideogram accepted the request."""
    for row in db.execute(_PACKABLE, (input_id,)).fetchall():
        request = load_json(row["request"])
        response = load_json(row["response"])
        slim = None if response is None else slim_answer(response, request.get("prompt"))
        columns = {**dict(zip(row.keys(), row, strict=True)), **SLIM_GENERATION}
        packed = pack_job(slim_request(request), slim, load_json(row["files"]), columns)
        folder = None if packed.folder is None else folder_id(db, packed.folder)
        db.execute(_PACKED, (packed.value, folder, *LEFT.values(), row["id"]))


def register_migrating(connection: sqlite3.Connection) -> None:
    """The journal's own SQL functions journal.layout's migrations of results need, of their rows' texts."""
    functions: dict[str, Callable[..., str | None]] = {
        "result_folder": lambda files: result_folder(load_json(files)),
        "result_names": lambda files: result_names(load_json(files), result_folder(load_json(files))),
        # Of a result's names, given the rule names seen (a JSON list).
        "result_stem": lambda names, rules: result_tails(names, _rule_names(rules))[0],
        "result_ending": lambda names, rules: result_tails(names, _rule_names(rules))[1],
    }
    for name, function in functions.items():
        connection.create_function(name, function.__code__.co_argcount, function, deterministic=True)


@functools.lru_cache(maxsize=1)
def _rule_names(listed: str) -> frozenset[str]:
    """The rule names a migration gives, read once for its millions of rows."""
    return frozenset(load_json(listed))
