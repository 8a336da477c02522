"""The five figures of README's "Benchmarks". Each returns rows: a measurement beside a reference measured in the
same run.

Every figure starts its own sandbox and its own remixd, in a fresh folder, so none inherits another's journal,
page cache warmth aside.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench import inputs, procs, review

if TYPE_CHECKING:
    from remixd.journal.records import Journal


@dataclass(frozen=True)
class Sizes:
    throughput_inputs: int = 300
    throughput_latency_s: float = 0.5
    inflight_limit: int = 10
    reaction_files: int = 40
    reaction_settle_s: float = 0.3
    backlog_files: int = 20_000
    backlog_folders: int = 20
    backlog_processed: int = 1_000  # inputs finished before the backlog run is stopped (peak RSS covers them)
    idle_files: int = 5_000  # also the soak: every one of them is processed before the idle window
    idle_folders: int = 50
    idle_window_s: float = 60.0
    rescan_s: float = 60.0  # remixd's default; --quick scales it with the window
    cost_inputs: int = 60
    cost_bytes: int = 2 * 1024 * 1024
    plan_files: int = 10_000
    storm_inputs: int = 1_000
    storm_kills: int = 100
    storm_latency_s: float = 0.2
    storm_seed: int = 20261201  # the kill moments are drawn from it, so a storm can be replayed
    review_inputs: int = 100_000
    rebuild_sidecars: int = 100_000
    naive: bool = True  # --skip-naive: leave out the 150 s baseline (e.g. when trying a fix)


FULL = Sizes()
QUICK = Sizes(idle_window_s=15.0, rescan_s=15.0)
SMOKE = Sizes(
    throughput_inputs=12,
    throughput_latency_s=0.05,
    reaction_files=3,
    backlog_files=200,
    backlog_folders=2,
    backlog_processed=20,
    idle_files=60,
    idle_folders=3,
    idle_window_s=2.0,
    rescan_s=2.0,
    cost_inputs=3,
    plan_files=200,
    storm_inputs=20,
    storm_kills=3,
    storm_latency_s=0.05,
    review_inputs=2_000,
    rebuild_sidecars=2_000,
)


@dataclass(frozen=True)
class Row:
    figure: str
    measured: float
    unit: str
    reference: float | None  # measured in the same run; None where the target itself is the reference
    reference_label: str
    ratio: float | None  # measured against its reference, in the sense of the target
    target: str
    met: bool | None  # None: informational, no target


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


# --- 1. throughput ------------------------------------------------------------------------------------------


def throughput(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "throughput")
    count, latency, limit = sizes.throughput_inputs, sizes.throughput_latency_s, sizes.inflight_limit
    originals = inputs.write_files(
        root / "originals", [(f"photo-{n:05d}.jpg", inputs.small_jpeg(n)) for n in range(count)]
    )
    with procs.Sandbox(root / "sandbox", latency_s=latency, inflight_limit=limit) as sandbox:
        config = inputs.write_config(root, sandbox.base_url, max_in_flight=limit)
        for path in originals:
            shutil.copy2(path, root / "inbox" / path.name)
        inputs.age(root / "inbox", 5.0)
        remixd = procs.Remixd("once", config, root)
        usage = remixd.wait(timeout=count * latency * 2 + 120)
        finished = remixd.finished_inputs()
        arrivals = sandbox.arrivals()
        if usage.status != 0 or len(finished) != count:
            raise RuntimeError(
                f"bench: remixd once finished {len(finished)}/{count} (exit {usage.status}); see {remixd.log.path}"
            )
        makespan = max(procs.stamp(entry) for entry in finished) - arrivals[0]
        rejected = sum(1 for entry in sandbox.answered() if entry.get("status") == 429)
        # The sandbox's own work (parsing, decoding, drawing the result) comes on top of latency_s; the API's
        # places are busy for the whole of it. Occupancy: the share of the limit's place-seconds in use.
        service = sum(entry["duration_ms"] for entry in sandbox.answered() if entry.get("status") == 200) / 1000
        note(
            f"throughput: remixd {makespan:.2f} s for {count} inputs ({rejected} answered 429), "
            f"process wall {usage.wall_s:.2f} s; now the naive loop"
        )
        naive = (
            procs.remix_naively(sandbox.base_url, originals, root / "naive", inputs.NAIVE_REQUEST)
            if sizes.naive
            else None
        )
    ideal = count * latency / limit
    rows = [
        Row(
            "1 throughput: makespan (first request to last input done)",
            makespan,
            "s",
            ideal,
            f"ideal {count}x{latency}s/{limit}",
            ideal / makespan,
            "ideal/measured >= 0.90",
            ideal / makespan >= 0.90,
        ),
        Row(
            "1 throughput: API places in use (sandbox service time incl. its own work)",
            service / limit,
            "s",
            makespan,
            "remixd makespan",
            service / limit / makespan,
            "occupancy (info)",
            None,
        ),
    ]
    if naive is not None:
        rows.append(
            Row(
                "1 naive baseline: one request at a time, same inputs",
                naive,
                "s",
                makespan,
                "remixd makespan",
                naive / makespan,
                "speed-up (info)",
                None,
            )
        )
    return rows


# --- 2. reaction --------------------------------------------------------------------------------------------


def reaction(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "reaction")
    settle = sizes.reaction_settle_s
    staged = inputs.write_files(
        root / "staging", [(f"drop-{n:04d}.jpg", inputs.small_jpeg(n)) for n in range(sizes.reaction_files)]
    )
    delays: list[float] = []
    with procs.Sandbox(root / "sandbox", latency_s=0.0, inflight_limit=sizes.inflight_limit) as sandbox:
        config = inputs.write_config(root, sandbox.base_url, inbox={"settle_s": settle})
        remixd = procs.Remixd("run", config, root)
        try:
            remixd.wait_started()
            time.sleep(0.5)  # let the start-up scan and the first housekeeping pass
            for number, path in enumerate(staged, start=1):
                renamed_at = time.time()
                path.rename(root / "inbox" / path.name)
                procs.wait_for(_reached(sandbox.arrivals, number), 30, "the request")
                procs.wait_for(_reached(remixd.finished_inputs, number), 30, "the input to finish")
                delays.append(sandbox.arrivals()[number - 1] - renamed_at - settle)
                time.sleep(0.05)
        finally:
            remixd.stop()
    p50, p95 = _percentile(delays, 0.50) * 1000, _percentile(delays, 0.95) * 1000
    note(
        f"reaction: {len(delays)} renames; ms after settle: min {min(delays) * 1000:.1f}, "
        f"p50 {p50:.1f}, p95 {p95:.1f}, max {max(delays) * 1000:.1f}"
    )
    return [
        Row(
            "2 reaction p50: rename to request, minus settle_s",
            p50,
            "ms",
            settle * 1000,
            "settle_s",
            p50 / 50,
            "<= 50 ms",
            p50 <= 50,
        ),
        Row("2 reaction p95", p95, "ms", settle * 1000, "settle_s", p95 / 150, "<= 150 ms", p95 <= 150),
    ]


# --- 3. backlog ---------------------------------------------------------------------------------------------


def bare_walk(root: Path) -> int:
    """The reference: os.scandir every folder and stat every file, nothing else."""
    count, pending = 0, [os.fspath(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def _reached(items: Callable[[], Sized], count: int) -> Callable[[], bool]:
    return lambda: len(items()) >= count


class _ClaimNothing:
    """A journal that claims nothing: times remixd's scan without SQLite."""

    def claim_many(self, candidates: Any) -> list[None]:
        return [None for _ in candidates]


