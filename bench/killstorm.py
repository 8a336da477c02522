"""Figure 7: a kill storm. `remixd run` is SIGKILLed again and again at random moments while it works through a
backlog, then left to finish: nothing may be lost or written twice, and what the API billed beyond one request
per input stays within what the kills caught in flight, below a daily cap set to exactly that worst case.

The numbers are the sandbox's own ledger (what it billed) and what is on disk, against the journal's.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from bench import inputs, procs
from bench.figures import Row, Sizes, _fresh

if TYPE_CHECKING:
    from remixd.journal.records import Spend

WORK_KILL_S = (0.0, 0.5)  # from remixd.started: each run gets a few inputs done, and every kill meets work


def _ledger(base_url: str) -> dict[str, int]:
    state = requests.get(f"{base_url}/_sandbox/state", timeout=30).json()
    return {"requests": int(state["ledger"]["requests"]), "images": int(state["ledger"]["images"])}


def journal_counted(state_dir: Path, first_day: date) -> Spend:
    """What the journal counts as spent on every UTC day since the storm began: a storm that crossed midnight
    UTC has its spend on two days, and today's alone would look like billed images the journal missed."""
    from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal

    journal = SqliteJournal(state_dir / JOURNAL_NAME)
    try:
        return journal.spent_since(first_day)
    finally:
        journal.close()


def kill_storm(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "killstorm")
    count, kills, in_flight = sizes.storm_inputs, sizes.storm_kills, sizes.inflight_limit
    cap = count + kills * in_flight
    rng = random.Random(sizes.storm_seed)
    names = [f"storm-{n:05d}.jpg" for n in range(count)]
    inputs.write_files(root / "inbox", [(name, inputs.small_jpeg(n)) for n, name in enumerate(names)], age_s=5.0)
    with procs.Sandbox(root / "sandbox", latency_s=sizes.storm_latency_s, inflight_limit=in_flight) as sandbox:
        config = inputs.write_config(
            root, sandbox.base_url, max_in_flight=in_flight, budget={"max_images_per_day": cap}
        )
        started, first_day = time.monotonic(), datetime.now(UTC).date()
        for _ in range(kills):
            remixd = procs.Remixd("run", config, root)
            remixd.wait_started()
            time.sleep(rng.uniform(*WORK_KILL_S))  # the scenario itself: a kill at a random moment
            remixd.process.send_signal(signal.SIGKILL)
            remixd.wait(timeout=30)
        done = root / "done"
        last = procs.Remixd("run", config, root)
        procs.wait_for(
            lambda: not any((root / "inbox").iterdir()), count * sizes.storm_latency_s + 300, "the backlog to finish"
        )
        last.stop()
        storm_s = time.monotonic() - started
        ledger = _ledger(sandbox.base_url)
    spent = journal_counted(root / "state", first_day)
    lost = len(set(names) - {path.name for path in done.iterdir()})
    results = [path.name for path in (root / "outbox").iterdir()]
    expected = {f"{Path(name).stem}.poster.1.{ext}" for name in names for ext in ("png", "json")}
    duplicates = len([name for name in results if name not in expected])
    beyond = ledger["requests"] - count
    note(
        f"kill storm: {count} inputs, {kills} SIGKILLs in {storm_s:.0f} s: {lost} lost, {duplicates} duplicate "
        f"results, {ledger['requests']} requests billed ({beyond} beyond the inputs, bound {kills * in_flight}), "
        f"journal counted {spent.images} images ({spent.unknown} with an unknown outcome), cap {cap}"
    )
    label = f"{kills} kills x {in_flight} in flight"
    return [
        Row(
            f"7 kill storm: inputs lost ({count} inputs, {kills} kills)",
            lost,
            "inputs",
            None,
            "-",
            None,
            "= 0",
            lost == 0,
        ),
        Row("7 kill storm: duplicate results", duplicates, "files", None, "-", None, "= 0", duplicates == 0),
        Row(
            "7 kill storm: requests billed beyond one per input",
            beyond,
            "requests",
            kills * in_flight,
            label,
            beyond / (kills * in_flight),
            "<= kills x in-flight",
            beyond <= kills * in_flight,
        ),
        Row(
            "7 kill storm: images billed (sandbox ledger) against the daily cap",
            ledger["images"],
            "images",
            cap,
            "budget.max_images_per_day",
            ledger["images"] / cap,
            "billed <= counted <= cap",
            ledger["images"] <= spent.images <= cap,
        ),
    ]
