"""Faults against `remixd run` as a subprocess, as an operator meets them: storms, a wrong key, a bad folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, Daemon, make_image, wait_for, write_config

pytestmark = pytest.mark.e2e


def status(config: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "remixd", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_storm_of_faults_ends_with_every_input_done_or_failed_with_its_reason(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    rules = [
        {"name": "risky", "match": ["risky*"], "request": {"prompt": "FORBIDDEN_422 {stem}"}},
        {"name": "odd", "match": ["odd*"], "request": {"prompt": "UNSAFE_RESULT {stem}"}},
        POSTER,
    ]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    daemon = Daemon(config, {"IDEOGRAM_API_KEY": TEST_KEY})
    daemon.wait_started()
    sandbox.set_faults(rate_limit_next=4, fail_before_next=2, truncate_downloads_next=2, reset_after_next=1)
    names = [f"plain{index}.jpg" for index in range(6)] + ["risky.jpg", "odd.jpg"]
    for index, name in enumerate(names):
        make_image(tmp_path / "inbox" / name, color=(index * 30, 5, 5))

    wait_for(lambda: not any((tmp_path / "inbox").iterdir()), timeout=90, message="every input to finish")
    assert daemon.stop() == 0

    failed = {path.name: json.loads(path.read_text()) for path in (tmp_path / "failed").glob("*.error.json")}
    done = sorted(path.name for path in (tmp_path / "done").iterdir())
    assert sorted(done + [name.removesuffix(".error.json") for name in failed]) == sorted(names)
    assert failed["risky.jpg.error.json"]["error"]["http_status"] == 422
    unknown = [doc for name, doc in failed.items() if name != "risky.jpg.error.json"]
    assert len(unknown) == 1  # the one reset after the work: not resent behind the user's back
    assert "retry" in unknown[0]["error"]["hint"]
    if "odd.jpg" in done:  # unless the reset fell on it
        assert json.loads((tmp_path / "outbox/odd.odd.1.json").read_text())["image"] is None
    for name in done:
        if name != "odd.jpg":
            assert (tmp_path / "outbox" / f"{Path(name).stem}.poster.1.png").is_file()
    billed = [r for r in sandbox.received if r.billed_usd > 0]
    assert len(billed) == len(names) - 1  # each billed once; the 422 was not billed


def test_a_wrong_key_pauses_and_a_reload_with_the_right_key_resumes(tmp_path: Path, sandbox: SandboxServer) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("wrong-key-0123456789\n")
    key_file.chmod(0o600)
    config = write_config(tmp_path, sandbox.base_url, api={"api_key_file": str(key_file)})
    daemon = Daemon(config, {})
    daemon.wait_started()
    make_image(tmp_path / "inbox/waits.jpg")
    wait_for(lambda: "PAUSED" in status(config), message="the pause in remixd status")
    paused = [e for e in daemon.events() if e.get("event") == "remixd.api.paused"]
    assert len(paused) == 1  # said once, not once per file or per probe
    assert (tmp_path / "inbox/waits.jpg").is_file()

    key_file.write_text(TEST_KEY + "\n")
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: (tmp_path / "done/waits.jpg").is_file(), message="the input after the reload")
    assert daemon.stop() == 0
    assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())
    log_text = daemon.log_path.read_text()
    assert "wrong-key-0123456789" not in log_text and TEST_KEY not in log_text


def test_an_unwritable_output_folder_holds_the_input_until_it_is_fixed(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    (tmp_path / "outbox").write_text("a file where the output folder should be")
    daemon = Daemon(config, {"IDEOGRAM_API_KEY": TEST_KEY})
    daemon.wait_started()
    make_image(tmp_path / "inbox/held.jpg")
    blocked = wait_for(
        lambda: [e for e in daemon.events() if e.get("event") == "remixd.output.blocked"], message="the blocked output"
    )
    assert "outbox" in str(blocked[0].get("hint", "")) + str(blocked[0].get("error", ""))
    assert (tmp_path / "inbox/held.jpg").is_file()  # untouched while the results cannot be written

    (tmp_path / "outbox").unlink()
    wait_for(lambda: (tmp_path / "done/held.jpg").is_file(), timeout=60, message="the input once fixed")
    assert daemon.stop() == 0
    assert (tmp_path / "outbox/held.poster.1.png").is_file()
    assert len(sandbox.received) == 1  # paid once, written when the folder came back
