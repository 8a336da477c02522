"""Figure 10: a new journal rebuilt from 100,000 sidecars, as remixd does before it claims anything.

The sidecars are remixd's own documents (files.sidecar), written plainly (no fsync: making them is not what is
measured) into 100 folders of one output folder. remixd's rebuild runs in this process on a fresh journal each
time: read every sidecar, write the results, spend, counts and kept inputs (the inbox keeps them) back in one
transaction. The reference is the
bare read of the same files (scandir, read, json.loads), measured in the same run: the target is a ratio to it,
so a loaded machine slows both.

Its memory is measured as the daemon's: `remixd once` started on the same folders with no journal rebuilds it
and finds nothing to do; its peak RSS (wait4) is set beside the same start with an empty output folder. The
rebuild stages what it reads in the journal, so memory stays flat in the number of sidecars (the daemon's
bound is 200 MB with a million files waiting).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from structlog.testing import capture_logs

from bench import inputs, procs

if TYPE_CHECKING:
    from bench.figures import Row, Sizes

FOLDERS = 100
TARGET_RATIO = 0.5  # at least half the speed of only reading the files: the journal's part stays small
TARGET_PEAK_MB = 200  # the daemon's bound with a million files waiting
RUNS = 3


def _write_sidecars(output: Path, inbox: str, count: int) -> None:
    from remixd.files.sidecar import ImageInfo, Source, sidecar

    moment = datetime(2026, 12, 1, 9, tzinfo=UTC)
    per_folder = max(1, count // FOLDERS)
    for number in range(count):
        folder = output / f"folder-{number // per_folder:03d}"
        if number % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        stem = f"photo-{number:06d}"
        document = sidecar(
            source=Source(inbox, f"{folder.name}/{stem}.png", f"{number:064x}", 4321, None, 1_764_000_000 * 10**9),
            rule="poster",
            fingerprint="f" * 64,
            endpoint="https://api.ideogram.ai/remix",
            request={**inputs.REQUEST, "prompt": f"A serene tropical beach, {stem}"},
            created=moment.isoformat(),
            route="V_2",
            generation_id=None,
            cost_source="table",
            index=1,
            count=1,
            item={"prompt": f"A serene tropical beach, {stem}", "resolution": "1024x1024", "seed": 12345},
            image=ImageInfo(f"{stem}.poster.1.png", "e" * 64, 5337, 1024, 1024),
            cost_usd=0.08,
            possible_payments=0,
            detected_at=moment,
            submitted_at=moment,
            completed_at=moment,
        )
        (folder / f"{stem}.poster.1.json").write_text(json.dumps(document, sort_keys=True), encoding="utf-8")


def _bare_read(output: Path) -> int:
    read, stack = 0, [str(output)]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir():
                stack.append(entry.path)
            else:
                json.loads(Path(entry.path).read_bytes())
                read += 1
    return read


def rebuild(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.figures import Row, _best_of, _fresh
    from remixd.config.load import load_config
    from remixd.daemon.rebuild import rebuild_from_sidecars
    from remixd.journal.sqlite import SqliteJournal

    root = _fresh(work / "rebuild")
    config = load_config(inputs.write_config(root, "http://127.0.0.1:9", inbox={"after": "keep"}))
    [inbox] = config.inboxes
    count = sizes.rebuild_sidecars
    started = time.monotonic()
    _write_sidecars(inbox.output, str(inbox.path), count)
    note(f"rebuild: wrote {count:,} sidecars in {time.monotonic() - started:.0f} s")
    bare_s = _best_of(RUNS, lambda: _bare_read(inbox.output))
    found: list[int] = []

    def once() -> None:
        path = config.state_dir / "journal.sqlite3"
        for leftover in config.state_dir.glob("journal.sqlite3*"):
            leftover.unlink()
        journal = SqliteJournal(path)
        try:
            with capture_logs():  # the bench prints its table, not remixd's log line
                found.append(rebuild_from_sidecars(journal, config.inboxes).jobs)
        finally:
            journal.close()

    seconds = _best_of(RUNS, once)
    assert found == [count] * RUNS, found
    note(f"rebuild: {count:,} sidecars -> {found[-1]:,} jobs in {seconds:.2f} s; bare read {bare_s:.2f} s")
    peak_mb = _peak_mb(root)
    empty = _fresh(work / "rebuild-empty")
    inputs.write_config(empty, "http://127.0.0.1:9")
    nothing_mb = _peak_mb(empty)
    note(f"rebuild: remixd once's peak RSS {peak_mb:.1f} MB with {count:,} sidecars, {nothing_mb:.1f} MB with none")
    return [
        Row(f"10 rebuild: new journal from {count} sidecars", seconds, "s", bare_s, "bare scandir+read+json walk",
            bare_s / seconds, f"ratio >= {TARGET_RATIO:.2f}", bare_s / seconds >= TARGET_RATIO),
        Row(f"10 rebuild: peak RSS of remixd once, {count} sidecars", peak_mb, "MB", nothing_mb,
            "peak RSS, no sidecars", peak_mb / nothing_mb, f"<= {TARGET_PEAK_MB} MB", peak_mb <= TARGET_PEAK_MB),
    ]  # fmt: skip


def _peak_mb(root: Path) -> float:
    """Peak RSS of `remixd once` on root/remixd.yaml (state in root/state), started without a journal: it
    rebuilds one, and ends."""
    for leftover in (root / "state").glob("journal.sqlite3*"):
        leftover.unlink()
    remixd = procs.Remixd("once", root / "remixd.yaml", root)
    usage = remixd.wait(timeout=600)
    if usage.status != 0 or not remixd.log.named("remixd.started"):
        raise RuntimeError(f"bench: remixd once exited {usage.status}; see {remixd.log.path}")
    return usage.peak_rss_kib / 1024
