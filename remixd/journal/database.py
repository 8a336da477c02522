"""The journal's SQLite connection: opening it in WAL mode, migrating its schema, one transaction at a time.

One connection is shared by the worker threads, guarded by a lock; a write takes the write lock up front so a
check-then-insert is atomic even against another process using the same file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from remixd.errors import JournalError, JournalUnwritable
from remixd.journal import compact, packing
from remixd.journal.schema import MIGRATIONS, pack_hash
from remixd.journal.turns import Turns
from remixd.logs import get_logger

log = get_logger(__name__)

_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
INCREMENTAL = 2  # PRAGMA auto_vacuum: free pages are kept until `PRAGMA incremental_vacuum` returns them
BUSY_TIMEOUT_MS = 10_000  # another remixd process (e.g. `remixd status`) may hold the write lock briefly
WAL_CHECKPOINT_PAGES = 256  # 1 MiB of 4 KiB pages; SQLite's default is 1,000
WAL_LIMIT_BYTES = 1024 * 1024  # the WAL is cut back to this after each checkpoint
MIGRATING_STEPS = 10_000_000  # SQLite instructions between two calls of `migrating`: about a second
LOCKED = "another process is writing it: try again"  # the hint for a lock held past BUSY_TIMEOUT_MS
CHECK_STEPS = 100_000  # SQLite steps between two calls of check_pages' `step`: a few milliseconds


class Database:
    """The SQLite file behind the journal."""

    def __init__(self, path: Path, *, migrating: Callable[[], None] | None = None, upgrades: bool = True) -> None:
        """migrating: called every few seconds while a migration runs (a year of journal takes minutes).
        upgrades: False refuses a journal of an older remixd, whose daemon may still run it (see _migrate)."""
        self._turns = Turns()  # the connection's lock; a request's sent row and a generation's id go first
        self.path = path
        self._wal_lock = threading.Lock()  # guards the two below, never held while syncing
        self._wal: tuple[int, int] | None = None  # (descriptor, inode) of the WAL file, kept open to sync it
        self._old_wals: list[int] = []  # descriptors of replaced WAL files: closed with the journal, as a
        # sync on another thread may still be using one
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise JournalError(
                f"cannot open the journal {path}: {error}", f"make {path.parent} writable by the user remixd runs as"
            ) from error
        self._connection.row_factory = sqlite3.Row
        packing.register(self._connection)
        try:
            # Before the first table exists: freed pages can be given back a few at a time. Only then: on a file
            # with tables it changes nothing, yet writes, and so waited for another process's write lock.
            if self._connection.execute("PRAGMA page_count").fetchone()[0] == 0:
                self._connection.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
            _enable_wal(self._connection, path)
            # In WAL mode a commit appends to the WAL file; NORMAL skips the fsync at commit and syncs at
            # checkpoints. A killed process loses nothing (the OS holds the written WAL pages); only a power
            # cut or kernel crash can roll back the last commits, never corrupt the file. The commits that
            # protect money (request sent, answer received) are synced before they return: see write(durable).
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # The WAL is bounded: checkpointed every WAL_CHECKPOINT_PAGES and cut back to WAL_LIMIT_BYTES after
            # each checkpoint. Left alone it stays at its high-water mark (4 MB and more), which on a small or
            # nearly full state fs ate the space an operator had just freed and wedged the daemon.
            self._connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            self._connection.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            self._migrate(path, migrating, upgrades)
            self._connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as error:  # e.g. "file is not a database"
            self._connection.close()
            raise self._unusable(error, "cannot open") from error
        except BaseException:
            self._connection.close()
            raise

    def check_pages(self, step: Callable[[], bool]) -> bool:
        """Read every page for damage (PRAGMA quick_check): seconds for a year of journal, more from a cold disk.
        On a read-only connection of its own, so the shared connection and the write lock stay free for the
        workers while it runs. `step` is called every CHECK_STEPS steps of SQLite's and cancels the check by
        returning True. Whether the check ran to its end; raises JournalError when a page is damaged."""
        try:
            connection = sqlite3.connect(self.path.absolute().as_uri() + "?mode=ro", uri=True)
        except sqlite3.Error as error:
            raise self._unusable(error, "cannot check") from error
        try:
            connection.set_progress_handler(step, CHECK_STEPS)
            problem = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
                return False
            raise self._unusable(error, "cannot check") from error
        finally:
            connection.close()
        if problem != "ok":
            raise self._damaged(" ".join(str(problem).split()))
        return True

    def _unusable(self, error: sqlite3.Error, doing: str) -> JournalError:
        """What went wrong with the file, told as what to do: a read-only folder is not a damaged journal."""
        path = self.path
        if not _writable(path):
            return JournalUnwritable(
                f"the journal {path} is read-only ({error})",
                f"make {path.parent} and the files in it writable by the user remixd runs as "
                "(a read-only mount or a wrong owner); nothing needs to be moved",
            )
        if getattr(error, "sqlite_errorcode", None) in _DAMAGED:
            return self._damaged(str(error))
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:  # nothing wrong with the file
            return JournalError(f"{doing} the journal {path}: {error}", LOCKED)
        return JournalError(f"{doing} the journal {path}: {error}", f"move {path} aside; remixd starts a new journal")

    def _damaged(self, detail: str) -> JournalError:
        path = self.path
        return JournalError(
            f"the journal {path} is damaged ({detail})",
            f"stop remixd, move {path} and its -wal and -shm files aside (keep them: `sqlite3 FILE .recover` "
            "may save their rows), and start again: remixd begins a new journal",
        )

    def _migrate(self, path: Path, migrating: Callable[[], None] | None, upgrades: bool) -> None:
        """Foreign keys are not enforced yet: a migration may make a table again (journal.layout), dropping the
        old one while rows of others still refer to its rows, copied across with their ids."""
        packing.register_migrating(self._connection)
        compact.register_migrating(self._connection)
        self._connection.create_function("pack_hash", 1, pack_hash, deterministic=True)
        # Up to date: no write lock taken, so `remixd status` beside a busy daemon neither waits nor holds it up.
        with contextlib.suppress(sqlite3.OperationalError):  # a new file has no table yet
            if self._connection.execute("SELECT max(version) FROM schema_version").fetchone()[0] == len(MIGRATIONS):
                return
        with self.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            if version > len(MIGRATIONS):
                raise JournalError(
                    f"the journal {path} has schema version {version}, newer than this remixd",
                    "upgrade remixd, or point state_dir at a new folder",
                )
            upgrading = 0 < version < len(MIGRATIONS)  # a new journal's tables take no time
            if upgrading and not upgrades:  # it would go on writing rows of its layout into the new one
                raise JournalError(
                    f"the journal {path} is of an older remixd (schema {version} of {len(MIGRATIONS)}), whose daemon"
                    " may still be running it",
                    "restart the daemon (systemctl restart remixd, or remixd run) to bring it up to date, then retry",
                )
            if upgrading:
                log.info("remixd.journal.migrating", path=str(path), version=version, to=len(MIGRATIONS))
            if upgrading and migrating is not None:
                db.set_progress_handler(lambda: migrating() or 0, MIGRATING_STEPS)
            try:
                for number in range(version, len(MIGRATIONS)):
                    for statement in MIGRATIONS[number]:
                        db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (number + 1,))
            finally:
                db.set_progress_handler(None, 0)

    @contextmanager
    def write(self, *, durable: bool = False, urgent: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front, so a check-then-insert is
        atomic even against another process using the same file. `urgent`: before the others waiting (turns).
        durable: on disk when this returns, so a power cut cannot undo it. The WAL is synced after the lock is
        released: held, every other thread's read and write waited for the disk too (a request's "sent" row
        took ~7 ms where the sync alone takes ~1.5, python -m bench --only async_v2), and syncs of commits
        made at the same moment now overlap."""
        with self._turns.hold(urgent=urgent):
            db = self._connection
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if getattr(error, "sqlite_errorcode", None) in (*_DAMAGED, sqlite3.SQLITE_READONLY):
                    raise self._unusable(error, "cannot write") from error
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                raise JournalUnwritable(
                    f"cannot write the journal: {error}",
                    LOCKED if busy else "check free space and permissions of state_dir",
                ) from error
        if durable:
            self._sync()

    def _sync(self) -> None:
        """Every commit so far on disk. WAL mode appends each commit to the WAL file, so syncing it covers
        them all; what a checkpoint has moved into the main file was synced by the checkpoint (synchronous=
        NORMAL) before the WAL could be reused. This is the sync a FULL commit makes, without the lock."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            _sync_data(self._wal_descriptor(wal))
        except OSError as error:
            raise JournalUnwritable(
                f"cannot write the journal: {error}", "check free space and permissions of state_dir"
            ) from error

    def _wal_descriptor(self, wal: Path) -> int:
        with self._wal_lock:
            inode = wal.stat().st_ino
            if self._wal is None or self._wal[1] != inode:
                descriptor = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
                # A new WAL's name is synced too, as SQLite does: a power cut must not lose the whole file.
                folder = os.open(wal.parent, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
                if self._wal is not None:
                    self._old_wals.append(self._wal[0])
                self._wal = (descriptor, os.fstat(descriptor).st_ino)
            return self._wal[0]

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._turns.hold():
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise self._unusable(error, "cannot read") from error

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: several reads see the same state of the file."""
        with self._turns.hold():
            try:
                self._connection.execute("BEGIN")
                try:
                    yield
                finally:
                    self._connection.execute("COMMIT")
            except sqlite3.Error as error:
                raise self._unusable(error, "cannot read") from error

    def reclaim(self, pages: int) -> int:
        """Give up to `pages` free pages back to the file system; the number of free pages left. A journal made
        before incremental vacuum is converted once, by a full VACUUM."""
        with self._turns.hold():
            try:
                if self._connection.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
                    log.info("remixd.journal.vacuum", reason="converting the journal to incremental vacuum")
                    self._connection.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
                    self._connection.execute("VACUUM")
                # executescript steps the pragma to its end; execute() would free a single page.
                self._connection.executescript(f"PRAGMA incremental_vacuum({int(pages)})")
                return int(self._connection.execute("PRAGMA freelist_count").fetchone()[0])
            except sqlite3.Error as error:
                raise self._unusable(error, "cannot vacuum") from error

    def close(self) -> None:
        with self._turns.hold():
            self._connection.close()
        with self._wal_lock:
            for descriptor in [*self._old_wals, *([self._wal[0]] if self._wal else [])]:
                os.close(descriptor)
            self._wal, self._old_wals = None, []


# What SQLite syncs a commit with where it can: the data and the size, not the times.
_sync_data = getattr(os, "fdatasync", os.fsync)


def _writable(path: Path) -> bool:
    """Whether remixd may write the journal: its folder (for -wal and -shm) and the file itself, if it exists.
    access(2) answers EROFS for a read-only mount even to root."""
    folder_ok = os.access(path.parent, os.W_OK | os.X_OK)
    return folder_ok and (not path.exists() or os.access(path, os.W_OK))


def _enable_wal(db: sqlite3.Connection, path: Path) -> None:
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise JournalError(
            f"the journal {path} cannot use WAL mode (got {mode!r})", "put state_dir on a local file system"
        )
