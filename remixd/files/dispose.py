"""Where an input goes once its jobs are over: to done, deleted or kept; or to failed, with an error file.

The input is removed only once its copy is durable (README, "What lands on disk"), and every disposal can be
repeated after a crash: source gone and destination present means done. A move across file systems copies to a temp
name beside the destination, fsyncs and renames, so a crash mid-copy never leaves a partial file under the input's
name (`files.moves`). Names come from `files.names` and temp files and folder fsyncs from `files.atomic`, so both
stages name files the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, TypeVar

from remixd.errors import OutputError
from remixd.files.atomic import (
    NAME_MAX,
    TEMP_PREFIX,
    fit,
    fsync_folder,
    output_error,
    sha256_of,
    write_json,
)
from remixd.files.moves import copy_to_free_name, lexists, move_to_free_name, name_variants
from remixd.files.names import error_file_name, folder_inside, relative_path

After = Literal["move", "delete", "keep"]
T = TypeVar("T")
Digest = Callable[[Path], str | None]
HELD_PREFIX = f"{TEMP_PREFIX}held-"  # the processed input, out of the user's name while it is disposed of


class Replaced(Exception):
    """The file under the input's name is no longer the one processed (overwritten, or renamed over, since the
    claim): it is left where it is, for the intake to claim as a new input, and nothing is disposed of."""


@dataclass(frozen=True)
class FailedDisposal:
    input: Path | None  # where the failed input is now (`remixd retry` moves it back); None: it was gone
    error_file: Path


class Retry(Protocol):
    """The caller's wait for a disk that refuses a step for now (full, read-only): it tries the step again, and
    raises the last OutputError once it gives up."""

    def __call__(self, step: Callable[[], T], /) -> T: ...


def _once(step: Callable[[], T]) -> T:
    return step()


def dispose_done(
    src: Path,
    after: After,
    done_dir: Path | None,
    relpath: str,
    sha256: str | None,
    *,
    digest: Digest = sha256_of,
    companions: Sequence[str] = (),
    shared: bool = False,
    retry: Retry = _once,
) -> Path | None:
    """Move (to `DONE_DIR/REL/NAME`, or `STEM-<sha8>.EXT` if another file has that name), delete or keep; the
    `companions` follow it (`shared`: see dispose_companions). The input, then its companions, are each one step
    for `retry`. `digest` hashes the input where it is checked (tests pass one that acts at that moment).

    Returns where a moved input is now; None for delete and keep, and for a move whose source is gone with
    no copy of it found (someone removed it).
    """
    destination = retry(lambda: _dispose_done(src, after, done_dir, relpath, sha256, digest=digest))
    if companions:
        retry(lambda: dispose_companions(src, companions, after, destination, shared=shared))
    return destination


def _dispose_done(
    src: Path, after: After, done_dir: Path | None, relpath: str, sha256: str | None, *, digest: Digest
) -> Path | None:
    if after == "keep":
        try:
            _put_back(_held_name(src), src)  # held when a crash came, and the config says keep now
        except OSError as error:
            raise output_error(error, src, "put back") from error
        return None
    if after == "delete":
        try:
            held = _hold(src, sha256, digest)
            if held is not None:
                held.unlink(missing_ok=True)
                fsync_folder(src.parent)
        except OSError as error:
            raise output_error(error, src, "delete") from error
        return None
    if done_dir is None:
        raise ValueError("after: move needs a done_dir")
    return _move_input(src, done_dir, relpath, sha256, digest)


def dispose_failed(
    src: Path,
    failed_dir: Path,
    relpath: str,
    sha256: str | None,
    error_doc: Mapping[str, Any],
    *,
    companions: Sequence[str] = (),
    shared: bool = False,
    retry: Retry = _once,
) -> FailedDisposal:
    """Move the input to `FAILED_DIR/REL/` and write `NAME.error.json` beside it, last (the error file means
    the failure is fully recorded); the `companions` follow it (`shared`: see dispose_companions). An input
    already gone gets its error file all the same. The input with its error file, then its companions, are each
    one step for `retry`."""
    disposed = retry(lambda: _dispose_failed(src, failed_dir, relpath, sha256, error_doc))
    if companions:
        retry(lambda: dispose_companions(src, companions, "move", disposed.input, shared=shared))
    return disposed


def _dispose_failed(
    src: Path, failed_dir: Path, relpath: str, sha256: str | None, error_doc: Mapping[str, Any]
) -> FailedDisposal:
    moved = _move_input(src, failed_dir, relpath, sha256)
    if moved is None:
        relative = relative_path(relpath)
        error_path = folder_inside(failed_dir, relative.parent) / error_file_name(relative.name)
    else:
        error_path = moved.parent / error_file_name(moved.name)
    write_json(error_path, error_doc)
    return FailedDisposal(input=moved, error_file=error_path)


def dispose_companions(
    src: Path, names: Sequence[str], after: After, moved: Path | None, *, shared: bool = False
) -> None:
    """The companions `names` beside the input `src` follow it (README "Companions"): deleted with it, kept
    with it, or moved beside where it went, under its new stem. `shared`: another image of the stem, claimed
    with them too, is still to go: each takes a copy, and the last of them takes the files. Repeatable after a
    crash like the input's own disposal; a companion already gone is left gone."""
    if after == "keep" or (after == "move" and moved is None) or (after == "delete" and shared):
        return  # kept; an input that was gone when it was disposed; or the files wait for the stem's last image
    for name in names:
        companion = src.with_name(name)
        try:
            if after == "delete":
                companion.unlink(missing_ok=True)
            elif moved is not None:
                target = moved.stem + PurePosixPath(name).suffix
                if shared:
                    copy_to_free_name(companion, moved.parent, target)
                else:
                    move_to_free_name(companion, moved.parent, target, None)
        except OSError as error:
            raise output_error(error, companion, "move or delete") from error
    if after == "delete" and names:
        fsync_folder(src.parent)


