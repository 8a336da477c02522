"""`remixd once` as a person runs it from a shell: what it prints and the status it exits with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, wait_for, write_config

pytestmark = pytest.mark.e2e


def once(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remixd", "once", "-c", str(config), "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_once_exits_1_and_says_why_when_an_inbox_was_missing_all_along(tmp_path: Path) -> None:
    mount = tmp_path / "nas/inbox"  # outside the config's folder: a mount that is not there, never created
    config = write_config(tmp_path / "conf", None, inbox={"path": str(mount)})
    result = once(config)
    assert result.returncode == 1, result.stderr
    assert f"remixd: inbox {mount}: inbox {mount} is missing or not a folder, so nothing was taken from it" in (
        result.stderr
    )
    assert not mount.exists()


def test_the_first_ctrl_c_says_a_second_one_stops_at_once(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    make_image(tmp_path / "inbox/slow.jpg")
    sandbox.set_faults(latency_s=60.0)
    process = subprocess.Popen(
        [sys.executable, "-m", "remixd", "once", "-c", str(config), "--log-format", "json"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IDEOGRAM_API_KEY": TEST_KEY},
    )
    try:
        wait_for(lambda: sandbox.in_flight >= 1, message="the request to be in flight")
        process.send_signal(signal.SIGINT)
        stderr = process.stderr
        assert stderr is not None
        wait_for(lambda: "press Ctrl-C again" in stderr.readline(), message="the first Ctrl-C's message")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, 1)  # well before the 60 s answer
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert (tmp_path / "inbox/slow.jpg").is_file()  # nothing lost: it waits for the next run
