"""The promise under faults, as an operator meets them: a second remixd, a damaged or read-only journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixd.sandbox import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, remixd, wait_for, write_config

pytestmark = pytest.mark.e2e

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_a_second_remixd_on_one_state_dir_exits_3_and_pays_nothing(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    first = Daemon(config, ENV)
    first.wait_started()
    sandbox.hold()  # the first daemon's claims stay in flight while the others try to take them
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: sandbox.in_flight, message="the first daemon to send a.jpg")

    for command in ("run", "once"):
        second = remixd(command, "-c", str(config), env=ENV)
        assert second.returncode == 3, second.stderr
        assert f"remixd is already running (pid {first.process.pid}) on {tmp_path / 'state'}" in second.stderr
        assert "Traceback" not in second.stderr
    status = remixd("status", "-c", str(config), env=ENV)
    check = remixd("check", "-c", str(config), env=ENV)
    assert (status.returncode, check.returncode) == (0, 0), status.stderr + check.stderr

    sandbox.release()
    wait_for(lambda: not any((tmp_path / "inbox").iterdir()), message="a.jpg to finish")
    assert first.stop() == 0
    assert sandbox.ledger.requests == 1
