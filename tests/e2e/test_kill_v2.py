"""kill -9 at random moments on an async v2 route: every input ends done exactly once, and a generation whose id
reached the journal is polled after the restart, never sent again.

The kills are spread across the runs (`storm.kill_across_runs`): some during recovery, the others one in each
slice of a run's first RUN_S seconds, with inputs enough waiting that each run works until its kill. It reports
the repeats per kill, for the kills that met the start-up burst and for the later ones, and the window a kill
can cost a repeat in: from the request having arrived at the API (the sandbox's clock) to its generation id
committed (the journal's), per job, beside the whole way from the "sent" row.

`remixd run` is a subprocess against the sandbox (in this process, so the sandbox survives every kill); the
storm itself, and the checks of the disk, are shared with the legacy kill test (`storm.py`). A repeat is an
input sent twice: only a kill between sending a request and committing its generation id can cause one.

A count over few kills is coarse (runs of 0.0 and of 0.6 per kill were both seen with ten), so beside it the test
reports the repeats a kill costs on average, measured rather than counted: the time the killed runs spent with
a request in its window, summed over the requests, over the runs' whole time. From the request's arrival at the
sandbox it is a lower bound (`expected_repeats_per_kill`: a request sent before a kill and read by the sandbox
after it, seen up to 8 ms later, is missed); from its "sent" row, an upper one (`..._from_sent_row`).
"""

from __future__ import annotations

import bisect
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

KILLS = storm.kill_count(20)
pytestmark = [pytest.mark.e2e, storm.time_limit(KILLS)]
RUN_S = 2.0  # the kills after remixd.started land within this long of it
BACKLOG = 100  # inputs waiting at each spawn: more than a run finishes before its kill (about 30 a second)
IN_FLIGHT = storm.in_flight(4)
PRODUCT = {
    "name": "poster",
    "match": ["*.jpg"],
    "request": {"model": "ideogram-4", "prompt": "studio shot of {stem}", "rendering_speed": "turbo"},
}
ROUTE = "/v2/image/remix/ideogram-4"
Span = tuple[float, float]  # wall-clock seconds: a request's arrival at the API to its id committed


def test_kill_9_on_an_async_v2_route_resumes_generations_by_polling(
    tmp_path: Path, sandbox: SandboxServer, record_property: Callable[[str, object], None]
) -> None:
    rng = storm.seeded(record_property)
    api = {"max_in_flight_images": IN_FLIGHT, "poll_interval_s": 0.05}
    config = write_config(tmp_path, sandbox.base_url, rules=[PRODUCT], api=api, inbox={"settle_s": 0.2})
    inbox, originals = tmp_path / "inbox", dict[str, str]()

    def top_up() -> None:
        first = len(originals)
        names = [f"in-{n:03d}.jpg" for n in range(first, first + BACKLOG - len(list(inbox.glob("*.jpg"))))]
        originals.update(storm.drop(inbox, names, first))

    kills = storm.kill_across_runs(config, sandbox, rng, KILLS, run_s=RUN_S, top_up=top_up)
    inputs = len(originals)
    storm.run_to_the_end(config, inputs)

    expected_outbox = sorted(f"{Path(name).stem}.poster.1.{ext}" for name in originals for ext in ("json", "png"))
    posts = [r for r in sandbox.received if r.path == ROUTE and not r.dry_run]
    sent = storm.tally(posts, tmp_path / "outbox", expected_outbox)
    numbers = storm.numbers(sent, kills, sandbox.ledger.requests, inputs, IN_FLIGHT)
    repeats = storm.repeats_by_run(sent, kills)
    spans, windows_ms = windows(tmp_path / "state" / JOURNAL_NAME, posts, kills)
    expected = {
        "expected_repeats_per_kill": round(at_risk_share([(s[0], s[2]) for s in spans], kills), 3),
        "expected_repeats_per_kill_from_sent_row": round(at_risk_share([(s[1], s[2]) for s in spans], kills), 3),
    }
    storm.record({**numbers, **storm.repeats_split(kills, repeats), **windows_ms, **expected}, record_property)

    storm.check_sent(sent, originals, kills, inputs, IN_FLIGHT, sandbox.options.inflight_limit)
    assert sum(repeats) == sent.resent  # every repeat began in a killed run
    # Every generation Ideogram accepted was billed; beyond one per input, only the resent ones.
    assert sandbox.ledger.requests == inputs + sent.resent
    assert all(not r.ignored_fields for r in posts)
    storm.check_disk(tmp_path, originals, expected_outbox)
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        counts = journal.counts()
        assert (counts["done"], counts["claimed"], counts["failed"], counts["duplicate"]) == (inputs, 0, 0, 0)
        assert journal.job_counts()["written"] == inputs
        assert journal.unfinished() == []
        assert journal.generating() == []
    finally:
        journal.close()
    assert all(run.waiting for run in kills.runs), "every kill must land while inputs wait; raise BACKLOG"
    steady = [run for run in kills.runs if not run.in_startup]
    # The later kills sample a run at work: inputs finished before them.
    assert steady and all(run.done_after > run.done_before for run in steady), "lengthen RUN_S"


