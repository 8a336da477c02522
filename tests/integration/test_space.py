"""A nearly full state fs pauses submissions, says so in status.json and /metrics, and resumes by itself."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from remixd.daemon.space import MB
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, FakeFs, make_image, make_service, wait_for, write_config
from tests.integration.test_metrics import free_port


def status_json(tmp_path: Path) -> dict[str, object]:
    try:
        document = json.loads((tmp_path / "state/status.json").read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def gauge(base: str, name: str) -> float | None:
    for line in requests.get(base + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_submissions_pause_before_the_state_fs_is_full_and_resume_when_space_returns(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    port = free_port()
    config = write_config(
        tmp_path, sandbox.base_url, extra={"metrics": {"listen": f"127.0.0.1:{port}"}, "journal": {"min_free_mb": 64}}
    )
    fs = FakeFs(10 * MB)
    service = make_service(config, "run", {"IDEOGRAM_API_KEY": TEST_KEY}, statvfs=fs)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(service.ready.is_set, message="the service to start")
        make_image(tmp_path / "inbox/waits.jpg")
        wait_for(lambda: service.gates.space.waiting == 1, message="the input to wait at the pause")
        wait_for(lambda: status_json(tmp_path).get("paused"), timeout=15, message="the pause in status.json")
        document = status_json(tmp_path)
        assert document["state_free_bytes"] == 10 * MB
        paused = document["paused"]
        assert isinstance(paused, list)
        [reason] = paused
        assert "10 MB free" in reason and "journal.min_free_mb (64 MB)" in reason
        assert gauge(base, "remixd_state_free_bytes") == 10 * MB
        assert gauge(base, "remixd_paused") == 1
        assert sandbox.ledger.requests == 0  # nothing sent while the journal might not take the answer

        fs.free = 500 * MB
        wait_for(lambda: (tmp_path / "done/waits.jpg").is_file(), timeout=20, message="the input once space returned")
        wait_for(lambda: status_json(tmp_path).get("paused") == [], timeout=15, message="the pause lifted")
        assert gauge(base, "remixd_state_free_bytes") == 500 * MB
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert sandbox.ledger.requests == 1
