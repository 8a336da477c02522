"""`remixd once` as a person runs it from a shell: what it prints and the status it exits with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_config

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
