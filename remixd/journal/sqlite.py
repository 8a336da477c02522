"""The SQLite journal: what remixd claimed, sent, was answered, wrote and disposed of.

SQLite in WAL mode is the source of truth after a crash (README, "The journal decides"): each state is written
before the work it describes starts, so a restart resumes from here, never from memory. Stages see only
`journal.records` (the records, the states and the `Journal` protocol); the SQL schema lives in `journal.schema`,
the row conversion in `journal.rows`, the connection, its transactions and migrations in `journal.database`. This
module is the one implementation of the protocol, put together from parts: claims and inputs here, job transitions
in `journal.jobs`, the operator's views in `journal.views` (both read rows through `journal.rows`); a lost journal is
written back from the sidecars by `journal.rebuild`, imported only when that runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import JournalError
from remixd.journal import rerolls
from remixd.journal.compact import compact, disposed_folder, fold_spend, folder_id, slim_finished
from remixd.journal.database import Database
from remixd.journal.jobs import JobTransitions
from remixd.journal.layout import BUSY_JOBS, BY_SHA256, DISPOSED_TO, NOT_DONE, PATH_HELD
from remixd.journal.records import Candidate, Disposal, FinishState, InputRecord, JobRecord, Reroll
from remixd.journal.rows import expect
from remixd.journal.schema import dump_json, load_json, pack_hash, stamp
from remixd.journal.views import OperatorViews

if TYPE_CHECKING:  # imported by `rebuild` when one runs, not with every journal opened (`remixd status`)
    from remixd.journal.rebuild import FailedInput, Rebuilt, ResultSidecar

_BLOCKING_CLAIM = f"""SELECT 1 FROM inputs WHERE inbox = ?1 AND relpath = ?2 AND {PATH_HELD} AND (
    state = 'claimed' OR disposal = 'pending'
    OR (disposal = 'kept' AND size = ?3 AND mtime_ns = ?4 AND state IN ('done', 'duplicate', 'failed')))
    UNION ALL SELECT 1 FROM kept WHERE inbox = ?1 AND relpath = ?2 AND size = ?3 AND mtime_ns = ?4
    LIMIT 1"""  # noqa: S608 — a literal condition
_INSERT_INPUT = """INSERT INTO inputs (inbox, relpath, size, mtime_ns, state, detected_at, claimed_at, companions,
    device, inode) VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?, ?, ?)"""
_UNFINISHED = "state = 'claimed' OR disposal = 'pending'"
_SAME_STEM = """SELECT relpath, companions FROM inputs WHERE inbox = ? AND relpath >= ? AND relpath < ? AND id != ?
    AND companions IS NOT NULL AND (state = 'claimed' OR disposal = 'pending')"""

JOURNAL_NAME = "journal.sqlite3"  # in state_dir


class SqliteJournal(JobTransitions, OperatorViews):
    """The SQLite journal: one connection shared by the worker threads, guarded by a lock."""

    def __init__(
        self,
        path: Path,
        clock: Clock = SYSTEM_CLOCK,
        *,
        migrating: Callable[[], None] | None = None,
        upgrades: bool = True,
    ) -> None:
        """migrating: called every second or so while the schema of an older remixd is brought up to date.
        upgrades: whether it may be (False: the operator's commands; journal.database)."""
        self._clock = clock
        self._db = Database(path, migrating=migrating, upgrades=upgrades)

    def check_pages(self, step: Callable[[], bool]) -> bool:
        """Every page read for damage, beside the work (the daemon, after READY=1: README "The journal decides"):
        `Database.check_pages`."""
        return self._db.check_pages(step)

    # -- claims ----------------------------------------------------------------------------------------------

    def claim(
        self, inbox: str, relpath: str, size: int, mtime_ns: int, detected_at: datetime | None = None
    ) -> int | None:
        """The new input's id, or None when this file is already active or was finished and kept unchanged."""
        candidate = Candidate(inbox, relpath, size, mtime_ns, detected_at or self._clock.utcnow())
        return self.claim_many([candidate])[0]

    def claim_many(self, candidates: Iterable[Candidate]) -> list[int | None]:
        """`claim` for a whole scan, in one transaction (a 20,000-file backlog takes well under a second)."""
        ids: list[int | None] = []
        with self._db.write() as db:
            now = self._now()
            rerolled = rerolls.waiting(db)  # `remixd reroll` of kept inputs: mostly none, one read per batch
            for item in candidates:
                blocked = db.execute(_BLOCKING_CLAIM, (item.inbox, item.relpath, item.size, item.mtime_ns))
                reroll_id = None
                if blocked.fetchone() is not None:
                    if (item.inbox, item.relpath) in rerolled:
                        reroll_id = rerolls.for_kept(db, item.inbox, item.relpath, item.size, item.mtime_ns)
                    if reroll_id is None:
                        ids.append(None)
                        continue
                cursor = db.execute(
                    _INSERT_INPUT,
                    (
                        item.inbox, item.relpath, item.size, item.mtime_ns, stamp(item.detected_at), now,
                        dump_json(item.companions) if item.companions else None, *(item.file_id or (None, None)),
                    ),
                )  # fmt: skip
                if reroll_id is not None:
                    rerolls.bind(db, reroll_id, int(cursor.lastrowid or 0))
                ids.append(cursor.lastrowid)
        return ids

    def set_hash(self, input_id: int, sha256: str) -> None:
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            db.execute("UPDATE inputs SET sha256 = ? WHERE id = ?", (pack_hash(sha256), input_id))

    # -- inputs ----------------------------------------------------------------------------------------------

    def finish_input(self, input_id: int, state: FinishState, error: Mapping[str, Any] | None = None) -> None:
        """The input is done, a duplicate, failed or vanished; its disposal is pending till `set_disposed`."""
        if state not in ("done", "duplicate", "failed", "vanished"):
            raise ValueError(f"an input cannot finish as {state!r}")
        with self._db.write() as db:
            expect(db, "inputs", input_id, ("claimed",))
            db.execute(
                "UPDATE inputs SET state = ?, finished_at = ?, error = ?, disposal = ? WHERE id = ?",
                (
                    state,
                    self._now(),
                    None if error is None else dump_json(error),
                    "none" if state == "vanished" else "pending",
                    input_id,
                ),
            )

    def forget_renamed(self, input_id: int) -> str | None:
        """A claimed input, nothing sent for it, whose file was renamed in its inbox before a worker got to it:
        the same size and mtime claimed later under another name, and the same device and inode where both
        claims know them. Its row goes (it was the same file, claimed again; a `vanished` row would say a file
        was lost) and the new name is returned; else None."""
        with self._db.write() as db:
            row = expect(db, "inputs", input_id, ("claimed",))
            if db.execute("SELECT 1 FROM jobs WHERE input_id = ? LIMIT 1", (input_id,)).fetchone() is not None:
                return None
            later = db.execute(
                "SELECT relpath FROM inputs WHERE inbox = ? AND id > ? AND size = ? AND mtime_ns = ? AND relpath != ?"
                " AND (? IS NULL OR inode IS NULL OR (device = ? AND inode = ?)) LIMIT 1",
                (row["inbox"], input_id, row["size"], row["mtime_ns"], row["relpath"], row["inode"], row["device"],
                 row["inode"]),
            ).fetchone()  # fmt: skip
            if later is not None:
                db.execute("DELETE FROM inputs WHERE id = ?", (input_id,))
            return None if later is None else str(later["relpath"])

    def set_disposed(self, input_id: int, disposal: Disposal, destination: str | None = None) -> None:
        """moved (to `destination`), deleted or kept; only a kept input is skipped when seen unchanged."""
        if disposal not in ("moved", "deleted", "kept"):
            raise ValueError(f"{disposal!r} is not a completed disposal")
        with self._db.write() as db:
            row = expect(db, "inputs", input_id, ("done", "duplicate", "failed"))
            if row["disposal"] not in ("pending", disposal):
                raise JournalError(f"input {input_id} was already disposed of ({row['disposal']})")
            # Moved with its path kept below the folder (most are): the folder by its number (journal.layout).
            folder = disposed_folder(row["relpath"], destination)
            db.execute(
                "UPDATE inputs SET disposal = ?, disposed_to = ?, disposed_in = ? WHERE id = ?",
                (disposal, destination if folder is None else None, None if folder is None else folder_id(db, folder),
                 input_id),
            )  # fmt: skip
            slim_finished(db, input_id)

    def unfinished(self) -> list[InputRecord]:
        """What a restart must resume: claimed inputs (with their jobs) and finished ones not disposed of."""
        return self._inputs(_UNFINISHED)

    def unfinished_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(id, inbox) of up to `limit` unfinished inputs with ids above `after`, in claim order: the queue's
        supply (intake.backlog). NOT INDEXED: walking the table by id from `after` reads only what lies ahead,
        where the partial index would sort every unfinished input at each call."""
        rows = self._db.read(
            """SELECT id, inbox FROM inputs NOT INDEXED WHERE id > ? AND (state = 'claimed' OR disposal = 'pending')
               ORDER BY id LIMIT ?""",
            (after, limit),
        )
        return [(row["id"], row["inbox"]) for row in rows]

    def generating(self) -> list[JobRecord]:
        """Jobs whose async generation Ideogram accepted and has not finished, oldest first."""
        return self._jobs(f"{BUSY_JOBS} AND state = 'generating' ORDER BY generation_at", ())

    def shares_companions(self, record: InputRecord) -> bool:
        """Whether another input of the same folder and stem (mug.png beside mug.jpg), claimed with one of
        `record`'s companions, is not disposed of yet (README "Companions": they leave with the last of them)."""
        folder, _, name = record.relpath.rpartition("/")
        prefix = f"{folder}/{PurePosixPath(name).stem}" if folder else PurePosixPath(name).stem
        names = {companion for companion, _text in record.companions}
        # The stem's other names sort from "STEM." up to "STEM/" ("/" follows "."): a short range of an index.
        for row in self._db.read(_SAME_STEM, (record.inbox, f"{prefix}.", f"{prefix}/", record.id)):
            other = PurePosixPath(row["relpath"])
            if str(other.with_suffix("")) == prefix and names & {found for found, _ in load_json(row["companions"])}:
                return True
        return False

    def failed_inputs(self) -> list[InputRecord]:
        return self._inputs(f"{NOT_DONE} AND state = 'failed'")

    def reset_for_retry(self, input_id: int) -> bool:
        """`remixd retry`: the failed input may be claimed again. False when it is not failed."""
        with self._db.write() as db:
            cursor = db.execute(
                "UPDATE inputs SET state = 'retried' WHERE id = ? AND state = 'failed' AND disposal IS NOT 'pending'",
                (input_id,),
            )
            return cursor.rowcount == 1

    def add_reroll(self, of_input: InputRecord, seed: int) -> int:
        """`remixd reroll`: the next claim of this content at this path is sent again, with `seed`."""
        with self._db.write() as db:
            return rerolls.add(db, of_input, seed, self._now())

    def take_reroll(self, input_id: int) -> Reroll | None:
        with self._db.write() as db:
            return rerolls.take(db, input_id)

    def waiting_rerolls(self) -> set[tuple[str, str]]:
        """(inbox, relpath) of the rerolls no claim has taken yet (a running daemon looks for them at once)."""
        return {(row["inbox"], row["relpath"]) for row in self._db.read(rerolls.WAITING)}

    def cancel_reroll(self, reroll_id: int) -> None:
        with self._db.write() as db:
            rerolls.cancel(db, reroll_id)

    def done_input(
        self,
        *,
        disposed_to: str | None = None,
        source: tuple[str, str, str] | None = None,
        at: tuple[str, str] | None = None,
    ) -> InputRecord | None:
        """The latest done input moved to `disposed_to`; or the latest made from `source` (inbox, relpath,
        sha256) or found `at` (inbox, relpath), however it was disposed of (moved, kept or deleted)."""
        done = "state IN ('done', 'duplicate') AND "
        disposed = done + "disposal IN ('moved', 'kept', 'deleted') AND inbox = ? AND relpath = ? AND "
        if disposed_to is not None:
            found = self._inputs(done + "disposal = 'moved' AND " + DISPOSED_TO, (disposed_to,))
        elif source is not None:
            hashed = pack_hash(source[2])
            found = self._inputs(disposed + BY_SHA256, (source[0], source[1], hashed, hashed))
        elif at is not None:
            # A kept input by the index of paths; one moved or deleted since, which that index no longer holds,
            # by reading the inputs claimed after it (all of them when nothing is kept there).
            found = self._inputs(disposed + PATH_HELD, at)
            after = found[-1].id if found else 0
            found += self._inputs(disposed + "disposal != 'kept' AND id > ?", (*at, after))
        else:
            raise ValueError("name the done copy, the source or where it was")
        return found[-1] if found else None

    # -- keeping a year of journal small (README "A year of journal") ----------------------------------------

    def compact(self, before: datetime, limit: int) -> int:
        """Compact up to `limit` inputs finished before `before` to what the duplicate check needs."""
        with self._db.write() as db:
            return compact(db, stamp(before), limit)

    def fold_spend(self, today: date, limit: int) -> int:
        """Sum up to `limit` billed requests of finished inputs sent before `today` (UTC) into their days."""
        with self._db.write() as db:
            return fold_spend(db, today.isoformat(), limit)

    def reclaim(self, pages: int) -> int:
        """Give up to `pages` free pages back to the file system; the number of free pages left."""
        return self._db.reclaim(pages)

    # -- a lost journal (README "The sidecars are a second journal") ------------------------------------------

    def is_new(self) -> bool:
        """Nothing was ever claimed, compacted, kept or spent here: a new journal, or one lost and begun again."""
        row = self._db.read(
            "SELECT EXISTS (SELECT 1 FROM inputs) OR EXISTS (SELECT 1 FROM results) "
            "OR EXISTS (SELECT 1 FROM spend_days) OR EXISTS (SELECT 1 FROM kept)"
        )[0]
        return not row[0]

    def rebuild(
        self, sidecars: Iterable[ResultSidecar], failed: Iterable[FailedInput], progress: Callable[[int], None]
    ) -> Rebuilt:
        """What the sidecars say was done and paid, and the error files what failed, in one transaction (a
        start killed halfway leaves the journal new, and the next start rebuilds it whole). Both are read as
        they are written: a reader that fails fails the rebuild, and leaves the journal new."""
        from remixd.journal.rebuild import rebuild

        with self._db.write(durable=True) as db:
            return rebuild(db, sidecars, failed, progress)

    def close(self) -> None:
        self._db.close()
