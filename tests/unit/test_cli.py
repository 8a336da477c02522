"""The CLI's commands in process, without a network: exit statuses and what each one leaves on disk."""

from __future__ import annotations

from pathlib import Path

from remixd.cli import ExitStatus
from tests.helpers import run_cli, write_config


def test_check_reports_every_problem_with_its_place_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "remixd.yaml"
    config.write_text("inboxes: []\nrules:\n  - name: x\n    request: {num_images: 99}\n", encoding="utf-8")
    status, output = run_cli("check", "-c", str(config))
    assert status == ExitStatus.CONFIG
    assert f"{config}:" in output and "num_images" in output


def test_check_api_on_a_sandbox_config_tries_no_key_and_touches_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)  # api.sandbox: true
    status, output = run_cli("check", "--api", "-c", str(config))
    assert status == ExitStatus.OK, output
    assert "there is no key to try" in output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inbox", "remixd.yaml"]  # no state, no sandbox


def test_status_before_any_run_says_so_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    status, output = run_cli("status", "-c", str(config))
    assert status == ExitStatus.OK
    assert "no journal yet" in output
    assert not (tmp_path / "state").exists()
