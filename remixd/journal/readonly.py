"""The journal read without changing anything, for commands that promise to write nothing (`remixd plan`).

It opens beside a running daemon: with the daemon's WAL files present the connection is `mode=ro`, which
reads the daemon's latest commits; without them (no daemon, a clean stop) it is `immutable=1`, which also
creates no `-wal`/`-shm` files in the state folder. No journal yet means nothing is known.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from remixd.errors import JournalError
from remixd.journal.records import Spend


@dataclass(frozen=True)
class KnownInput:
    """What blocks a file from being claimed again: an input in progress, or one finished and kept."""

    state: str  # claimed | done | duplicate | failed
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class JournalView:
    blocking: dict[tuple[str, str], KnownInput]  # (inbox, relpath) -> the input that blocks a new claim
    written: frozenset[tuple[str, str, str]]  # (source sha256, rule, fingerprint) of every written job
    written_sizes: frozenset[int]  # sizes of those sources: only a file of one of these sizes can be a duplicate
    spent_today: Spend

    def known(self, inbox: str, relpath: str, size: int, mtime_ns: int) -> str | None:
        """The journal's state for this file as a claim would see it, or None when it would be claimed."""
        found = self.blocking.get((inbox, relpath))
        if found is None:
            return None
        if found.state == "claimed":
            return "in progress"
        return found.state if (found.size, found.mtime_ns) == (size, mtime_ns) else None


_BLOCKING = """SELECT inbox, relpath, state, size, mtime_ns FROM inputs
    WHERE state = 'claimed' OR disposal = 'pending'
    OR (disposal = 'kept' AND state IN ('done', 'duplicate', 'failed')) ORDER BY id"""
_WRITTEN = """SELECT inputs.sha256, jobs.rule, jobs.fingerprint, inputs.size FROM jobs
    JOIN inputs ON inputs.id = jobs.input_id WHERE jobs.state = 'written' AND inputs.sha256 IS NOT NULL"""
_SPENT = """SELECT coalesce(sum(s.images), 0), coalesce(sum(s.usd), 0.0) FROM spend s
    JOIN jobs j ON j.id = s.job_id WHERE s.day = ? AND j.sandbox = 0"""
_SPENT_UNMARKED = "SELECT coalesce(sum(images), 0), coalesce(sum(usd), 0.0) FROM spend WHERE day = ?"


def read_journal(path: Path, today: date) -> JournalView:
    """Everything `remixd plan` needs from the journal at `path`, in one read transaction."""
    if not path.exists():
        return JournalView({}, frozenset(), frozenset(), Spend(0, 0.0))
    running = Path(f"{path}-wal").exists()
    uri = path.absolute().as_uri() + ("?mode=ro" if running else "?immutable=1")
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise JournalError(f"cannot read the journal {path}: {error}", f"check that {path} is readable") from error
    try:
        connection.execute("BEGIN")  # one snapshot: a daemon's commits in between do not mix in
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'spend'")
        if tables.fetchone() is None:  # a daemon starting this moment has not made its tables yet
            return JournalView({}, frozenset(), frozenset(), Spend(0, 0.0))
        blocking = {
            (inbox, relpath): KnownInput(state, size, mtime_ns)
            for inbox, relpath, state, size, mtime_ns in connection.execute(_BLOCKING)
        }
        rows = connection.execute(_WRITTEN).fetchall()
        # The sandbox's spend is never billed; a journal from before jobs were marked has none of it.
        marked = any(column[1] == "sandbox" for column in connection.execute("PRAGMA table_info(jobs)"))
        spent = connection.execute(_SPENT if marked else _SPENT_UNMARKED, (today.isoformat(),)).fetchone()
    except sqlite3.Error as error:
        raise JournalError(
            f"cannot read the journal {path}: {error}", "run remixd status; if it fails too, the journal is damaged"
        ) from error
    finally:
        connection.close()
    return JournalView(
        blocking=blocking,
        written=frozenset((sha256, rule, fingerprint) for sha256, rule, fingerprint, _ in rows),
        written_sizes=frozenset(size for *_, size in rows),
        spent_today=Spend(int(spent[0]), round(float(spent[1]), 6)),
    )
