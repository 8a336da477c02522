"""Figure 9: the review page's gallery with 100,000 inputs in the journal.

The journal is filled with rows as remixd writes them (through its own schema and triggers), then real pages are
asked of a real review server on loopback, rendering included: the newest page, a page deep in the history, a
rule and state filter, and searches (one matching nothing, the worst case for a scan). The reference is the same
page with 1,000 inputs in the journal.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import statistics
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from bench.figures import Row, Sizes

RULES = ("poster", "square", "product", "brand")
WORDS = ("beach", "forest", "studio", "neon", "watercolour", "sunset", "harbour", "market")
REFERENCE_INPUTS = 1_000
REQUESTS = 25  # per page; the median is reported
TARGET_MS = 100.0
PAGES = (
    ("newest page", ""),
    ("page a third of the way back", "?before={deep}"),
    ("rule and state filter", "?rule=brand&state=done"),
    ("search, no match", "?q=nothing-like-this"),
    ("search, file name", "?q=photo-000{probe}"),
    ("search, prompt word", "?q=harbour"),
)


def populate(journal_path: Path, inbox: Path, count: int, seed: int = 7) -> None:
    """`count` inputs, each with one job: mostly done with a result, every 50th failed, the last 5 claimed."""
    from remixd.journal import packing
    from remixd.journal.compact import folder_id, slim_answer, slim_request
    from remixd.journal.jobs import fingerprint_id
    from remixd.journal.schema import dump_json, pack_hash, stamp
    from remixd.journal.sqlite import SqliteJournal

    SqliteJournal(journal_path).close()  # the schema at the current version, with its indexes and triggers
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    failure = dump_json({"error": {"kind": "api_rejected", "message": "rejected", "hint": "change the prompt"}})
    inputs, jobs = [], []
    for number in range(1, count + 1):
        moment = stamp(start + timedelta(seconds=number * 7))
        state = "failed" if number % 50 == 0 else "claimed" if number > count - 5 else "done"
        done, claimed = state == "done", state == "claimed"
        rule = RULES[number % len(RULES)]
        name = f"shoot-{number // 1000:03d}/photo-{number:06d}.jpg"
        prompt = f"A {rng.choice(WORDS)} scene, photo-{number:06d}"
        response = {
            "created": moment,
            "data": [{"url": f"https://ideogram.example/{number}", "prompt": prompt + ", detailed",
                      "seed": number, "is_image_safe": True, "resolution": "1024x1024"}],
        }  # fmt: skip
        request, files = {"prompt": prompt}, [f"/srv/outbox/{name[:-4]}.{rule}.1.png"]
        # Sent ~0.1 s after it was planned, answered ~5 s after, written ~0.5 s after (the microseconds differ).
        submitted = moment + 100_000 + number % 1_000
        completed = submitted + 5_500_000 + number * 7_919 % 100_000
        # Detected ~1 s before its claim (settled), finished when its job was written.
        inputs.append(
            (number, str(inbox), name, 123_456, number, pack_hash(f"{number:064x}"), state,
             moment - 1_000_000 - number % 50_000, moment, None if claimed else completed,
             failure if state == "failed" else None, None if claimed else "moved",
             None if claimed else f"/srv/done/{name}")
        )  # fmt: skip
        job: dict[str, Any] = {
            "id": number, "input_id": number, "rule": rule, "fingerprint": None,
            "endpoint": "/remix", "request": dump_json(request), "images": 1, "cost_usd": 0.08,
            "state": "written" if done else "failed" if state == "failed" else "pending", "attempts": int(not claimed),
            "last_error": None, "response": None, "files": "[]", "created_at": moment,
            "submitted_at": None if claimed else submitted, "answered_at": completed - 400_000 if done else None,
            "completed_at": None if claimed else completed, "generation_id": None, "generation_at": None,
            "generation_seed": None, "packed": None, "files_in": None,
        }  # fmt: skip
        if done:  # a done (moved) input's job is slimmed and packed, as remixd leaves it (compact.slim_finished)
            packed = packing.pack_job(slim_request(request), slim_answer(response, prompt), files, job)
            job.update(packing.LEFT, request=None, files=None, packed=packed.value, files_in=packed.folder)
        jobs.append(job)
    db = sqlite3.connect(journal_path)
    packing.register(db)  # the search's triggers read packed jobs through it
    with db:
        moved_to = folder_id(db, "/srv/done")  # a moved input's destination by its folder (journal.layout)
        # A rule's requests share its fingerprint, by number (journal.layout).
        rules = {job["rule"] for job in jobs}
        fingerprints = {rule: fingerprint_id(db, hashlib.sha256(rule.encode()).hexdigest()) for rule in rules}
        db.executemany(
            "INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?)",
            [(*row[:12], None if row[12] is None else moved_to) for row in inputs],
        )
        names = {job["files_in"] for job in jobs if job["files_in"] is not None}
        outputs = {name: folder_id(db, name) for name in sorted(names)}  # a packed job's folder of files, too
        for job in jobs:
            job.update(fingerprint=fingerprints[job["rule"]], files_in=outputs.get(job["files_in"]))
        db.executemany(
            f"INSERT INTO jobs ({', '.join(jobs[0])}) VALUES ({', '.join('?' * len(jobs[0]))})",  # noqa: S608
            [tuple(job.values()) for job in jobs],
        )
    db.close()


def _pages(root: Path, count: int) -> dict[str, float]:
    """Median milliseconds per page, over HTTP, with `count` inputs in the journal."""
    from remixd.config.load import load_config
    from remixd.review.pages import Live
    from remixd.review.server import ReviewServer

    root.mkdir(parents=True)
    (root / "inbox").mkdir()
    document = {
        "api": {"sandbox": True},
        "state_dir": "./state",
        "ui": {"listen": "127.0.0.1:0"},
        "inboxes": [{"path": "./inbox", "output": "./outbox", "failed_dir": "./failed", "after": "keep"}],
        "rules": [{"name": name, "match": ["*.jpg"], "request": {"prompt": "{stem}"}} for name in RULES],
    }
    (root / "remixd.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(root / "remixd.yaml")
    assert config.ui is not None
    populate(config.state_dir / "journal.sqlite3", config.inboxes[0].path, count)
    server = ReviewServer(
        config.ui,
        token=None,
        journal_path=config.state_dir / "journal.sqlite3",
        config=lambda: config,
        live=lambda: Live(0, 0, 10, ()),
        retry=lambda _id: [],
    )
    server.start()
    medians: dict[str, float] = {}
    try:
        for label, path in PAGES:
            url = server.url.rstrip("/") + "/" + path.format(deep=count * 2 // 3, probe=count // 3)
            timings = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback URL built here
                    answer.read()
                timings.append((time.perf_counter() - started) * 1000)
            medians[label] = statistics.median(timings)
    finally:
        server.stop()
    return medians


def review(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.figures import Row

    started = time.monotonic()
    large = _pages(work / "large", sizes.review_inputs)
    filled = time.monotonic() - started
    small = _pages(work / "small", min(REFERENCE_INPUTS, sizes.review_inputs // 10))
    note(f"review: {sizes.review_inputs} inputs written and {len(PAGES)} pages x {REQUESTS} asked in {filled:.0f} s")
    return [
        Row(
            figure=f"9 review: gallery {label}, {sizes.review_inputs} inputs",
            measured=large[label],
            unit="ms",
            reference=small[label],
            reference_label=f"same page, {min(REFERENCE_INPUTS, sizes.review_inputs // 10)} inputs",
            ratio=large[label] / small[label] if small[label] else None,
            target=f"<= {TARGET_MS:.0f} ms",
            met=large[label] <= TARGET_MS,
        )
        for label, _path in PAGES
    ]
