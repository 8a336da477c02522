"""Durable writes: every file gets its final name by `os.replace` of a fsynced temp file in the same folder.

No partial file ever carries a final name (README, "What lands on disk"). Temp names start with a dot so the
watcher ignores them, and `remove_stale_temps` clears the ones a crash left behind. `output_error` turns an
OSError into an error whose hint names the folder to fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from remixd.errors import OutputError
from remixd.logs import get_logger

log = get_logger(__name__)


TEMP_PREFIX = ".remixd-tmp-"


NAME_MAX = 255  # bytes in one file name on every file system remixd supports


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` durably: temp file in the same folder, fsync, rename, fsync the folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(error, path, "create the folder for") from error
    temp = path.parent / temp_name(path.name)
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        temp.replace(path)
        fsync_folder(path.parent)
    except OSError as error:
        remove_quietly(temp)
        raise output_error(error, path, "write") from error


def write_json(path: Path, document: Any) -> None:
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name that is not valid UTF-8 reaches us with surrogate escapes; \u escapes keep the
        # document valid UTF-8 JSON that reads back to the very same name.
        data = (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    atomic_write(path, data)


def temp_name(name: str) -> str:
    """`.remixd-tmp-<random>-<name>`, the name cut so the whole stays within NAME_MAX bytes."""
    prefix = f"{TEMP_PREFIX}{secrets.token_hex(4)}-"
    return prefix + fit(name, NAME_MAX - len(prefix))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files a crash left under `folder` (recursively, never through symbolic links)."""
    removed = []
    for root, _folders, files in os.walk(folder):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                path = Path(root) / name
                try:
                    path.unlink()
                except OSError as error:
                    log.warning("remixd.output.temp_not_removed", path=str(path), error=str(error))
                else:
                    removed.append(path)
    return removed


def fit(text: str, limit: int) -> str:
    """`text` cut at a character boundary to at most `limit` bytes as a file name."""
    if limit < 1:
        raise OutputError(f"names around {text!r} are too long", "shorten the rule name")
    while len(os.fsencode(text)) > limit:
        text = text[:-1]
    return text


def read_no_follow(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str | None:
    """The content hash of a regular file; None for anything else (a folder, a link, unreadable)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return None
    except OSError:
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # some network file systems refuse it; harmless
            raise
    finally:
        os.close(descriptor)


def remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("remixd.output.temp_not_removed", path=str(path), error=str(error))


def _first_file_in(path: Path) -> Path:
    """The first component of `path` that exists and is not a folder: what is in the way of a folder."""
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


def output_error(error: OSError, path: Path, action: str) -> OutputError:
    # The hint names the folder the system call failed in (a move can fail at either end).
    folder = Path(os.fsdecode(error.filename)).parent if error.filename else path.parent
    reason = error.strerror or str(error)
    if error.errno in (errno.EACCES, errno.EPERM):
        hint = f"make {folder} writable by the user remixd runs as"
    elif error.errno == errno.EROFS:
        hint = f"{folder} is on a read-only file system; remount it read-write or choose another folder"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free space on the file system holding {folder}"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        failed = Path(os.fsdecode(error.filename)) if error.filename else path
        hint = f"{_first_file_in(failed)} is a file where remixd needs a folder; move it aside"
    elif error.errno == errno.ENAMETOOLONG:
        hint = "the path is longer than the file system allows; choose shorter folders or a shorter file name"
    elif error.errno == errno.EISDIR:
        hint = f"a folder is in the way at {path}; move it aside"
    else:
        hint = f"check that {folder} exists and is writable"
    return OutputError(f"cannot {action} {path}: {reason}", hint)
