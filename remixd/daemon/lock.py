"""One process per state_dir: everything that processes inputs or recovers the journal holds this lock.

Two daemons on one journal each resume the other's claims and pay for them again (README, "One process per
state folder"). The lock is an flock on a file in state_dir: the kernel drops it when the process dies, even by
SIGKILL, so a crash never leaves a stale lock behind. Commands that only read (`status`, `check`, `plan`, the
page) do not take it and keep working beside a running daemon.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from remixd.errors import AlreadyRunning, StateDirUnusable

LOCK_NAME = "remixd.lock"


class StateLock:
    """`with StateLock(state_dir):` holds the lock for the block; raises AlreadyRunning when it is taken."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            what = "is read-only" if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "cannot be written"
            raise StateDirUnusable(
                f"the state folder {self.path.parent} {what} ({error.strerror or error})",
                f"make {self.path.parent} writable by the user remixd runs as, or point state_dir elsewhere",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"remixd is already running (pid {holder or 'unknown'}) on {self.path.parent}",
                "stop it first (or give this config its own state_dir); `remixd status` works beside it",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The holder writes its pid right after locking; a moment before that the file may still be empty."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
