"""The journal read without changing anything, for commands that promise to write nothing (`remixd plan`).

It opens beside a running daemon: with the daemon's WAL files present the connection is `mode=ro`, which
reads the daemon's latest commits; without them (no daemon, a clean stop) it is `immutable=1`, which also
creates no `-wal`/`-shm` files in the state folder. No journal yet means nothing is known.

Each file is looked up on its own, by index, in one read transaction held while the plan is made: a journal
of a year costs the plan a few lookups per file, not its millions of rows in memory (README "A year of
journal"). Compacted inputs count as they did whole: a kept one blocks its path, a written result is a duplicate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from remixd.errors import JournalError
from remixd.journal import rerolls
from remixd.journal.compact import result_key
from remixd.journal.layout import BY_FINGERPRINT, BY_SHA256, PATH_HELD
from remixd.journal.ledger import dollars, spend_sql, sql_sum_usd
from remixd.journal.records import Spend
from remixd.journal.schema import pack_hash

# The latest input at this path that would block a new claim: in progress, or finished and kept (journal.sqlite).
_BLOCKING = f"""SELECT state, size, mtime_ns FROM inputs WHERE inbox = ? AND relpath = ? AND {PATH_HELD} AND (
    state = 'claimed' OR disposal = 'pending' OR (disposal = 'kept' AND state IN ('done', 'duplicate', 'failed')))
    ORDER BY id DESC LIMIT 1"""  # noqa: S608 — a literal condition
_KEPT = "SELECT 1 FROM kept WHERE inbox = ? AND relpath = ? AND size = ? AND mtime_ns = ?"
_WRITTEN = f"""SELECT 1 FROM jobs WHERE rule = ? AND {BY_FINGERPRINT} AND state = 'written' AND input_id IN
    (SELECT id FROM inputs WHERE {BY_SHA256}) LIMIT 1"""  # noqa: S608 — literal conditions
# ... in a journal an older remixd keeps, its fingerprints whole in each job (journal.layout).
_WRITTEN_WHOLE = _WRITTEN.replace(BY_FINGERPRINT, "fingerprint = ?")
# ... compacted: by the start of its key, as long as the key is in this remixd (journal.compact.result_key); a
# journal the daemon of an older remixd keeps holds longer ones, which start with it.
_WRITTEN_COMPACTED = "SELECT 1 FROM results WHERE key BETWEEN ? AND ? LIMIT 1"
_LONGEST_KEY = 16  # of any remixd's results
# Whether a written result's source had this size: only a file of such a size can be a duplicate, so only
# such a file is hashed. -1: results compacted before sizes were kept, of sizes nobody knows.
_WRITTEN_SIZE = "SELECT 1 FROM result_sizes WHERE size IN (?, -1)"
_SPENT = f"""SELECT coalesce(sum(s.images), 0), {sql_sum_usd("s.usd")} FROM spend s
    JOIN jobs j ON j.id = s.job_id WHERE s.day = ? AND j.sandbox = 0"""  # noqa: S608 — literal fragments
_SPENT_UNMARKED = f"SELECT coalesce(sum(images), 0), {sql_sum_usd('usd')} FROM spend WHERE day = ?"  # noqa: S608


class JournalView:
    """What a claim would find in the journal, asked file by file; an empty view when there is no journal."""

    def __init__(self, connection: sqlite3.Connection | None, today: date) -> None:
        self._db = connection
        # A daemon starting this moment may not have made its tables yet; an older one lacks the newer tables.
        self._tables = {row[0] for row in self._read("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.spent_today = self._spent(today) if "spend" in self._tables else Spend(0, 0.0)

    def known(self, inbox: str, relpath: str, size: int, mtime_ns: int) -> str | None:
        """The journal's state for this file as a claim would see it, or None when it would be claimed."""
        if "inputs" not in self._tables:
            return None
        rows = self._read(_BLOCKING, (inbox, relpath))
        if rows:
            state, known_size, known_mtime = rows[0]
            if state == "claimed":
                return "in progress"
            if (known_size, known_mtime) == (size, mtime_ns):
                return str(state)
        if "kept" in self._tables and self._read(_KEPT, (inbox, relpath, size, mtime_ns)):
            return "done"  # compacted: a kept input that finished (done or a duplicate) is not claimed again
        return None

    def reroll_seed(self, inbox: str, relpath: str, size: int, mtime_ns: int) -> int | None:
        """The seed of the reroll waiting for this file (`remixd reroll`: the input it repeats, kept in its
        inbox or put back, as it was), which the next claim sends whatever else the journal knows of it."""
        if "rerolls" not in self._tables:
            return None
        rows = self._read(rerolls.FOR_KEPT, (inbox, relpath, size, mtime_ns))
        return int(rows[0][1]) if rows else None

    def may_be_duplicate(self, size: int) -> bool:
        """Whether a file of this size can be the source of a written result: only then is it worth hashing.
        A journal from before sizes were kept cannot tell: every file is."""
        if "result_sizes" not in self._tables:
            return "jobs" in self._tables
        return bool(self._read(_WRITTEN_SIZE, (size,)))

    def written(self, sha256: str, rule: str, fingerprint: str) -> bool:
        """Whether this content was already written by this rule and request, whole or compacted."""
        if "jobs" not in self._tables:
            return False
        written = _WRITTEN if "fingerprints" in self._tables else _WRITTEN_WHOLE
        if self._read(written, (rule, pack_hash(fingerprint), pack_hash(sha256), pack_hash(sha256))):
            return True
        compacted = "results" in self._tables
        key = result_key(sha256, rule, fingerprint)
        return compacted and bool(self._read(_WRITTEN_COMPACTED, (key, key.ljust(_LONGEST_KEY, b"\xff"))))

    def _spent(self, today: date) -> Spend:
        # The sandbox's spend is never billed; a journal from before jobs were marked has none of it. Today's
        # totals (a rebuild from sidecars, compacted inputs) are counted as the budget counts them.
        marked = any(column[1] == "sandbox" for column in self._read("PRAGMA table_info(jobs)"))
        if marked and "spend_days" in self._tables:
            sql = spend_sql("s.day = ?1 AND j.sandbox = 0", "day = ?1 AND sandbox = 0")
        else:
            sql = _SPENT if marked else _SPENT_UNMARKED
        images, usd = self._read(sql, (today.isoformat(),))[0][:2]
        return Spend(int(images), dollars(usd))

    def _read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise JournalError(
                f"cannot read the journal: {error}", "run remixd status; if it fails too, the journal is damaged"
            ) from error


@contextmanager
def read_journal(path: Path, today: date) -> Iterator[JournalView]:
    """The journal at `path` as `remixd plan` sees it, in one read transaction (a daemon's commits in between
    do not mix in), closed on leaving."""
    if not path.exists():
        yield JournalView(None, today)
        return
    running = Path(f"{path}-wal").exists()
    uri = path.absolute().as_uri() + ("?mode=ro" if running else "?immutable=1")
    try:
        connection = sqlite3.connect(uri, uri=True)
        connection.execute("BEGIN")
    except sqlite3.Error as error:
        raise JournalError(f"cannot read the journal {path}: {error}", f"check that {path} is readable") from error
    try:
        yield JournalView(connection, today)
    finally:
        connection.close()
