"""kill -9 at random moments on an async v2 route: every input ends done exactly once, and a generation whose id
reached the journal is polled after the restart, never sent again.

`remixd run` is a subprocess against the sandbox (in this process, so the sandbox survives every kill). The
delays are drawn from a seeded generator; the seed is printed and recorded, and REMIXD_KILL_SEED replays a
run. The numbers (inputs, kills, requests, repeats per kill) are printed (`pytest -s`) and recorded as
properties (`--junitxml`). A repeat is an input sent twice: only a kill between sending a request and committing
its generation id can cause one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, wait_for, write_config

pytestmark = pytest.mark.e2e

INPUTS = 30
KILLS = 10
IN_FLIGHT = 4
IN_STARTUP = 0.25  # the share of kills that land during start-up and recovery, before remixd.started
STARTUP_KILL_S = (0.05, 0.5)  # from spawn
WORK_KILL_S = (0.0, 0.3)  # from remixd.started: a few inputs finish per run, so every kill meets work
LATENCY_S = (0.08, 0.2)  # the sandbox's generation time, drawn again for every run
PRODUCT = {
    "name": "poster",
    "match": ["*.jpg"],
    "request": {"model": "ideogram-4", "prompt": "studio shot of {stem}", "rendering_speed": "turbo"},
}
ROUTE = "/v2/image/remix/ideogram-4"


def test_kill_9_on_an_async_v2_route_resumes_generations_by_polling(
    tmp_path: Path, sandbox: SandboxServer, record_property: Callable[[str, object], None]
) -> None:
    seed = int(os.environ.get("REMIXD_KILL_SEED", str(random.SystemRandom().randrange(2**32))))
    print(f"\nkill test seed: {seed} (replay with REMIXD_KILL_SEED={seed})")
    record_property("seed", seed)
    rng = random.Random(seed)
    api = {"max_in_flight_images": IN_FLIGHT, "poll_interval_s": 0.05}
    config = write_config(tmp_path, sandbox.base_url, rules=[PRODUCT], api=api, inbox={"settle_s": 0.2})
    inbox, outbox, done = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "done"
    originals = {}
    for number in range(INPUTS):
        path = make_image(inbox / f"in-{number:02d}.jpg", color=(number * 5, 255 - number * 5, number * 37 % 256))
        originals[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    env = {"IDEOGRAM_API_KEY": TEST_KEY}

    kills, finished_before_kill = 0, []
    while kills < KILLS:
        sandbox.set_faults(latency_s=round(rng.uniform(*LATENCY_S), 3))
        in_startup = rng.random() < IN_STARTUP
        delay = rng.uniform(*(STARTUP_KILL_S if in_startup else WORK_KILL_S))
        daemon = Daemon(config, env)
        if not in_startup:
            daemon.wait_started()
        time.sleep(delay)  # the scenario itself: a kill at a random moment, not a wait for some state
        assert daemon.process.poll() is None, daemon.log_path.read_text()
        daemon.stop(signal.SIGKILL)
        kills += 1
        daemon.log_path.rename(tmp_path / f"killed-run-{kills}.log")  # each run's wait_started reads its own
        finished_before_kill.append(len(list(done.glob("*.jpg"))) if done.is_dir() else 0)
        print(
            f"kill {kills}: {delay:.3f} s after {'spawn' if in_startup else 'remixd.started'}, "
            f"{finished_before_kill[-1]} inputs done so far"
        )

    daemon = Daemon(config, env)
    try:
        daemon.wait_started()
        wait_for(
            lambda: done.is_dir() and len(list(done.iterdir())) >= INPUTS and not any(inbox.iterdir()),
            timeout=60,
            message="every input to finish after the last kill",
        )
    finally:
        assert daemon.stop() == 0

    posts = [r for r in sandbox.received if r.path == ROUTE and not r.dry_run]
    # A kill in the middle of an upload leaves the sandbox a cut body: answered 400, never run or billed.
    cut = [r for r in posts if r.sha256 is None]
    sent = Counter(r.sha256 for r in posts if r.sha256 is not None)
    resent = sum(count - 1 for count in sent.values())
    expected_outbox = sorted(f"in-{n:02d}.poster.1.{ext}" for n in range(INPUTS) for ext in ("json", "png"))
    outbox_files = sorted(p.name for p in outbox.iterdir())
    duplicates = len([name for name in outbox_files if name not in expected_outbox])
    numbers = {
        "inputs": INPUTS,
        "kills": kills,
        "requests": len(posts),
        "billed": sandbox.ledger.requests,
        "resent": resent,
        "repeats_per_kill": round(resent / kills, 3),
        "cut_uploads": len(cut),
        "duplicates": duplicates,
        "ceiling": IN_FLIGHT,
        "bound": INPUTS + kills * IN_FLIGHT,
    }
    print("kill test numbers: " + json.dumps(numbers))
    for name, value in numbers.items():
        record_property(name, value)

    assert len(posts) <= INPUTS + kills * IN_FLIGHT
    # Every generation Ideogram accepted was billed; beyond one per input, only the resent ones.
    assert sandbox.ledger.requests == INPUTS + resent
    assert all(not r.ignored_fields for r in posts)
    assert set(sent) == set(originals.values())  # every input was sent, none other
    assert len(cut) <= kills and all(r.status == 400 for r in cut)
    # No 429 even with the dead daemons' requests still running in the sandbox.
    assert all(r.status == 200 for r in posts if r.sha256 is not None)
    assert not any(inbox.iterdir())
    assert sorted(p.name for p in done.iterdir()) == sorted(originals)  # no STEM-<sha8> copies either
    for name, digest in originals.items():
        assert hashlib.sha256((done / name).read_bytes()).hexdigest() == digest
    assert outbox_files == expected_outbox  # each input's result and sidecar, exactly once
    for number in range(INPUTS):
        stem = f"in-{number:02d}"
        document = json.loads((outbox / f"{stem}.poster.1.json").read_text())
        assert document["source"]["sha256"] == originals[f"{stem}.jpg"]
        image = (outbox / f"{stem}.poster.1.png").read_bytes()
        assert document["image"]["sha256"] == hashlib.sha256(image).hexdigest()
    assert not list(tmp_path.rglob(".remixd-tmp-*"))
    assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        counts = journal.counts()
        assert (counts["done"], counts["claimed"], counts["failed"], counts["duplicate"]) == (INPUTS, 0, 0, 0)
        assert journal.job_counts()["written"] == INPUTS
        assert journal.unfinished() == []
        assert journal.generating() == []
    finally:
        journal.close()
    landed_in_work = sum(1 for finished in finished_before_kill if finished < INPUTS)
    assert landed_in_work >= KILLS * 0.7, "kills must land while work remains; shorten WORK_KILL_S"
