"""What both kill tests share: seeded random kills of `remixd run`, the last run to the end, and the checks of
what is on disk afterwards. Each test keeps its own route, sizes and money checks.

The delays are drawn from a seeded generator; the seed is printed and recorded, and REMIXD_KILL_SEED replays a
run. REMIXD_KILLS sets how many kills a test makes (its own number by default): a count over more kills is
finer. REMIXD_KILL_LATENCY_S sets the sandbox's generation time (0.08-0.2 s by default, a stress), and
REMIXD_KILL_IN_FLIGHT remixd's `api.max_in_flight_images` (the test's own number by default): with 0.5 and 10
a kill test runs at the workload of `python -m bench --only async_v2`. The numbers are printed (`pytest -s`)
and recorded as properties (`--junitxml`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from remixd.sandbox.state import ReceivedRequest
from tests.helpers import TEST_KEY, Daemon, make_image, wait_for

IN_STARTUP = 0.25  # the share of kills that land during start-up and recovery, before remixd.started
STARTUP_KILL_S = (0.05, 0.5)  # from spawn
WORK_KILL_S = (0.0, 0.3)  # from remixd.started: a few inputs finish per run, so every kill meets work
# The sandbox's answer or generation time, drawn again for every run; REMIXD_KILL_LATENCY_S=0.5 makes it 0.5 s
_LATENCY = os.environ.get("REMIXD_KILL_LATENCY_S")
LATENCY_S = (0.08, 0.2) if _LATENCY is None else (float(_LATENCY), float(_LATENCY))
STARTUP_S = 1.0  # a kill before remixd.started or this soon after it meets the start-up burst
ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
# Sleeps the delay it reads, then SIGKILLs the pid it was given and prints the wall-clock moment it did.
_KILLER = (
    "import os, signal, sys, time\n"
    "time.sleep(float(sys.stdin.readline()))\n"
    "killed_at = time.time()\n"
    "os.kill(int(sys.argv[1]), signal.SIGKILL)\n"
    "print(killed_at)\n"
)


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def kill_count(default: int) -> int:
    """How many kills a test makes: REMIXD_KILLS, else the test's own `default`."""
    return _setting("REMIXD_KILLS", default)


def in_flight(default: int) -> int:
    """The images a test keeps in flight: REMIXD_KILL_IN_FLIGHT, else the test's own `default`."""
    return _setting("REMIXD_KILL_IN_FLIGHT", default)


def time_limit(kills: int) -> pytest.MarkDecorator:
    """The suite's limit (120 s), or 3 s a kill for a run of more kills (a kill and its restart take 1-2.5 s)."""
    return pytest.mark.timeout(max(120, 3 * kills))


def seeded(record_property: Callable[[str, object], None]) -> random.Random:
    seed = int(os.environ.get("REMIXD_KILL_SEED", str(random.SystemRandom().randrange(2**32))))
    print(f"\nkill test seed: {seed} (replay with REMIXD_KILL_SEED={seed})")
    record_property("seed", seed)
    return random.Random(seed)


