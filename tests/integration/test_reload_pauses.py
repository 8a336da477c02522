"""A reload re-decides every pause; a key fixed where the config points is noticed without one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog
import yaml

from remixd.daemon.service import Service
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, wait_for, write_config
from tests.integration.test_faults import drop, running, tuned

__all__ = ["running"]  # the fixture, used by name


def test_raising_the_budget_and_reloading_lifts_the_budget_pause_at_once(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, extra={"budget": {"max_images_per_day": 1}}, api={"max_in_flight_images": 1}
    )
    service = running(tuned(config, mode="run"))
    drop(tmp_path, 2)
    wait_for(lambda: service.gates.budget_pause.is_paused, message="the budget pause")
    wait_for(lambda: len(list((tmp_path / "done").iterdir())) == 1, message="the input within budget")
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["budget"]["max_images_per_day"] = 5
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    service.request_reload()  # SIGHUP
    wait_for(lambda: len(list((tmp_path / "done").iterdir())) == 2, timeout=15, message="the second input")
    assert len(sandbox.received) == 2 and not service.gates.budget_pause.is_paused


def test_a_reload_that_leaves_the_budget_spent_pauses_again(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, extra={"budget": {"max_images_per_day": 1}}, api={"max_in_flight_images": 1}
    )
    service = running(tuned(config, mode="run"))
    drop(tmp_path, 2)
    wait_for(lambda: len(list((tmp_path / "done").iterdir())) == 1, message="the input within budget")
    wait_for(lambda: service.gates.budget_pause.is_paused, message="the budget pause")
    with structlog.testing.capture_logs() as logs:
        service.request_reload()  # nothing raised: the next submission decides the same
        wait_for(lambda: any(e["event"] == "remixd.budget.paused" for e in logs), message="the pause again")
    assert len(sandbox.received) == 1


def test_a_fixed_key_file_is_read_again_when_a_probe_is_due(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("an-old-revoked-key", encoding="utf-8")
    key_file.chmod(0o600)
    config = write_config(tmp_path, sandbox.base_url, api={"api_key_file": str(key_file)})
    with structlog.testing.capture_logs() as logs:
        service = running(tuned(config, mode="run", environ={}))
        drop(tmp_path, 1)
        wait_for(lambda: service.gates.auth.is_paused, message="the auth pause")
        paused = next(e for e in logs if e["event"] == "remixd.api.paused")
        assert "systemctl reload remixd" in paused["hint"] and "next probe" in paused["hint"]
        key_file.write_text(TEST_KEY, encoding="utf-8")  # fixed in place: no reload, no restart

        def done() -> bool:
            service.intake.wake()  # the loop probes the key between steps
            return (tmp_path / "done/in-00.jpg").is_file()

        wait_for(done, timeout=30, message="the input after the key file was fixed")
    assert any(e["event"] == "remixd.api.key_reread" for e in logs)
