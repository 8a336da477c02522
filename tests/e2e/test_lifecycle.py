"""The daemon's lifecycle as a subprocess: drain on SIGTERM, exit at once on a second, reload on SIGHUP."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, wait_for, write_config

pytestmark = pytest.mark.e2e
ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_sigterm_lets_in_flight_work_finish(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    sandbox.set_faults(latency_s=1.0)
    make_image(tmp_path / "inbox/slow.jpg")
    wait_for(lambda: sandbox.in_flight >= 1, message="the request to be in flight")

    assert daemon.stop(signal.SIGTERM) == 0

    assert (tmp_path / "done/slow.jpg").is_file()
    assert (tmp_path / "outbox/slow.poster.1.json").is_file()


def test_second_signal_exits_at_once_and_the_restart_finishes_the_job(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    sandbox.set_faults(latency_s=60.0)
    make_image(tmp_path / "inbox/stuck.jpg")
    wait_for(lambda: sandbox.in_flight >= 1, message="the request to be in flight")

    daemon.process.send_signal(signal.SIGTERM)
    wait_for(lambda: any(e.get("event") == "remixd.stopping" for e in daemon.events()), message="draining")
    assert daemon.stop(signal.SIGTERM) == 0  # does not wait the 60 s out

    assert (tmp_path / "inbox/stuck.jpg").is_file()  # nothing lost: still in the inbox, still in the journal
    sandbox.set_faults(latency_s=0.0)
    again = Daemon(config, ENV)
    again.wait_started()
    wait_for(lambda: (tmp_path / "done/stuck.jpg").is_file(), message="the resumed input")
    assert again.stop() == 0
    assert any(e.get("event") == "remixd.recover.resumed" for e in again.events())


def test_sighup_applies_new_inboxes_and_rules_without_a_restart(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    document = yaml.safe_load(config.read_text())
    document["inboxes"].append({**document["inboxes"][0], "path": "./second", "output": "./second-out"})
    document["rules"][0]["request"]["prompt"] = "reloaded {stem}"
    (tmp_path / "second").mkdir()
    config.write_text(yaml.safe_dump(document), encoding="utf-8")

    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: any(e.get("event") == "remixd.reload.done" for e in daemon.events()), message="the reload")
    make_image(tmp_path / "second/new.jpg")
    make_image(tmp_path / "inbox/old.jpg")
    wait_for(lambda: (tmp_path / "second-out/new.poster.1.json").is_file(), message="the new inbox's result")
    wait_for(lambda: (tmp_path / "outbox/old.poster.1.json").is_file(), message="the old inbox's result")
    assert daemon.stop() == 0
    prompts = {
        json.loads(p.read_text())["api"]["request"]["prompt"]
        for p in [tmp_path / "second-out/new.poster.1.json", tmp_path / "outbox/old.poster.1.json"]
    }
    assert prompts == {"reloaded new", "reloaded old"}


def test_an_invalid_reload_is_refused_and_the_old_config_keeps_running(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    good = config.read_text()
    config.write_text(good.replace("rules:", "rulez:"), encoding="utf-8")

    daemon.process.send_signal(signal.SIGHUP)
    refused = wait_for(
        lambda: [e for e in daemon.events() if e.get("event") == "remixd.reload.refused"], message="the refusal"
    )
    assert any("rulez" in str(e.get("problem")) for e in refused)
    make_image(tmp_path / "inbox/still.jpg")
    wait_for(lambda: (tmp_path / "done/still.jpg").is_file(), message="the input under the old config")
    assert daemon.stop() == 0


def test_a_missing_inbox_is_paused_and_resumes_when_it_appears(tmp_path: Path, sandbox: SandboxServer) -> None:
    # outside the config's folder, like a mount point (one inside it would be created at start)
    mount = tmp_path / "mnt/inbox"
    mount.parent.mkdir()
    config = write_config(tmp_path / "conf", sandbox.base_url, inbox={"rescan_s": 0.3, "path": str(mount)})
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    wait_for(lambda: any(e.get("event") == "remixd.inbox.paused" for e in daemon.events()), message="the pause")
    status_file = tmp_path / "conf/state/status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    assert not status or status["paused"]

    make_image(tmp_path / "staging/late.jpg").parent.rename(mount)  # mounted, with a file in it
    wait_for(lambda: (tmp_path / "conf/done/late.jpg").is_file(), message="the input of the resumed inbox")
    assert daemon.stop() == 0
    assert any(e.get("event") == "remixd.inbox.resumed" for e in daemon.events())
