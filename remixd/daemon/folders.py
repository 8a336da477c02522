"""The folders remixd writes into: checked when a config takes effect, and cleared of temp files after a crash."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from remixd.config.model import InboxConfig
from remixd.files import atomic
from remixd.logs import get_logger

log = get_logger(__name__)


def check_folders(inbox: InboxConfig, config_folder: Path) -> None:
    """Permissions are checked at start: a folder remixd cannot write is named now, not after paying.

    A missing inbox inside the config file's folder is created (README "Configuration"): that is the quick
    start's ./inbox. One elsewhere may be a mount that is not there yet; creating it would hide the mount's
    absence under an empty folder, so the intake waits for it instead.
    """
    if inbox.path.is_relative_to(config_folder) and not inbox.path.exists():
        try:
            inbox.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            log.warning("remixd.inbox.not_created", inbox=str(inbox.path), error=error.strerror)
        else:
            log.info("remixd.inbox.created", inbox=str(inbox.path))
    for folder in (inbox.output, inbox.done_dir, inbox.failed_dir):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
            hint = (
                f"{blocker} is a file where a folder should be: move it away"
                if blocker is not None
                else f"create {folder} and make it writable by {_user()}"
            )
            log.error(
                "remixd.folder.unusable",
                folder=str(folder),
                error=error.strerror,
                hint=f"{hint}; jobs wait until it is fixed",
            )
            continue
        if not os.access(folder, os.W_OK | os.X_OK):
            log.error(
                "remixd.folder.not_writable",
                folder=str(folder),
                hint=f"make {folder} writable by {_user()}; jobs wait until it is",
            )


def remove_stale_temps(state_dir: Path, inboxes: Sequence[InboxConfig]) -> None:
    """Temp files a crash left behind (e.g. a status.json cut short, a result half written)."""
    for path in atomic.remove_stale_temps(state_dir):
        log.info("remixd.recover.temp_removed", path=str(path))
    for inbox in inboxes:
        for folder in (inbox.output, inbox.done_dir, inbox.failed_dir):
            if folder is not None and folder.is_dir():
                for path in atomic.remove_stale_temps(folder):
                    log.info("remixd.recover.temp_removed", path=str(path))


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return "the user remixd runs as"
