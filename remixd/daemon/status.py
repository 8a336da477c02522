"""What the running daemon tells the outside: systemd's STATUS= line, and state_dir/status.json.

Pauses live only in the daemon's memory, so `remixd status` (another process) learns of them from status.json,
read beside the journal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from remixd.errors import RemixdError
from remixd.files.atomic import write_json
from remixd.logs import get_logger

log = get_logger(__name__)

STATUS_NAME = "status.json"


def status_line(
    inboxes: int, queued: int, in_flight_images: int, paused: Sequence[str], scanned: int | None = None
) -> str:
    """systemd's STATUS=; `scanned`: files the running scan has found so far (None: no scan runs)."""
    line = f"{inboxes} inboxes, {queued} queued, {in_flight_images} images in flight"
    line += f"; scanning: {scanned:,} files found" if scanned is not None else ""
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
    scan: Mapping[str, object],
    state_free_bytes: int | None,
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
        "scan": dict(scan),  # intake.backlog.ScanProgress: the review page shows it too
        "state_free_bytes": state_free_bytes,  # daemon.space: below journal.min_free_mb, submissions pause
    }
    try:
        write_json(state_dir / STATUS_NAME, document)
    except RemixdError as error:
        log.warning("remixd.status.not_written", error=error.message)


def scan_line(daemon: Mapping[str, object]) -> str | None:
    """`remixd status`'s line about the running daemon's scan of its inboxes, from status.json."""
    scan = daemon.get("scan")
    if not isinstance(scan, dict) or not isinstance(scan.get("started_at"), int | float):
        return None
    running = bool(scan.get("running"))
    end = daemon.get("updated_at") if running else scan.get("finished_at")
    seconds = float(end) - scan["started_at"] if isinstance(end, int | float) else 0.0
    found = f"{scan.get('files', 0):,} files found, {scan.get('claimed', 0):,} of them new"
    return f"scan: {'running for' if running else 'finished in'} {seconds:.0f} s, {found}"


def read_status(state_dir: Path) -> dict[str, object] | None:
    try:
        document = json.loads((state_dir / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
