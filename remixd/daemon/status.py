"""What the running daemon tells the outside: systemd's STATUS= line, and state_dir/status.json.

Pauses live only in the daemon's memory, so `remixd status` (another process) learns of them from status.json,
read beside the journal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from remixd.errors import RemixdError
from remixd.files.atomic import write_json

log = structlog.get_logger(__name__)

STATUS_NAME = "status.json"


def status_line(inboxes: int, queued: int, in_flight_images: int, paused: Sequence[str]) -> str:
    line = f"{inboxes} inboxes, {queued} queued, {in_flight_images} images in flight"
    return line + (f"; paused: {'; '.join(paused)}" if paused else "")


def write_status(
    state_dir: Path,
    *,
    running: bool,
    paused: list[str],
    inboxes: Mapping[str, str],
    queued: int,
    in_flight_images: int,
    ceiling: int,
    missed_by_events: int,
    updated_at: float,
) -> None:
    """state_dir/status.json: what `remixd status` shows beside the journal (pauses live in memory)."""
    document = {
        "pid": os.getpid(),
        "running": running,
        "updated_at": updated_at,
        "paused": paused,
        "inboxes": inboxes,
        "queued": queued,
        "in_flight_images": in_flight_images,
        "ceiling": ceiling,
        "missed_by_events": missed_by_events,
    }
    try:
        write_json(state_dir / STATUS_NAME, document)
    except RemixdError as error:
        log.warning("remixd.status.not_written", error=error.message)


def read_status(state_dir: Path) -> dict[str, object] | None:
    try:
        document = json.loads((state_dir / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
