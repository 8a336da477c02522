"""`remixd reroll` from another process, while `remixd run` goes on: a kept input is sent again, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, remixd, wait_for, write_config

pytestmark = pytest.mark.e2e


def test_a_kept_input_rerolled_beside_a_running_daemon_is_paid_once_more(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    daemon = Daemon(config, {"IDEOGRAM_API_KEY": TEST_KEY})
    daemon.wait_started()
    outbox = tmp_path / "outbox"
    try:
        make_image(tmp_path / "inbox/mug.jpg")
        wait_for(lambda: (outbox / "mug.poster.1.json").exists(), message="the first result")
        assert sandbox.ledger.requests == 1

        rerolled = remixd("reroll", "-c", str(config), "--seed", "4242", "--yes", str(tmp_path / "inbox/mug.jpg"))
        assert rerolled.returncode == 0, rerolled.stderr

        # rescan_s is 30 s and the kept file does not change: the touch in state_dir is what wakes the daemon.
        sidecar = wait_for(
            lambda: next((path for path in outbox.glob("mug-*.json")), None), timeout=20, message="the reroll"
        )
    finally:
        assert daemon.stop() == 0

    document = json.loads(sidecar.read_text(encoding="utf-8"))
    assert document["reroll"]["seed"] == 4242 and document["api"]["request"]["seed"] == 4242
    assert (outbox / document["image"]["file"]).is_file()
    assert sandbox.ledger.requests == 2  # exactly one more paid request
    assert [r.fields.get("seed") for r in sandbox.received if r.path == "/remix"] == [12345, 4242]
    assert (tmp_path / "inbox/mug.jpg").is_file()
