"""`remixd once` on a terminal, read from a pseudo-terminal as a person's shell would show it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, write_config

pytestmark = pytest.mark.e2e

COLOURS = re.compile(r"\x1b\[[0-9;]*m")
BAR = re.compile(r"^\[[#.]{30}\] \d+/\d+ ")


def on_a_terminal(*args: str, timeout_s: float = 120.0) -> tuple[int, str]:
    """Run remixd with a pseudo-terminal as stdin, stdout and stderr; its exit status and all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "remixd", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "IDEOGRAM_API_KEY": TEST_KEY},
    )
    os.close(follower)
    written = b""
    ends = time.monotonic() + timeout_s
    try:
        while time.monotonic() < ends:
            readable, _, _ = select.select([leader], [], [], 1.0)
            if not readable:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every end of the terminal is closed, the process is gone
                break
            if not chunk:
                break
            written += chunk
        return process.wait(timeout=30), written.decode("utf-8", "replace")
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()


def shown(written: str) -> list[str]:
    """The lines as the terminal leaves them: a carriage return (with erase-line) starts the line again. (The
    terminal turns each newline into CR LF.)"""
    lines = written.replace("\r\n", "\n").split("\n")
    return [COLOURS.sub("", line.replace("\x1b[K", "").split("\r")[-1]) for line in lines]


def test_log_lines_are_above_the_bar_and_the_bar_shows_spend_and_an_eta(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"max_in_flight_images": 1})
    for number in range(3):
        make_image(tmp_path / f"inbox/in-{number}.jpg", color=(number * 60, 90, 200))
    status, written = on_a_terminal("once", "-c", str(config))
    assert status == 0, written
    lines = [line for line in shown(written) if line.strip()]
    logs = [line for line in lines if "remixd." in line]
    assert logs and all(not BAR.match(line) for line in logs), lines  # no log line glued to the bar
    bars = [line for line in lines if BAR.match(line)]
    assert bars and bars[-1].startswith(f"[{'#' * 30}] 3/3  done 3  failed 0  vanished 0  sent 3 images $0.24"), lines
    assert " eta " in bars[-1]
    assert lines[-1] == "3 done, 0 duplicates, 0 failed"
