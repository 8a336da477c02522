"""`remixd once`'s progress bar against the sandbox: the spend it shows is of the requests sent, and says so."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.daemon.parts import build_parts
from remixd.daemon.progress import ProgressBar
from remixd.daemon.service import Service
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, write_config

PRICE_USD = 0.08  # the poster rule's V_2, per image


def test_with_one_image_in_flight_the_bar_counts_the_requests_sent_not_the_inputs_finished(tmp_path: Path) -> None:
    # The sandbox refuses a second request while one is in progress (429 inflight_limit): any overlap shows.
    options = SandboxOptions(api_keys=frozenset({TEST_KEY}), inflight_limit=1, latency_s=0.05)
    with SandboxServer(options) as server:
        config = write_config(tmp_path, server.base_url, api={"max_in_flight_images": 1})
        for number in range(3):
            make_image(tmp_path / f"inbox/in-{number}.jpg", color=(number * 60, 90, 200))
        stream = io.StringIO()
        seen: list[tuple[int, int]] = []  # (inputs finished, requests the sandbox had answered) at each draw

        def spent() -> tuple[int, float]:
            now = service.gates.budget.spent_today()
            return now.images, now.usd

        bar = ProgressBar(stream, spent, Clock())

        def draw(outcomes: Counter[str], outstanding: int) -> None:
            seen.append((sum(outcomes.values()), len(server.received)))
            bar(outcomes, outstanding)

        service = Service(build_parts(load_config(config), environ={"IDEOGRAM_API_KEY": TEST_KEY}), mode="once",
                          progress=draw)  # fmt: skip
        service.run()

        assert [request.status for request in server.received] == [200, 200, 200]  # never two at once
    lines = [line for line in re.split(r"\r\x1b\[K", stream.getvalue()) if line]
    assert len(lines) == len(seen) == 3
    for line, (finished, answered) in zip(lines, seen, strict=True):
        shown = re.search(r"  sent (\d+) images? ", line)
        assert shown is not None, line
        sent = int(shown.group(1))
        # Results are written outside the in-flight place, so more may be sent (and paid) than is finished;
        # but never more than the one request in flight beyond those the sandbox has answered.
        assert finished <= sent <= answered + 1, line
        assert f"  sent {sent} image{'s' * (sent != 1)} ${sent * PRICE_USD:.2f}  " in line, line
    assert lines[-1].startswith(f"[{'#' * 30}] 3/3  done 3  failed 0  vanished 0  sent 3 images $0.24  eta -")
