"""`python -m bench --scale`: a million files waiting at start, and a journal of a year.

The million-file tree takes minutes and about 4 GB to make, so it is made once under --workdir and reused
(`after: keep`, a fresh state folder each run); a marker beside the inbox says it is complete.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import figures, inputs, procs, year, year_timings
from bench.figures import Row


@dataclass(frozen=True)
class ScaleSizes:
    files: int = 1_000_000
    folders: int = 1_000
    latency_s: float = 0.5
    inflight_limit: int = 8
    window_s: float = 120.0  # how long the daemon runs with the backlog waiting
    watchdog_s: float = 60.0  # WatchdogSec of the shipped unit: a ping at least every half of it
    per_day: int = 10_000
    days: int = 365
    keep_days: int = 90


SCALE = ScaleSizes()
SCALE_SMOKE = ScaleSizes(files=2_000, folders=20, window_s=5.0, watchdog_s=4.0, per_day=100, days=30, keep_days=7)


class NotifySocket:
    """A stand-in for systemd's notify socket: the time of READY=1 and of every WATCHDOG=1."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.2)
        self.ready_at: float | None = None
        self.watchdog: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._socket.recv(4096).decode()
            except TimeoutError:
                continue
            now = time.time()
            lines = message.splitlines()
            if "READY=1" in lines and self.ready_at is None:
                self.ready_at = now
            if "WATCHDOG=1" in lines:
                self.watchdog.append(now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
        self.path.unlink(missing_ok=True)


def make_tree(inbox: Path, files: int, folders: int, note: Callable[[str], None]) -> None:
    """`files` distinct tiny PNGs in `folders` folders, a minute old (settled), made once and reused."""
    marker = inbox.parent / f"tree-{files}-{folders}.complete"
    if marker.exists():
        note(f"backlog tree: reusing {files:,} files made by an earlier run in the work folder")
        return
    started = time.monotonic()
    shutil.rmtree(inbox, ignore_errors=True)
    per_folder = files // folders
    moment = time.time() - 60
    for number in range(files):
        folder = inbox / f"folder-{number // per_folder:04d}"
        if number % per_folder == 0:
            folder.mkdir(parents=True)
        path = folder / f"photo-{number:07d}.png"
        path.write_bytes(inputs.small_image(number))
        os.utime(path, (moment, moment))
    marker.touch()
    note(f"backlog tree: made {files:,} files in {time.monotonic() - started:.0f} s")


def backlog(work: Path, sizes: ScaleSizes, note: Callable[[str], None]) -> list[Row]:
    root = work / "backlog"
    make_tree(root / "inbox", sizes.files, sizes.folders, note)
    for leftover in ("state", "outbox", "failed", "sandbox"):  # the sandbox keeps a ledger of its own
        shutil.rmtree(root / leftover, ignore_errors=True)
    walk_s = figures._best_of(1, lambda: figures.bare_walk(root / "inbox"))
    with procs.Sandbox(root / "sandbox", latency_s=sizes.latency_s, inflight_limit=sizes.inflight_limit) as sandbox:
        config = inputs.write_config(
            root, sandbox.base_url, max_in_flight=sizes.inflight_limit, inbox={"recursive": True, "after": "keep"}
        )
        from remixd.config.load import load_config

        scan_s = figures._best_of(1, lambda: figures.remixd_scan(load_config(config).inboxes))
        notify = NotifySocket(root / "notify.sock")
        env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(sizes.watchdog_s * 1e6))}
        remixd = procs.Remixd("run", config, root, env=env)
        rss: list[tuple[float, int]] = []
        try:
            procs.wait_for(lambda: notify.ready_at is not None, 120, "READY=1")
            procs.wait_for(sandbox.arrivals, 120, "the first request")
            while time.time() - remixd.started < sizes.window_s:
                if remixd.process.poll() is not None:
                    raise RuntimeError(f"bench: remixd exited during the window; see {remixd.log.path}")
                rss.append((time.time() - remixd.started, remixd.memory_kib()["VmRSS"]))
                time.sleep(1.0)
            scanned = remixd.log.named("remixd.scan.finished")
        finally:
            usage = remixd.stop()
            notify.close()
    assert notify.ready_at is not None
    ready = notify.ready_at - remixd.started
    first = sandbox.arrivals()[0] - remixd.started
    peak_mb = usage.peak_rss_kib / 1024
    pings = [notify.ready_at, *notify.watchdog, remixd.started + sizes.window_s]
    gap = max(later - earlier for earlier, later in itertools.pairwise(pings))
    minute = [kib for at, kib in rss if at >= 60] or [kib for _at, kib in rss]
    scan_end = f"{procs.stamp(scanned[0]) - remixd.started:.1f} s" if scanned else "not within the window"
    note(
        f"backlog {sizes.files:,}: READY {ready:.2f} s, first request {first:.2f} s, scan finished {scan_end}, "
        f"{len(remixd.finished_inputs())} inputs finished in {sizes.window_s:.0f} s; RSS from the first minute "
        f"on {minute[0] / 1024:.0f}-{max(minute) / 1024:.0f} MB; bare walk {walk_s:.1f} s, remixd scan {scan_s:.1f} s"
    )
    label, half = f"backlog {sizes.files:,}", sizes.watchdog_s / 2
    return [
        Row(f"{label}: READY=1 after spawn", ready, "s", None, "target", None, "<= 5 s", ready <= 5),
        Row(f"{label}: first request after spawn", first, "s", None, "target", None, "<= 1 s", first <= 1),
        Row(f"{label}: peak RSS over {sizes.window_s:.0f} s", peak_mb, "MB", None, "target", None, "<= 200 MB",
            peak_mb <= 200),
        Row(f"{label}: RSS growth after the first minute", (max(minute) - minute[0]) / 1024, "MB", minute[0] / 1024,
            "RSS at 1 min", None, "flat", None),
        Row(f"{label}: longest watchdog gap", gap, "s", half, "WatchdogSec/2", gap / half, "ratio <= 1", gap <= half),
        Row(f"{label}: scan speed", sizes.files / scan_s, "files/s", sizes.files / walk_s, "bare scandir+stat walk",
            walk_s / scan_s, "ratio >= 0.50", walk_s / scan_s >= 0.5),
    ]  # fmt: skip


