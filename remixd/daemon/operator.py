"""Operator commands that change things: `remixd retry` puts failed inputs back into their inbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from remixd.config.model import Config
from remixd.files.names import error_file_name
from remixd.journal.sqlite import SqliteJournal


def retry_failed(config: Config, only: Sequence[Path] = ()) -> Iterator[str]:
    """Move each failed input (all, or those named by their failed or inbox path) back where it came from.

    A failed input never blocks a claim, so a running daemon claims the file as new when it lands.
    """
    from remixd.journal.sqlite import JOURNAL_NAME

    inboxes = {str(inbox.path): inbox for inbox in config.inboxes}
    journal = SqliteJournal(config.state_dir / JOURNAL_NAME)
    count = 0
    try:
        for record in journal.failed_inputs():
            inbox = inboxes.get(record.inbox)
            if inbox is None or record.disposed_to is None:
                continue
            failed_copy = Path(record.disposed_to)
            home = inbox.path / record.relpath
            if only and failed_copy not in only and home not in only:
                continue
            if not failed_copy.is_file():
                yield f"skipped {record.relpath}: {failed_copy} is gone"
                continue
            if os.path.lexists(home):
                yield f"skipped {record.relpath}: {home} exists already"
                continue
            # Move first, then release the claim: a move that fails (a failed folder on another file system
            # used to raise EXDEV here) leaves the input failed and listed, instead of "retried" and stuck.
            try:
                home.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(failed_copy, home)
            except OSError as error:
                yield f"skipped {record.relpath}: cannot move {failed_copy} to {home}: {error.strerror or error}"
                continue
            if not journal.reset_for_retry(record.id):
                continue
            (failed_copy.parent / error_file_name(failed_copy.name)).unlink(missing_ok=True)
            count += 1
            yield f"retrying {record.relpath} (back in {inbox.path})"
    finally:
        journal.close()
    yield f"{count} input(s) put back"
