"""kill -9 at random moments on an async v2 route: every input ends done exactly once, and a generation whose id
reached the journal is polled after the restart, never sent again.

`remixd run` is a subprocess against the sandbox (in this process, so the sandbox survives every kill); the
storm itself, and the checks of the disk, are shared with the legacy kill test (`storm.py`). A repeat is an
input sent twice: only a kill between sending a request and committing its generation id can cause one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
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

    posts = [r for r in sandbox.received if r.path == ROUTE and not r.dry_run]
    # A kill in the middle of an upload leaves the sandbox a cut body: answered 400, never run or billed.
    cut = [r for r in posts if r.sha256 is None]
    sent = Counter(r.sha256 for r in posts if r.sha256 is not None)
    resent = sum(count - 1 for count in sent.values())
    expected_outbox = sorted(f"in-{n:02d}.poster.1.{ext}" for n in range(INPUTS) for ext in ("json", "png"))
    outbox_files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    duplicates = len([name for name in outbox_files if name not in expected_outbox])
    numbers = {
        "inputs": INPUTS,
        "kills": kills.kills,
        "requests": len(posts),
        "billed": sandbox.ledger.requests,
        "resent": resent,
        "repeats_per_kill": round(resent / kills.kills, 3),
        "cut_uploads": len(cut),
        "duplicates": duplicates,
        "ceiling": IN_FLIGHT,
        "bound": INPUTS + kills.kills * IN_FLIGHT,
    }
    storm.record(numbers, record_property)

    assert len(posts) <= INPUTS + kills.kills * IN_FLIGHT
    # Every generation Ideogram accepted was billed; beyond one per input, only the resent ones.
    assert sandbox.ledger.requests == INPUTS + resent
    assert all(not r.ignored_fields for r in posts)
    assert set(sent) == set(originals.values())  # every input was sent, none other
    assert len(cut) <= kills.kills and all(r.status == 400 for r in cut)
    # No 429 even with the dead daemons' requests still running in the sandbox.
    assert all(r.status == 200 for r in posts if r.sha256 is not None)
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
