"""The journal's `rerolls` table: done inputs that `remixd reroll` asked for again on purpose.

The command records the reroll before it puts the file back in its inbox, so the claim that follows finds it;
the input that claims the file takes the reroll in one write, so a reroll is carried out once. An input kept in
its inbox (`after: keep`) never left it: its unchanged file would not be claimed again, so a waiting reroll lets
one claim of its path through, and that claim takes the reroll in its own transaction (`for_kept`).
"""

from __future__ import annotations

import sqlite3

from remixd.journal.records import InputRecord, Reroll
from remixd.journal.schema import pack_hash

_TAKEN = "SELECT id, seed, of_input FROM rerolls WHERE input_id = ?"
_WAITING = """SELECT rerolls.id, rerolls.seed, rerolls.of_input FROM rerolls JOIN inputs ON inputs.id = ?
    WHERE rerolls.input_id IS NULL AND rerolls.inbox = inputs.inbox AND rerolls.relpath = inputs.relpath
    AND rerolls.sha256 = inputs.sha256 ORDER BY rerolls.id LIMIT 1"""


WAITING = "SELECT inbox, relpath FROM rerolls WHERE input_id IS NULL"  # a few rows, from the partial index
# The oldest reroll waiting for a kept file still as the input it repeats was (size, mtime), unless a claim of its
# path is in progress: a file changed since is claimed as new anyway, and must not take a reroll of other bytes.
FOR_KEPT = """SELECT rerolls.id, rerolls.seed FROM rerolls JOIN inputs AS repeated ON repeated.id = rerolls.of_input
    WHERE rerolls.input_id IS NULL AND rerolls.inbox = ?1 AND rerolls.relpath = ?2
    AND repeated.size = ?3 AND repeated.mtime_ns = ?4 AND NOT EXISTS (SELECT 1 FROM inputs
        WHERE inbox = ?1 AND relpath = ?2 AND (state = 'claimed' OR disposal = 'pending'))
    ORDER BY rerolls.id LIMIT 1"""


def add(db: sqlite3.Connection, of_input: InputRecord, seed: int, now: int) -> int:
    cursor = db.execute(
        "INSERT INTO rerolls (inbox, relpath, sha256, seed, of_input, requested_at) VALUES (?, ?, ?, ?, ?, ?)",
        (of_input.inbox, of_input.relpath, pack_hash(of_input.sha256), seed, of_input.id, now),
    )
    return int(cursor.lastrowid or 0)


def take(db: sqlite3.Connection, input_id: int) -> Reroll | None:
    """The reroll this input carries out: one it took before a crash, else the oldest waiting for its path and
    content (taken now)."""
    row = db.execute(_TAKEN, (input_id,)).fetchone()
    if row is None:
        row = db.execute(_WAITING, (input_id,)).fetchone()
        if row is None:
            return None
        db.execute("UPDATE rerolls SET input_id = ? WHERE id = ?", (input_id, row[0]))
    return Reroll(row[0], row[1], row[2])


def cancel(db: sqlite3.Connection, reroll_id: int) -> None:
    """A reroll whose file could not be put back: no later claim may take it."""
    db.execute("DELETE FROM rerolls WHERE id = ? AND input_id IS NULL", (reroll_id,))


def waiting(db: sqlite3.Connection) -> set[tuple[str, str]]:
    """(inbox, relpath) of the rerolls no claim has taken yet."""
    return {(row[0], row[1]) for row in db.execute(WAITING)}


def for_kept(db: sqlite3.Connection, inbox: str, relpath: str, size: int, mtime_ns: int) -> int | None:
    """The reroll (its id) that lets a claim of this kept file through, which the claim takes (`bind`) in its
    transaction: the next sighting is blocked by its kept row again, so a reroll lets exactly one claim in."""
    row = db.execute(FOR_KEPT, (inbox, relpath, size, mtime_ns)).fetchone()
    return None if row is None else int(row[0])


def bind(db: sqlite3.Connection, reroll_id: int, input_id: int) -> None:
    db.execute("UPDATE rerolls SET input_id = ? WHERE id = ?", (input_id, reroll_id))
