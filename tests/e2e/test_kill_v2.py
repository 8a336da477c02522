"""kill -9 at random moments on an async v2 route: every input ends done exactly once, and a generation whose id
reached the journal is polled after the restart, never sent again.

It reports the window a kill can cost a repeat in: from the request having arrived at the API (the sandbox's
clock) to its generation id committed (the journal's), per job, beside the whole way from the "sent" row.

`remixd run` is a subprocess against the sandbox (in this process, so the sandbox survives every kill); the
storm itself, and the checks of the disk, are shared with the legacy kill test (`storm.py`). A repeat is an
input sent twice: only a kill between sending a request and committing its generation id can cause one.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from remixd.sandbox.state import ReceivedRequest
from tests.e2e import storm
from tests.helpers import write_config

pytestmark = pytest.mark.e2e

INPUTS = 30
KILLS = 10
IN_FLIGHT = 4
PRODUCT = {
    "name": "poster",
    "match": ["*.jpg"],
    "request": {"model": "ideogram-4", "prompt": "studio shot of {stem}", "rendering_speed": "turbo"},
}
ROUTE = "/v2/image/remix/ideogram-4"


def test_kill_9_on_an_async_v2_route_resumes_generations_by_polling(
    tmp_path: Path, sandbox: SandboxServer, record_property: Callable[[str, object], None]
) -> None:
    rng = storm.seeded(record_property)
    api = {"max_in_flight_images": IN_FLIGHT, "poll_interval_s": 0.05}
    config = write_config(tmp_path, sandbox.base_url, rules=[PRODUCT], api=api, inbox={"settle_s": 0.2})
    names = [f"in-{number:02d}.jpg" for number in range(INPUTS)]
    originals = storm.drop(tmp_path / "inbox", names, lambda n: (n * 5, 255 - n * 5, n * 37 % 256))

    kills = storm.kill_at_random(config, sandbox, rng, KILLS)
    storm.run_to_the_end(config, INPUTS)

    expected_outbox = sorted(f"in-{n:02d}.poster.1.{ext}" for n in range(INPUTS) for ext in ("json", "png"))
    posts = [r for r in sandbox.received if r.path == ROUTE and not r.dry_run]
    sent = storm.tally(posts, tmp_path / "outbox", expected_outbox)
    numbers = storm.numbers(sent, kills, sandbox.ledger.requests, INPUTS, IN_FLIGHT)
    storm.record({**numbers, **windows(tmp_path / "state" / JOURNAL_NAME, posts)}, record_property)

    storm.check_sent(sent, originals, kills, INPUTS, IN_FLIGHT)
    # Every generation Ideogram accepted was billed; beyond one per input, only the resent ones.
    assert sandbox.ledger.requests == INPUTS + sent.resent
    assert all(not r.ignored_fields for r in posts)
    storm.check_disk(tmp_path, originals, expected_outbox)
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        counts = journal.counts()
        assert (counts["done"], counts["claimed"], counts["failed"], counts["duplicate"]) == (INPUTS, 0, 0, 0)
        assert journal.job_counts()["written"] == INPUTS
        assert journal.unfinished() == []
        assert journal.generating() == []
    finally:
        journal.close()
    assert kills.landed_in_work(INPUTS) >= KILLS * 0.7, "kills must land while work remains; shorten WORK_KILL_S"


def windows(path: Path, posts: list[ReceivedRequest]) -> dict[str, float]:
    """Per job, in ms: its accepted request's arrival at the sandbox to its generation id in the journal (a
    kill there costs a repeat), and its "sent" row to that id. The id's time is its transaction's, a
    fraction of a millisecond before the commit; a resent input's accepted request is its last one."""
    arrived = {r.sha256: r.arrived for r in posts if r.status == 200 and r.arrived is not None}
    journal = SqliteJournal(path)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as database:
            ids = [row[0] for row in database.execute("SELECT id FROM jobs")]
        jobs = [journal.get_job(job_id) for job_id in ids]
        sources = {job.id: journal.get_input(job.input_id).sha256 for job in jobs}
    finally:
        journal.close()
    at_risk, whole = [], []
    for job in jobs:
        assert job.submitted_at is not None and job.generation_at is not None
        recorded = job.generation_at.timestamp()
        at_risk.append((recorded - arrived[sources[job.id]]) * 1000)
        whole.append((recorded - job.submitted_at.timestamp()) * 1000)
    return {
        "window_ms_mean": round(statistics.mean(at_risk), 2),
        "window_ms_p50": round(statistics.median(at_risk), 2),
        "window_ms_max": round(max(at_risk), 2),
        "sent_row_to_id_ms_mean": round(statistics.mean(whole), 2),
    }
