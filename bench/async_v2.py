"""Figure 8: an async v2 route (ideogram-4, api.async: true), 300 inputs, 0.5 s generations, limit 10.

Three numbers: throughput (the ideal makespan over the measured one), how long after a generation ends at the
API its first download begins (the sandbox logs both moments), and polls per image. A note says where the time
beyond the ideal went (`idle_parts`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

import yaml

from bench import inputs, procs
from bench.figures import Row, Sizes, _fresh, _percentile

V2_REQUEST = {"model": "ideogram-4", "prompt": "A serene tropical beach, {stem}", "rendering_speed": "turbo"}


def async_v2(work: Path, sizes: Sizes, note: Callable[[str], None]) -> list[Row]:
    root = _fresh(work / "async_v2")
    count, latency, limit = sizes.throughput_inputs, sizes.throughput_latency_s, sizes.inflight_limit
    originals = inputs.write_files(
        root / "originals", [(f"photo-{n:05d}.jpg", inputs.small_jpeg(n)) for n in range(count)]
    )
    with procs.Sandbox(root / "sandbox", latency_s=latency, inflight_limit=limit) as sandbox:
        config = inputs.write_config(root, sandbox.base_url, max_in_flight=limit)
        document = yaml.safe_load(config.read_text(encoding="utf-8"))
        document["api"].update({"async": True, "poll_interval_s": latency / 2})
        document["rules"][0]["request"] = V2_REQUEST
        config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        for path in originals:
            shutil.copy2(path, root / "inbox" / path.name)
        inputs.age(root / "inbox", 5.0)
        remixd = procs.Remixd("once", config, root)
        usage = remixd.wait(timeout=count * latency * 2 + 120)
        finished = remixd.finished_inputs()
        if usage.status != 0 or len(finished) != count:
            raise RuntimeError(
                f"bench: remixd once finished {len(finished)}/{count} (exit {usage.status}); see {remixd.log.path}"
            )
        arrivals = sandbox.arrivals()
        accepted = [procs.stamp(e) for e in sandbox.answered() if not e["dry_run"] and e["status"] == HTTPStatus.OK]
        last_done = max(procs.stamp(entry) for entry in finished)
        makespan = last_done - arrivals[0]
        delays = [e["since_completed_ms"] for e in sandbox.log.named("remixd.sandbox.generation.downloaded")]
        polls = len(sandbox.log.named("remixd.sandbox.poll"))
    ideal = count * latency / limit
    p50 = _percentile(delays, 0.5) if delays else float("nan")
    note(f"async v2: {makespan:.2f} s for {count} inputs, completion to download p50 {p50:.0f} ms, {polls} polls")
    if len(accepted) == count:
        start, between, tail = idle_parts(accepted, arrivals[0], last_done, latency, limit)
        note(
            f"async v2, the {makespan - ideal:.2f} s beyond the ideal: start-up {start:.3f} s (the first request to "
            f"every place taken), between generations {between:.3f} s ({between * limit / (count - limit) * 1000:.1f} "
            f"ms a place stood idle from a generation's end to the next acceptance on it), tail {tail:.3f} s (places "
            "idle after their last generation while the others finished)"
        )
    return [
        Row(
            "8 async v2 throughput: makespan (first request to last input done)",
            makespan,
            "s",
            ideal,
            f"ideal {count}x{latency}s/{limit}",
            ideal / makespan,
            "ideal/measured >= 0.95",
            ideal / makespan >= 0.95,
        ),
        Row(
            "8 async v2: generation completed at the API to its download starting, p50",
            p50,
            "ms",
            None,
            f"{len(delays)} downloads",
            None,
            "<= 250 ms",
            p50 <= 250,
        ),
        Row("8 async v2: polls per image", polls / count, "", None, f"{polls} polls", None, "info", None),
    ]


def idle_parts(
    accepted: list[float], first_request: float, last_done: float, latency_s: float, places: int
) -> tuple[float, float, float]:
    """Where the makespan beyond the ideal went, in seconds of makespan (place-seconds idle over the places),
    for requests of one image each: the three add up to makespan - ideal. Start-up: from the first request
    (the price quote) until each of the first `places` generations was accepted. Tail: from each of the last
    `places` generations' ends to the last input done. Between: the rest, a place idle from a generation's end
    (its acceptance + `latency_s`) to the next one accepted on it."""
    ordered = sorted(accepted)
    idle = places * (last_done - first_request) - len(ordered) * latency_s
    start = sum(moment - first_request for moment in ordered[:places])
    tail = sum(last_done - (moment + latency_s) for moment in ordered[-places:])
    return start / places, (idle - start - tail) / places, tail / places
