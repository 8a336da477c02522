"""A journal deleted between two runs: the second run learns from the sidecars and pays for nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, remixd, wait_for, write_config

pytestmark = pytest.mark.e2e


def finished(daemon: Daemon) -> list[dict[str, object]]:
    return [event for event in daemon.events() if event.get("event") == "remixd.job.finished"]


def test_kept_inputs_are_neither_bought_nor_claimed_again_after_the_journal_is_deleted(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    names = ["one.jpg", "two.jpg", "three.jpg"]
    for index, name in enumerate(names):
        make_image(tmp_path / "inbox" / name, color=(index * 60, 10, 10))
    first = Daemon(config, {"IDEOGRAM_API_KEY": TEST_KEY})
    wait_for(lambda: len(finished(first)) == len(names), timeout=60, message="the first run's results")
    assert first.stop() == 0
    billed = len([request for request in sandbox.received if request.billed_usd > 0])
    assert billed == len(names)
    for path in (tmp_path / "state").glob("journal.sqlite3*"):
        path.unlink()

    second = remixd("once", "-c", str(config), "--log-format", "json", env={"IDEOGRAM_API_KEY": TEST_KEY})
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stderr.splitlines() if line.startswith("{")]
    decided = {event["relpath"]: event["status"] for event in events if event.get("event") == "remixd.job.finished"}
    assert decided == {}  # the kept ones, unchanged, are not even claimed again (with the journal, neither)
    assert "0 done, 0 duplicates, 0 failed" in second.stderr
    [rebuilt] = [event for event in events if event.get("event") == "remixd.recover.rebuilt"]
    assert (rebuilt["sidecars"], rebuilt["inputs"]) == (len(names), len(names))
    assert len([request for request in sandbox.received if request.billed_usd > 0]) == billed  # the API's ledger
    assert sorted(path.name for path in (tmp_path / "inbox").iterdir()) == sorted(names)