def _move_input(src: Path, root: Path, relpath: str, sha256: str | None, digest: Digest = sha256_of) -> Path | None:
    relative = relative_path(relpath)
    folder = folder_inside(root, relative.parent)
    held: Path | None = None
    try:
        held = _hold(src, sha256, digest)
        return move_to_free_name(held or src, folder, relative.name, sha256)
    except OSError as error:
        _put_back(held, src)
        raise output_error(error, folder / relative.name, f"move {src} to") from error
    except OutputError:
        _put_back(held, src)  # it waits under its own name, where the user sees it
        raise


def _hold(src: Path, sha256: str | None, digest: Digest) -> Path | None:
    """The processed input, first moved out of the user's name to a hidden one beside it (dot-files are never
    claimed), then checked there: a file rewritten in place between a check and the move went to the done
    folder under the old image's sidecar, and a rewrite now reaches no file of ours. A file that is not the
    one processed is put back (Replaced): it is a new input. None: the input is gone. A crash while it is
    held leaves it under the hidden name, where the repeated disposal takes it up again."""
    if sha256 is None:
        return src  # nothing to check it by (it could not be read): disposed of as it is
    held = _held_name(src)
    if not lexists(held):
        try:
            src.rename(held)
        except FileNotFoundError:
            return None
    before = held.lstat()
    found = digest(held)
    after = held.lstat()  # a writer that opened it before it was held, still writing while it was hashed
    if found != sha256 or (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        _put_back(held, src)
        raise Replaced(str(src))
    return held


def _held_name(src: Path) -> Path:
    return src.with_name(HELD_PREFIX + fit(src.name, NAME_MAX - len(HELD_PREFIX)))


def _put_back(held: Path | None, src: Path) -> None:
    """A held file back under the user's name, or beside it when a new file took that name meanwhile
    (a hard link never replaces what is there)."""
    if held is None or held == src or not lexists(held):
        return
    tag_from = sha256_of(held) or hashlib.sha256(os.fsencode(held.name)).hexdigest()  # unreadable: still a free name
    for candidate in name_variants(src.parent, src.name, tag_from):
        try:
            os.link(held, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if lexists(candidate):
                continue
            held.rename(candidate)
            return
        held.unlink()
        return
