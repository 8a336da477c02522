"""A stop while submissions are paused is not held for the grace: paused inputs are not in flight."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import wait_for, write_config
from tests.integration.test_faults import drop, tuned

GRACE_S = 600  # far beyond the join below: a drain that waits for the paused worker cannot pass


@pytest.mark.parametrize(
    ("extra", "environ", "paused"),
    [
        ({"budget": {"max_images_per_day": 1}}, None, "budget_pause"),
        ({}, {"IDEOGRAM_API_KEY": "a-revoked-key"}, "auth"),
    ],
    ids=["budget", "refused-key"],
)
def test_one_stop_while_a_worker_waits_at_a_pause_ends_at_once(
    tmp_path: Path, sandbox: SandboxServer, extra: dict[str, Any], environ: dict[str, str] | None, paused: str
) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, api={"max_in_flight_images": 1}, extra={"shutdown_grace_s": GRACE_S, **extra}
    )
    service = tuned(config, mode="run", environ=environ)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        drop(tmp_path, 2)
        pause = getattr(service.gates, paused)
        wait_for(lambda: pause.waiting >= 1, timeout=15, message="a worker waiting at the pause")
        service.request_stop()  # the first Ctrl-C only
        thread.join(timeout=10)
        assert not thread.is_alive()
    finally:
        service.request_stop()
        service.request_stop()
        thread.join(timeout=30)
    assert any(path.is_file() for path in (tmp_path / "inbox").iterdir())  # kept for the next run
