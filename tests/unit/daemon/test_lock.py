"""One process per state_dir: the flock is exclusive, names its holder, and dies with its process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remixd.daemon.lock import StateLock
from remixd.errors import AlreadyRunning, StateDirUnusable
from tests.helpers import read_only


def test_a_second_lock_on_the_same_state_dir_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    with StateLock(tmp_path / "state"), pytest.raises(AlreadyRunning) as refused:
        StateLock(tmp_path / "state").acquire()
    assert f"remixd is already running (pid {os.getpid()}) on {tmp_path / 'state'}" in str(refused.value)
    with StateLock(tmp_path / "state"):  # released: the next one gets it
        pass


def test_the_lock_dies_with_a_killed_process(tmp_path: Path) -> None:
    script = (
        "import time; from pathlib import Path; from remixd.daemon.lock import StateLock;"
        f" StateLock(Path({str(tmp_path)!r})).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(AlreadyRunning, match=f"pid {holder.pid}"):
                StateLock(tmp_path).acquire()
        finally:
            holder.kill()
            holder.wait(timeout=30)
    with StateLock(tmp_path):
        pass


def test_a_read_only_state_dir_is_reported_as_read_only(tmp_path: Path) -> None:
    with (
        read_only(tmp_path),
        pytest.raises(StateDirUnusable, match=r"is read-only \((Read-only file system|Permission denied)\)"),
    ):
        StateLock(tmp_path).acquire()