def remixd_scan(inboxes: Any) -> None:
    """What remixd does at start before claiming: walk, lstat, ignore rules, readiness, claim preparation."""
    from remixd.clock import Clock  # the remixd beside bench/ (python -m bench puts it first on the path)
    from remixd.intake.loop import Intake

    intake = Intake(inboxes, cast("Journal", _ClaimNothing()), clock=Clock())  # the scan only claims
    intake.start(watch=False)
    while intake.scanning:
        intake.step(timeout=0.0)


def _best_of(runs: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def backlog(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "backlog")
    count = sizes.backlog_files
    per_folder = count // sizes.backlog_folders
    inputs.write_files(
        root / "inbox",
        [(f"batch-{n // per_folder:03d}/scan-{n:06d}.png", inputs.small_image(n)) for n in range(count)],
        age_s=0,
    )
    inputs.age(root / "inbox", 5.0)
    with procs.Sandbox(root / "sandbox", latency_s=0.0, inflight_limit=sizes.inflight_limit) as sandbox:
        config = inputs.write_config(root, sandbox.base_url, inbox={"recursive": True})
        walk_s = _best_of(3, lambda: bare_walk(root / "inbox"))
        from remixd.config.load import load_config

        inboxes = load_config(config).inboxes
        scan_s = _best_of(3, lambda: remixd_scan(inboxes))
        note(f"backlog: bare walk {walk_s * 1000:.0f} ms, remixd scan {scan_s * 1000:.0f} ms for {count} files")
        # The reference start: the same daemon with one file, to separate Python's start-up from the backlog.
        lone = _fresh(work / "backlog-lone")
        lone_config = inputs.write_config(lone, sandbox.base_url, inbox={"recursive": True})
        inputs.write_files(lone / "inbox", [("batch-000/scan-000000.png", inputs.small_image(count + 1))], 5.0)
        single = procs.Remixd("run", lone_config, lone)
        procs.wait_for(single.finished_inputs, 60, "the one-file start")
        seen = len(sandbox.arrivals())
        lone_first = sandbox.arrivals()[0] - single.started
        lone_usage = single.stop()
        remixd = procs.Remixd("run", config, root)
        try:
            procs.wait_for(lambda: len(sandbox.arrivals()) > seen, 120, "the first backlog request")
            first = sandbox.arrivals()[seen] - remixd.started
            procs.wait_for(
                lambda: len(remixd.finished_inputs()) >= sizes.backlog_processed,
                600,
                f"{sizes.backlog_processed} backlog inputs",
            )
            claimed_at = remixd.log.named("remixd.started")
        finally:
            usage = remixd.stop()
    started_s = procs.stamp(claimed_at[0]) - remixd.started if claimed_at else float("nan")
    peak_mb = usage.peak_rss_kib / 1024
    note(
        f"backlog: first request {first:.2f} s after spawn (one-file start {lone_first:.2f} s); "
        f"remixd.started logged {started_s:.2f} s after spawn; peak RSS {peak_mb:.1f} MB over "
        f"{len(remixd.finished_inputs())} processed inputs"
    )
    return [
        Row(
            f"3 backlog: first request after spawn, {count} files",
            first,
            "s",
            lone_first,
            "first request, 1-file inbox",
            first / lone_first,
            "<= 1 s",
            first <= 1.0,
        ),
        Row(
            "3 backlog: scan speed",
            count / scan_s,
            "files/s",
            count / walk_s,
            "bare scandir+stat walk",
            walk_s / scan_s,
            "ratio >= 0.50",
            walk_s / scan_s >= 0.5,
        ),
        Row(
            "3 backlog: peak RSS",
            peak_mb,
            "MB",
            lone_usage.peak_rss_kib / 1024,
            "peak RSS, 1-file inbox",
            peak_mb / (lone_usage.peak_rss_kib / 1024),
            "<= 150 MB",
            peak_mb <= 150,
        ),
    ]


# --- 4. idle and soak ---------------------------------------------------------------------------------------


def idle_and_soak(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    """A photo library watched recursively with `after: keep`: every file stays where it is once processed,
    so the tree an idle daemon watches is full of files it must not send again. (With `after: move` an idle
    inbox is empty, which would measure nothing.) The soak is the library's processing, folder by folder."""
    root = _fresh(work / "idle")
    count, folders = sizes.idle_files, sizes.idle_folders
    per_folder = count // folders
    inputs.write_files(
        root / "staging",
        [(f"album-{n // per_folder:03d}/img-{n:05d}.png", inputs.small_image(n)) for n in range(per_folder * folders)],
        age_s=5.0,
    )
    count = per_folder * folders
    samples: list[tuple[int, int]] = []  # (inputs finished, VmRSS KiB)
    with procs.Sandbox(root / "sandbox", latency_s=0.0, inflight_limit=sizes.inflight_limit) as sandbox:
        config = inputs.write_config(
            root,
            sandbox.base_url,
            inbox={"recursive": True, "after": "keep", "rescan_s": sizes.rescan_s, "done_dir": None},
        )
        remixd = procs.Remixd("run", config, root)
        try:
            remixd.wait_started()
            moved = 0
            while True:
                finished = len(remixd.finished_inputs())
                samples.append((finished, remixd.memory_kib()["VmRSS"]))
                if finished >= count:
                    break
                if moved < folders and finished >= (moved - 1) * per_folder:  # two albums queued at most
                    name = f"album-{moved:03d}"
                    (root / "staging" / name).rename(root / "inbox" / name)
                    moved += 1
                time.sleep(0.1)
            requests_before = len(sandbox.arrivals())
            time.sleep(3.0)  # the last writes, disposal and status; then nothing happens
            cpu_before, started = remixd.cpu_s(), time.monotonic()
            time.sleep(sizes.idle_window_s)
            idle_cpu, window = remixd.cpu_s() - cpu_before, time.monotonic() - started
            resent = len(sandbox.arrivals()) - requests_before
        finally:
            usage = remixd.stop()
    first = [rss for done, rss in samples if done < count / 4]
    last = [rss for done, rss in samples if done >= count * 3 / 4]
    growth = (statistics.mean(last) - statistics.mean(first)) / 1024
    budget = 0.3 * window / 60
    note(
        f"idle: {idle_cpu:.2f} s CPU over {window:.1f} s with {count} kept files (rescan_s {sizes.rescan_s}), "
        f"{resent} requests sent while idle; soak: RSS {statistics.mean(first) / 1024:.1f} -> "
        f"{statistics.mean(last) / 1024:.1f} MB over {count} inputs, final peak {usage.peak_rss_kib / 1024:.1f} MB"
    )
    if resent:
        raise RuntimeError(f"bench: remixd sent {resent} requests for files it had already done")
    return [
        Row(
            f"4 idle: CPU over {window:.0f} s, {count} kept files watched",
            idle_cpu,
            "s",
            window,
            "window (s)",
            idle_cpu / budget,
            f"<= {budget:.3g} s (0.3 s per 60 s)",
            idle_cpu <= budget,
        ),
        Row(
            f"4 soak: RSS growth, first to last quarter of {count} inputs",
            growth,
            "MB",
            statistics.mean(first) / 1024,
            "first-quarter RSS (MB)",
            growth / 10,
            "<= 10 MB",
            growth <= 10,
        ),
    ]


# --- 5. per-file cost ---------------------------------------------------------------------------------------


def per_file_cost(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "cost")
    photos = [(f"camera-{n:04d}.jpg", inputs.photo_jpeg(n, sizes.cost_bytes)) for n in range(sizes.cost_inputs)]
    mean_bytes = statistics.mean(len(data) for _name, data in photos)
    with procs.Sandbox(root / "sandbox", latency_s=0.0, inflight_limit=sizes.inflight_limit) as sandbox:
        config = inputs.write_config(root, sandbox.base_url)
        empty = min(procs.Remixd("once", config, root).wait(120).cpu_s for _ in range(2))  # start-up + exit
        inputs.write_files(root / "inbox", photos, age_s=5.0)
        remixd = procs.Remixd("once", config, root)
        usage = remixd.wait(600)
        if usage.status != 0 or len(remixd.finished_inputs()) != len(photos):
            raise RuntimeError(f"bench: per-file run failed (exit {usage.status}); see {remixd.log.path}")
    per_file_ms = (usage.cpu_s - empty) / len(photos) * 1000
    note(
        f"per-file: {usage.cpu_s:.2f} s CPU for {len(photos)} JPEGs of {mean_bytes / 2**20:.2f} MiB, "
        f"{empty:.2f} s for an empty run"
    )
    return [
        Row(
            f"5 per-file CPU, {mean_bytes / 2**20:.1f} MiB JPEG, latency 0",
            per_file_ms,
            "ms",
            empty * 1000,
            "empty-run CPU (ms)",
            per_file_ms / 30,
            "<= 30 ms",
            per_file_ms <= 30,
        )
    ]


def _plan(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.planning import plan  # its own module: it builds on this one's Row and Sizes

    return plan(work, sizes, note)


def _kill_storm(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.killstorm import kill_storm  # its own module, as the plan figure

    return kill_storm(work, sizes, note)


def _rebuild(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.rebuild import rebuild  # its own module, as the plan figure

    return rebuild(work, sizes, note)


def _async_v2(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    from bench.async_v2 import async_v2  # imports this module: loaded when asked for

    return async_v2(work, sizes, note)


FIGURES: dict[str, Callable[[Path, Sizes, Callable[[str], None]], list[Row]]] = {
    "throughput": throughput,
    "reaction": reaction,
    "backlog": backlog,
    "idle": idle_and_soak,
    "cost": per_file_cost,
    "plan": _plan,
    "killstorm": _kill_storm,
    "async_v2": _async_v2,
    "review": review.review,
    "rebuild": _rebuild,
}
