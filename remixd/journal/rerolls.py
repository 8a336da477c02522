"""The journal's `rerolls` table: done inputs that `remixd reroll` asked for again on purpose.

The command records the reroll before it puts the file back in its inbox, so the claim that follows finds it;
the input that claims the file takes the reroll in one write, so a reroll is carried out once. An input kept in
its inbox (`after: keep`) never left it: its unchanged file would not be claimed again, so a waiting reroll lets
one claim of its path through, and that claim takes the reroll in its own transaction (`claim_kept`).
"""

from __future__ import annotations

import sqlite3

from remixd.journal.records import InputRecord, Reroll

_TAKEN = "SELECT id, seed, of_input FROM rerolls WHERE input_id = ?"
_WAITING = """SELECT rerolls.id, rerolls.seed, rerolls.of_input FROM rerolls JOIN inputs ON inputs.id = ?
    WHERE rerolls.input_id IS NULL AND rerolls.inbox = inputs.inbox AND rerolls.relpath = inputs.relpath
    AND rerolls.sha256 = inputs.sha256 ORDER BY rerolls.id LIMIT 1"""


WAITING = "SELECT inbox, relpath FROM rerolls WHERE input_id IS NULL"  # a few rows, from the partial index
_OLDEST_FOR_PATH = "SELECT id FROM rerolls WHERE input_id IS NULL AND inbox = ? AND relpath = ? ORDER BY id LIMIT 1"
# In progress at this path: a waiting reroll never lets a second claim of a file through while one is active.
_ACTIVE_CLAIM = "SELECT 1 FROM inputs WHERE inbox = ? AND relpath = ? AND (state = 'claimed' OR disposal = 'pending')"


def add(db: sqlite3.Connection, of_input: InputRecord, seed: int, now: str) -> int:
    cursor = db.execute(
        "INSERT INTO rerolls (inbox, relpath, sha256, seed, of_input, requested_at) VALUES (?, ?, ?, ?, ?, ?)",
        (of_input.inbox, of_input.relpath, of_input.sha256, seed, of_input.id, now),
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


def may_claim_kept(db: sqlite3.Connection, inbox: str, relpath: str) -> bool:
    """A kept file a reroll waits for may be claimed, unless a claim of its path is in progress."""
    return db.execute(_ACTIVE_CLAIM, (inbox, relpath)).fetchone() is None


def claim_kept(db: sqlite3.Connection, inbox: str, relpath: str, input_id: int) -> None:
    """The new claim of a kept file takes the oldest reroll waiting for its path, in the claim's transaction:
    the next sighting of the file is blocked by its kept row again, so the reroll lets exactly one claim in."""
    row = db.execute(_OLDEST_FOR_PATH, (inbox, relpath)).fetchone()
    db.execute("UPDATE rerolls SET input_id = ? WHERE id = ?", (input_id, row[0]))
