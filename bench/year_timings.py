"""Timings of a journal of a year (bench.year builds it): `remixd status`, its queries, a restart's recovery, and
the daemon's check of every page."""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import procs
from bench.year import UNFINISHED


def status_s(config: Path, runs: int = 3) -> float:
    """`remixd status` as an operator runs it, best of `runs`: interpreter start, imports, journal, answer.

    remixd's bytecode is compiled first, as `pip install` compiles it: where PYTHONDONTWRITEBYTECODE is set, every
    run would otherwise compile from source each module it imports: a fifth more work than an installed remixd does."""
    compileall.compile_dir(procs.REPOSITORY / "remixd", quiet=1)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "remixd", "status", "-c", str(config)],
            check=True,
            capture_output=True,
            cwd=procs.REPOSITORY,
            env=procs.CHILD_ENV,
            timeout=120,
        )
        best = min(best, time.perf_counter() - started)
    return best


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
