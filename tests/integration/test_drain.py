"""A graceful stop gives what is in flight `shutdown_grace_s` to finish, measured on the daemon's clock, then stops
starting anything (README, "Stopping")."""

from __future__ import annotations

import threading
from pathlib import Path

from remixd.sandbox.server import SandboxServer
from tests.helpers import FakeClock, wait_for, write_config
from tests.integration.test_faults import drop, tuned

GRACE_S = 600.0  # ten minutes of the fake clock; a drain that reads real time could not end within the test


def test_the_drain_ends_at_its_deadline_while_a_request_is_still_held(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, api={"max_in_flight_images": 1}, extra={"shutdown_grace_s": GRACE_S}
    )
    drop(tmp_path, 1)
    clock = FakeClock()  # without idle_s: once the stop is asked for, the drain's own waits move it at once
    service = tuned(config, clock=clock)
    sandbox.hold()  # the request stays in flight until the end of the test: only the deadline can end the drain
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(lambda: sandbox.in_flight, message="the request to be sent")
        asked = clock.monotonic()
        service.request_stop()  # the first Ctrl-C only: drain, do not cut short
        wait_for(service.stop.is_set, timeout=15, message="the drain to end at its deadline")
        assert clock.monotonic() - asked >= GRACE_S
        assert service.pool.busy == 1  # the held request is still working: the deadline ended the drain
    finally:
        sandbox.release()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sandbox.ledger.requests == 1  # answered after the drain, and never sent again
