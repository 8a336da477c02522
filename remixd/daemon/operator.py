"""Operator commands that change things: `remixd retry` puts failed inputs back into their inbox, with their
companions."""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from remixd.config.model import Config
from remixd.files.names import error_file_name
from remixd.intake.companions import Finder, images_of
from remixd.journal.sqlite import SqliteJournal


@dataclass
class RetryReport:
    """What `remixd retry` did: a line per input, and the named paths that were not failed inputs."""

    lines: list[str] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)
    skipped: int = 0


def retry_failed(config: Config, only: Sequence[Path] = (), input_ids: Collection[int] = ()) -> RetryReport:
    """Move each failed input (all, or those named by their failed or inbox path, or by their journal id: the
    review page's Retry) back where it came from.

    A failed input never blocks a claim, so a running daemon claims the file as new when it lands.
    """
    from remixd.journal.sqlite import JOURNAL_NAME

    inboxes = {str(inbox.path): inbox for inbox in config.inboxes}
    journal = SqliteJournal(config.state_dir / JOURNAL_NAME, upgrades=False)  # the daemon's to bring up to date
    report, named, count = RetryReport(), set(only), 0
    try:
        for record in journal.failed_inputs():
            inbox = inboxes.get(record.inbox)
            if inbox is None or record.disposed_to is None:
                continue
            failed_copy = Path(record.disposed_to)
            home = inbox.path / record.relpath
            if only and failed_copy not in named and home not in named:
                continue
            if input_ids and record.id not in input_ids:
                continue
            named -= {failed_copy, home}
            problem = _blocked(failed_copy, home)
            if problem is None:
                # Move first, then release the claim: a move that fails leaves the input failed and listed,
                # instead of "retried" and stuck; and it leaves no copy in the inbox (see _move).
                problem = _move_with_companions(failed_copy, home)
            if problem is not None or not journal.reset_for_retry(record.id):
                report.skipped += 1
                report.lines.append(f"skipped {record.relpath}: {problem or 'it is no longer failed'}")
                continue
            (failed_copy.parent / error_file_name(failed_copy.name)).unlink(missing_ok=True)
            count += 1
            report.lines.append(f"retrying {record.relpath} (back in {inbox.path})")
    finally:
        journal.close()
    report.unknown = [path for path in only if path in named]
    report.lines.append(f"{count} input(s) put back")
    return report


def _blocked(failed_copy: Path, home: Path) -> str | None:
    if not failed_copy.is_file():
        return f"{failed_copy} is gone"
    if os.path.lexists(home):
        return f"{home} exists already"
    for source, target in _companion_moves(failed_copy, home).items():
        if os.path.lexists(target) and not _same_file(source, target):
            return f"{target} exists already"
    return None


def _same_file(source: Path, target: Path) -> bool:
    """`target` is a plain file with `source`'s bytes: a companion brought back with another image of its stem."""
    try:
        return not target.is_symlink() and filecmp.cmp(source, target, shallow=False)
    except OSError:
        return False


def _companion_moves(failed_copy: Path, home: Path) -> dict[Path, Path]:
    """Each companion beside the failed copy (README "Companions": it followed its image, under the image's
    new stem), and where it goes back to: beside the input, under the input's stem."""
    return {
        failed_copy.with_name(name): home.with_name(home.stem + PurePath(name).suffix)
        for name in Finder().names(failed_copy)
    }


def _move_with_companions(failed_copy: Path, home: Path) -> str | None:
    """The companions first, then the input: a running daemon that sees the input finds its companions
    already there. A companion or an input that cannot move puts back what had moved. Images of one stem
    share its companions (README "Companions"): one that another failed image of the stem still has beside
    it is copied back, one already back (the same bytes) is left as it is, and the last image takes the files."""
    back: list[tuple[Path, Path | None]] = []  # (where a companion went, where from; None: it was copied)
    spent: list[Path] = []  # companions back in the inbox already: the failed folder's go once the input has
    for source, target in _companion_moves(failed_copy, home).items():
        shared = any(image != failed_copy for image in images_of(source))
        if os.path.lexists(target):  # the same bytes (`_blocked`): brought back with another image of the stem
            spent += [] if shared else [source]
            continue
        problem = _copy(source, target) if shared else _move(source, target)
        if problem is not None:
            _put_back(back)
            return problem
        back.append((target, None if shared else source))
    problem = _move(failed_copy, home)
    if problem is not None:
        _put_back(back)
        return problem
    for source in spent:
        source.unlink(missing_ok=True)
    return None


def _put_back(back: list[tuple[Path, Path | None]]) -> None:
    for target, source in reversed(back):
        if source is None:
            target.unlink(missing_ok=True)
        else:
            _move(target, source)


def _copy(source: Path, target: Path) -> str | None:
    """A companion copied home, under a temporary dot-name first: the daemon never reads half of one."""
    temporary = target.parent / f".{target.name}.remixd-retry"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, temporary)
        temporary.replace(target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        return f"cannot copy {source} to {target}: {error.strerror or error}"
    return None


def _move(source: Path, target: Path) -> str | None:
    """Move a failed input home; None when done, else why not. Across file systems (a failed folder on
    another disk: EXDEV) it is copied under a temporary dot-name beside the target, renamed into place only
    once the original is removed: a copy that cannot take the original's place is removed, never left for
    the daemon to process while the original stays in the failed folder."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            return f"cannot move {source} to {target}: {error.strerror or error}"
    else:
        return None
    temporary = target.parent / f".{target.name}.remixd-retry"
    try:
        shutil.copy2(source, temporary)
        source.unlink()
    except OSError as error:
        temporary.unlink(missing_ok=True)
        return f"cannot move {source} to {target}: {error.strerror or error}"
    temporary.replace(target)
    return None