def journal(work: Path, sizes: ScaleSizes, note: Callable[[str], None]) -> list[Row]:
    root = work / "year"
    config = inputs.write_config(root, "http://127.0.0.1:9")  # status and the recovery never call the API
    built = year.build(
        root / "state" / "journal.sqlite3", per_day=sizes.per_day, days=sizes.days, keep_days=sizes.keep_days, note=note
    )
    size_mb = year.size(built.path) / 1e6
    empty = work / "year-empty"
    empty_config = inputs.write_config(empty, "http://127.0.0.1:9")
    from remixd.journal.sqlite import SqliteJournal

    SqliteJournal(empty / "state" / "journal.sqlite3").close()
    (status, status_median), (status_empty, _) = year_timings.status_s([config, empty_config])
    query, recovery = year_timings.status_query_s(built.path), year_timings.recovery_s(built.path)
    note(
        f"year journal: {built.inputs:,} inputs, {built.bytes_whole_per_input:.0f} B per input within keep_days, "
        f"{built.bytes_compacted_per_input:.0f} B per compacted input; remixd compacts a day in "
        f"{built.compact_day_s:.1f} s; `remixd status` {status_median * 1000:.0f} ms at the median of its runs, its "
        f"journal queries {query * 1000:.0f} ms; the page check after "
        f"READY=1 (unpaced) {year_timings.page_check_s(built.path):.1f} s"
    )
    label = f"journal of {sizes.days} days x {sizes.per_day:,}, keep_days {sizes.keep_days}"
    return [
        Row(f"{label}: file size", size_mb, "MB", None, "target", None, "< 500 MB", size_mb < 500),
        Row(f"{label}: `remixd status`", status * 1000, "ms", status_empty * 1000, "status, empty journal",
            status / status_empty, "< 200 ms", status < 0.2),
        Row(f"{label}: restart recovery (open + first queue)", recovery, "s", None, "target", None, "< 5 s",
            recovery < 5),
    ]  # fmt: skip


FIGURES: dict[str, Callable[[Path, ScaleSizes, Callable[[str], None]], list[Row]]] = {
    "journal": journal,
    "backlog": backlog,
}
