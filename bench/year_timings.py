"""Timings of a journal of a year (bench.year builds it): `remixd status`, its queries, a restart's recovery, and
the daemon's check of every page."""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import procs
from bench.year import UNFINISHED


def status_s(configs: Sequence[Path], runs: int = 15) -> list[tuple[float, float]]:
    """`remixd status` as an operator runs it, for each config: (best, median) of `runs`, the configs taking
    turns so that each sees the machine's same minutes. Interpreter start, imports, journal, answer: on a
    2-core virtual machine a start varies by half again from one run to the next (177 to 330 ms for the same
    command), so the best is the command's cost and the median what a person sees most often.

    remixd's bytecode is compiled first, as `pip install` compiles it: where PYTHONDONTWRITEBYTECODE is set, every
    run would otherwise compile from source each module it imports: a fifth more work than an installed remixd does."""
    compileall.compile_dir(procs.REPOSITORY / "remixd", quiet=1)
    times: list[list[float]] = [[] for _ in configs]
    for _ in range(runs):
        for config, taken in zip(configs, times, strict=True):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "remixd", "status", "-c", str(config)],
                check=True,
                capture_output=True,
                cwd=procs.REPOSITORY,
                env=procs.CHILD_ENV,
                timeout=120,
            )
            taken.append(time.perf_counter() - started)
    return [(min(taken), statistics.median(taken)) for taken in times]


def status_query_s(path: Path, runs: int = 3) -> float:
    """What `remixd status` asks the journal, in this process (its part of the status time)."""
    from remixd.journal.sqlite import SqliteJournal

    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        journal = SqliteJournal(path)
        journal.spent(datetime.now(UTC).date())
        journal.counts(), journal.job_counts(), journal.recent_failures(10)
        journal.close()
        best = min(best, time.perf_counter() - started)
    return best


def recovery_s(path: Path, runs: int = 3) -> float:
    """A restart's recovery, in this process: open the journal (its migrations) and take the first queue's worth
    of unfinished inputs, as the daemon does before READY=1 (its page check runs after it: `page_check_s`)."""
    from remixd.journal.sqlite import SqliteJournal

    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        journal = SqliteJournal(path)
        assert len(journal.unfinished_after(0, 24)) == min(24, UNFINISHED)
        journal.close()
        best = min(best, time.perf_counter() - started)
    return best


def page_check_s(path: Path) -> float:
    """The daemon's check of every page for damage, after READY=1, unpaced, once: the first read of the file
    after the build, as after a reboot, is the one that counts."""
    from remixd.journal.sqlite import SqliteJournal

    journal = SqliteJournal(path)
    started = time.perf_counter()
    assert journal.check_pages(lambda: False)
    checked = time.perf_counter() - started
    journal.close()
    return checked