def drop(inbox: Path, names: Iterable[str], first: int = 0) -> dict[str, str]:
    """Write inputs, each unlike every other (the first is number `first`); returns each name's sha256.
    The colors step by 37 in blue and 40 in green, wrapping: JPEG's quantisation keeps them apart up to 8,192
    inputs (green unwrapped made the 2,049th input the 1,793rd's twin, a "repeat" never sent twice)."""
    originals = {}
    for number, name in enumerate(names, first):
        assert number < 8192, "more inputs than drop() keeps apart"
        color = (number % 256, number // 256 * 40 % 256, number * 37 % 256)
        path = make_image(inbox / name, color=color)
        originals[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return originals


@dataclass(frozen=True)
class Run:
    """One run of remixd, ended by a SIGKILL. Times are the wall clock's, as the sandbox records arrivals."""

    spawned_at: float
    started_at: float | None  # remixd.started by its own log line; None when the kill came first
    killed_at: float
    done_before: int  # inputs in the done folder when it was spawned
    done_after: int  # ... and after the kill
    waiting: int  # inputs still in the inbox after the kill

    @property
    def in_startup(self) -> bool:
        return self.started_at is None or self.killed_at - self.started_at < STARTUP_S

    def describe(self) -> str:
        if self.started_at is None:
            when = f"{self.killed_at - self.spawned_at:.3f} s after spawn, before remixd.started"
        else:
            when = f"{self.killed_at - self.started_at:.3f} s after remixd.started"
        return f"{when}, {self.done_after - self.done_before} inputs done in the run, {self.waiting} waiting"


@dataclass(frozen=True)
class Storm:
    runs: list[Run]

    @property
    def kills(self) -> int:
        return len(self.runs)

    def landed_in_work(self, inputs: int) -> int:
        return sum(1 for run in self.runs if run.done_after < inputs)


def kill_at_random(config: Path, sandbox: SandboxServer, rng: random.Random, kills: int) -> Storm:
    """Start remixd and SIGKILL it at a random moment soon after its start, `kills` times."""
    runs = []
    for number in range(1, kills + 1):
        latency = round(rng.uniform(*LATENCY_S), 3)
        in_startup = rng.random() < IN_STARTUP
        delay = rng.uniform(*(STARTUP_KILL_S if in_startup else WORK_KILL_S))
        runs.append(_run_and_kill(config, sandbox, number, latency, delay, after_started=not in_startup))
    return Storm(runs)


def kill_across_runs(
    config: Path, sandbox: SandboxServer, rng: random.Random, kills: int, *, run_s: float, top_up: Callable[[], None]
) -> Storm:
    """SIGKILL remixd at `kills` random moments of its runs: a share IN_STARTUP from spawn (recovery), the
    others from remixd.started, one in each equal slice of its first `run_s` seconds, so the start-up burst
    and the steady state after it are both sampled, each in proportion to its length. `top_up` runs before
    each spawn (it keeps enough inputs waiting for the run to work until its kill)."""
    early = round(kills * IN_STARTUP)
    later = kills - early
    moments = [(rng.uniform(*STARTUP_KILL_S), False) for _ in range(early)]
    moments += [(rng.uniform(part, part + 1) * run_s / later, True) for part in range(later)]
    rng.shuffle(moments)
    runs = []
    for number, (delay, after_started) in enumerate(moments, 1):
        top_up()
        latency = round(rng.uniform(*LATENCY_S), 3)
        runs.append(_run_and_kill(config, sandbox, number, latency, delay, after_started=after_started))
    return Storm(runs)


def _run_and_kill(
    config: Path, sandbox: SandboxServer, number: int, latency: float, delay: float, *, after_started: bool
) -> Run:
    """One run: spawned, SIGKILLed `delay` seconds after spawn or after remixd.started; its log is kept apart."""
    folder, inbox, done = config.parent, config.parent / "inbox", config.parent / "done"
    sandbox.set_faults(latency_s=latency)
    done_before = len(list(done.glob("*.jpg"))) if done.is_dir() else 0
    spawned_at = time.time()
    daemon = Daemon(config, ENV)
    # The kill comes from a process of its own: sent from this one, it waited for the GIL, which the
    # sandbox's threads give up as they write an answer, so kills fell just after answers, in the very
    # window between a request and its id's commit (twice the repeats the windows' length accounts for).
    killer = subprocess.Popen(
        [sys.executable, "-c", _KILLER, str(daemon.process.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if after_started:
        daemon.wait_started()
    # The scenario itself: a kill at a random moment, not a wait for some state.
    killed_at = float(killer.communicate(f"{delay}\n", timeout=60)[0])
    status = daemon.process.wait(timeout=60)
    daemon.reap()
    assert status == -signal.SIGKILL, daemon.log_path.read_text()  # alive until the kill
    started = [e["timestamp"] for e in daemon.events() if e.get("event") == "remixd.started"]
    daemon.log_path.rename(folder / f"killed-run-{number}.log")  # each run's wait_started reads its own
    run = Run(
        spawned_at=spawned_at,
        started_at=datetime.fromisoformat(str(started[0])).timestamp() if started else None,
        killed_at=killed_at,
        done_before=done_before,
        done_after=len(list(done.glob("*.jpg"))) if done.is_dir() else 0,
        waiting=len(list(inbox.glob("*.jpg"))),
    )
    print(f"kill {number}: {run.describe()}")
    return run


def run_to_the_end(config: Path, inputs: int) -> None:
    """One last run, undisturbed, until every input is done; it must stop cleanly."""
    inbox, done = config.parent / "inbox", config.parent / "done"
    daemon = Daemon(config, ENV)
    try:
        daemon.wait_started()
        wait_for(
            lambda: done.is_dir() and len(list(done.iterdir())) >= inputs and not any(inbox.iterdir()),
            timeout=60,
            message="every input to finish after the last kill",
        )
    finally:
        assert daemon.stop() == 0


def record(numbers: dict[str, object], record_property: Callable[[str, object], None]) -> None:
    print("kill test numbers: " + json.dumps(numbers))
    for name, value in numbers.items():
        record_property(name, value)


def check_disk(folder: Path, originals: dict[str, str], expected_outbox: list[str]) -> None:
    """Every input done exactly once, unchanged, with its one result and sidecar; nothing half-written."""
    inbox, outbox, done = folder / "inbox", folder / "outbox", folder / "done"
    assert not any(inbox.iterdir())
    assert sorted(p.name for p in done.iterdir()) == sorted(originals)  # no STEM-<sha8> copies either
    for name, digest in originals.items():
        assert hashlib.sha256((done / name).read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in outbox.iterdir()) == expected_outbox  # each result and sidecar, exactly once
    for name, digest in originals.items():
        stem = Path(name).stem
        document = json.loads((outbox / f"{stem}.poster.1.json").read_text())
        assert document["source"]["sha256"] == digest
        image = (outbox / f"{stem}.poster.1.png").read_bytes()
        assert document["image"]["sha256"] == hashlib.sha256(image).hexdigest()
    assert not list(folder.rglob(".remixd-tmp-*"))
    assert not (folder / "failed").exists() or not any((folder / "failed").iterdir())


@dataclass(frozen=True)
class Sent:
    """What the sandbox received on the route across every run, and what came of it on disk."""

    posts: list[ReceivedRequest]
    cut: list[ReceivedRequest]  # a kill in the middle of an upload: a cut body, answered 400, never run or billed
    by_source: Counter[str]  # accepted requests per source sha256 (a 429 ran nothing)
    duplicates: int  # results in the outbox beyond the expected ones

    @property
    def resent(self) -> int:
        return sum(count - 1 for count in self.by_source.values())


def tally(posts: list[ReceivedRequest], outbox: Path, expected_outbox: list[str]) -> Sent:
    return Sent(
        posts=posts,
        cut=[r for r in posts if r.sha256 is None],
        by_source=Counter(r.sha256 for r in posts if r.sha256 is not None and r.status == 200),
        duplicates=len([p for p in outbox.iterdir() if p.name not in expected_outbox]),
    )


def numbers(sent: Sent, storm: Storm, billed: int, inputs: int, in_flight: int) -> dict[str, object]:
    return {
        "inputs": inputs,
        "kills": storm.kills,
        "requests": len(sent.posts),
        "billed": billed,
        "resent": sent.resent,
        "repeats_per_kill": round(sent.resent / storm.kills, 3),
        "cut_uploads": len(sent.cut),
        "duplicates": sent.duplicates,
        "ceiling": in_flight,
        "bound": inputs + storm.kills * in_flight,
    }


def check_sent(  # noqa: PLR0917 - the figures of one storm
    sent: Sent, originals: dict[str, str], storm: Storm, inputs: int, in_flight: int, api_limit: int
) -> None:
    """Within the bound of what a kill can cost, every input sent and none other, cut uploads refused.
    `api_limit`: the images the API lets an organisation have in flight."""
    assert len(set(originals.values())) == len(originals), "two inputs alike: drop() must keep them apart"
    assert sum(sent.by_source.values()) <= inputs + storm.kills * in_flight  # a 429 is retried, and runs nothing
    assert set(sent.by_source) == set(originals.values())  # every input was accepted, none other
    assert len(sent.cut) <= storm.kills and all(r.status == 400 for r in sent.cut)
    # A dead daemon's generations whose ids it never committed keep their places at the API until they end
    # (at most its in-flight images): within half the API's limit no 429 comes, however many are still running.
    refused = [r.status for r in sent.posts if r.sha256 is not None and r.status != 200]
    assert all(status == 429 for status in refused), refused
    assert not refused or 2 * in_flight > api_limit, refused


def repeats_by_run(sent: Sent, storm: Storm) -> list[int]:
    """The repeats each kill cost: every accepted request of a source but its last, by the run it arrived in."""
    arrivals: defaultdict[str, list[float]] = defaultdict(list)
    for request in sent.posts:
        if request.sha256 is not None and request.status == 200 and request.arrived is not None:
            arrivals[request.sha256].append(request.arrived)
    spawns = [run.spawned_at for run in storm.runs]
    repeats = [0] * storm.kills
    for times in arrivals.values():
        for arrived in sorted(times)[:-1]:
            repeats[bisect.bisect_right(spawns, arrived) - 1] += 1
    return repeats


def repeats_split(storm: Storm, repeats: list[int]) -> dict[str, object]:
    """Repeats per kill for the kills that met the start-up burst (before remixd.started or within STARTUP_S of
    it) and for the later ones."""
    numbers: dict[str, object] = {}
    for name, at_start in (("startup", True), ("steady", False)):
        runs = [number for number, run in enumerate(storm.runs) if run.in_startup == at_start]
        repeated = sum(repeats[number] for number in runs)
        numbers[f"{name}_kills"] = len(runs)
        numbers[f"{name}_repeats"] = repeated
        numbers[f"{name}_repeats_per_kill"] = round(repeated / len(runs), 3) if runs else None
    return numbers
