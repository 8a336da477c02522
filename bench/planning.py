"""Figure 6: `remixd plan` over a 10,000-file backlog, as a person runs it (a subprocess, start-up included).

The journal holds a written job for a source of every candidate's size, so every candidate is hashed for the
duplicate check: the plan's worst case. The reference is the same command on a one-file inbox (Python's and
remixd's start-up), measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import inputs, procs
from bench.figures import Row, Sizes, _fresh

PLAN_TARGET_S = 3.0


def _journal_with_written_sizes(state: Path, sizes: set[int]) -> None:
    """A journal whose written jobs have sources of these sizes (none of them the candidates' content)."""
    from remixd.journal.records import JobSpec
    from remixd.journal.sqlite import SqliteJournal

    journal = SqliteJournal(state / "journal.sqlite3")
    try:
        for number, size in enumerate(sorted(sizes)):
            input_id = journal.claim("/elsewhere", f"old-{number}.png", size, 0)
            assert input_id is not None
            journal.set_hash(input_id, f"{number:064x}")
            spec = JobSpec("poster", "f" * 64, "/remix", {"prompt": "p"}, 1, 0.08)
            [job] = journal.add_jobs(input_id, [spec])
            journal.start_submit(job.id)
            journal.record_answer(job.id, {"created": "2025-01-01T00:00:00Z", "data": []})
            journal.record_written(job.id, [])
            journal.finish_input(input_id, "done")
            journal.set_disposed(input_id, "moved", None)
    finally:
        journal.close()


def _plan_seconds(config: Path, runs: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        shown = subprocess.run(
            [sys.executable, "-m", "remixd", "plan", "--json", "-c", str(config)],
            capture_output=True, text=True, check=True, env=procs.CHILD_ENV, timeout=120,
        )  # fmt: skip
        best = min(best, time.perf_counter() - started)
        rows = shown.stdout.count('"relpath"')
    return best, rows


def plan(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "plan")
    count = sizes.plan_files
    per_folder = max(1, count // 20)
    files = [(f"batch-{n // per_folder:03d}/scan-{n:06d}.png", inputs.small_image(n)) for n in range(count)]
    inputs.write_files(root / "inbox", files, age_s=5.0)
    config = inputs.write_config(root, "http://127.0.0.1:9", inbox={"recursive": True})
    _journal_with_written_sizes(root / "state", {len(data) for _, data in files})
    lone = _fresh(work / "plan-lone")
    lone_config = inputs.write_config(lone, "http://127.0.0.1:9", inbox={"recursive": True})
    inputs.write_files(lone / "inbox", files[:1], age_s=5.0)
    seconds, rows = _plan_seconds(config)
    lone_seconds, _ = _plan_seconds(lone_config)
    note(f"plan: {count} files -> {rows} rows in {seconds:.2f} s (one-file inbox {lone_seconds:.2f} s)")
    return [
        Row(
            f"6 plan: {count} candidate files",
            seconds,
            "s",
            lone_seconds,
            "remixd plan, 1-file inbox",
            seconds / lone_seconds,
            f"<= {PLAN_TARGET_S:.0f} s",
            seconds <= PLAN_TARGET_S,
        )
    ]
