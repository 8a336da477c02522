"""A claimed input renamed in its inbox before a worker got to it is processed once, under its new name, and
leaves no `vanished` row behind."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from remixd.journal.sqlite import SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, wait_for, write_config


def test_an_input_renamed_while_it_waits_in_the_queue_is_not_reported_vanished(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"max_in_flight_images": 1}, inbox={"after": "keep"})
    service = make_service(config, "run", {"IDEOGRAM_API_KEY": TEST_KEY})
    sandbox.set_faults(latency_s=0.3)  # one at a time: the last inputs wait in the queue, claimed and unread
    inbox = tmp_path / "inbox"
    thread = threading.Thread(target=service.run, name="test-service")
    with structlog.testing.capture_logs() as logs:
        thread.start()
        try:
            wait_for(service.ready.is_set, message="the service to start")
            for index in range(8):
                make_image(inbox / f"f{index}.jpg", color=(index * 30, 10, 10))
            wait_for(lambda: sandbox.received, message="the first request")
            (inbox / "f7.jpg").rename(inbox / "g7.jpg")
            wait_for(lambda: service.outcomes["done"] == 8, timeout=60, message="every input, f7 as g7")
        finally:
            service.request_stop()
            thread.join(timeout=30)
    assert service.outcomes["vanished"] == 0 and service.outcomes["renamed"] == 1
    [renamed] = [entry for entry in logs if entry["event"] == "remixd.input.renamed"]
    assert (renamed["relpath"], renamed["renamed_to"]) == ("f7.jpg", "g7.jpg")
    assert len(sandbox.received) == 8  # f7 paid for once, as g7
    journal = SqliteJournal(tmp_path / "state/journal.sqlite3")
    try:
        assert journal.counts()["vanished"] == 0 and journal.counts()["done"] == 8
    finally:
        journal.close()
