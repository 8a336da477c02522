"""The journal's `rerolls` table: done inputs that `remixd reroll` asked for again on purpose.

The command records the reroll before it puts the file back in its inbox, so the claim that follows finds it;
the input that claims the file takes the reroll in one write, so a reroll is carried out once.
"""

from __future__ import annotations

import sqlite3

from remixd.journal.records import InputRecord, Reroll

_TAKEN = "SELECT id, seed, of_input FROM rerolls WHERE input_id = ?"
_WAITING = """SELECT rerolls.id, rerolls.seed, rerolls.of_input FROM rerolls JOIN inputs ON inputs.id = ?
    WHERE rerolls.input_id IS NULL AND rerolls.inbox = inputs.inbox AND rerolls.relpath = inputs.relpath
    AND rerolls.sha256 = inputs.sha256 ORDER BY rerolls.id LIMIT 1"""


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