def windows(
    path: Path, posts: list[ReceivedRequest], kills: storm.Storm
) -> tuple[list[tuple[float, float, float]], dict[str, float]]:
    """Per job, in ms: its accepted request's arrival at the sandbox to its generation id in the journal (a
    kill there costs a repeat), split at the sandbox's answer, and its "sent" row to that id. The id's time is
    its transaction's, a fraction of a millisecond before the commit; a resent input's accepted request is its
    last one. Also every accepted request's span at risk (wall clock): from its arrival and from its "sent" row
    to its id's commit; for a request sent again later, from its arrival (its row was written over) to the kill
    of the run it arrived in (its id never reached the journal)."""
    accepted = sorted((r for r in posts if r.status == 200 and r.arrived is not None), key=lambda r: r.arrived or 0)
    last = {r.sha256: r for r in accepted}
    journal = SqliteJournal(path)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as database:
            ids = [row[0] for row in database.execute("SELECT id FROM jobs")]
        jobs = [journal.get_job(job_id) for job_id in ids]
        sources = {job.id: journal.get_input(job.input_id).sha256 for job in jobs}
    finally:
        journal.close()
    committed, at_risk, sandbox_part, whole = {}, [], [], []
    for job in jobs:
        assert job.submitted_at is not None and job.generation_at is not None
        recorded, request = job.generation_at.timestamp(), last[sources[job.id]]
        assert request.arrived is not None
        committed[request.sha256] = (job.submitted_at.timestamp(), recorded)
        at_risk.append((recorded - request.arrived) * 1000)
        sandbox_part.append((request.at - request.arrived) * 1000)
        whole.append((recorded - job.submitted_at.timestamp()) * 1000)
    spawns = [run.spawned_at for run in kills.runs]
    spans = []
    for request in accepted:
        arrived = request.arrived or 0.0
        if request is last[request.sha256]:
            spans.append((arrived, *committed[request.sha256]))
        else:  # sent again: its run was killed before its id was committed
            killed = kills.runs[bisect.bisect_right(spawns, arrived) - 1].killed_at
            spans.append((arrived, arrived, killed))
    return spans, {
        "window_ms_mean": round(statistics.mean(at_risk), 2),
        "window_ms_p50": round(statistics.median(at_risk), 2),
        "window_ms_max": round(max(at_risk), 2),
        "window_sandbox_ms_mean": round(statistics.mean(sandbox_part), 2),
        "sent_row_to_id_ms_mean": round(statistics.mean(whole), 2),
    }


def at_risk_share(spans: list[Span], kills: storm.Storm) -> float:
    """The repeats a kill at a random moment of the killed runs costs on average: the time each request spent
    in its window within a killed run, summed, over the runs' time (spawn to kill)."""
    inside = sum(
        max(0.0, min(end, run.killed_at) - max(start, run.spawned_at)) for start, end in spans for run in kills.runs
    )
    return inside / sum(run.killed_at - run.spawned_at for run in kills.runs)
