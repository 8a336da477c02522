"""metrics.listen: Prometheus text on /metrics, /healthz and /readyz, from a running service."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import requests

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, wait_for, write_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_health_and_readiness(tmp_path: Path, sandbox: SandboxServer) -> None:
    port = free_port()
    config = write_config(tmp_path, sandbox.base_url, extra={"metrics": {"listen": f"127.0.0.1:{port}"}})
    service = make_service(config, "run", {"IDEOGRAM_API_KEY": TEST_KEY})
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(base + "/readyz") == 200, message="/readyz")
        assert _get(base + "/healthz") == 200
        sandbox.set_faults(fail_before_next=1)  # one 503, retried
        make_image(tmp_path / "inbox/m.jpg")
        (tmp_path / "inbox/broken.jpg").write_bytes(b"nope")
        wait_for(lambda: service.outcomes["done"] == 1 and service.outcomes["failed"] == 1, message="both inputs")
        text = requests.get(base + "/metrics", timeout=5).text
    finally:
        service.request_stop()
        thread.join(timeout=30)
    inbox = str(tmp_path / "inbox")
    assert f'remixd_files_discovered_total{{inbox="{inbox}"}} 2.0' in text
    assert 'remixd_inputs_total{outcome="done"} 1.0' in text
    assert 'remixd_inputs_total{outcome="failed"} 1.0' in text
    assert 'remixd_api_latency_seconds_count{call="remix"} 2.0' in text  # the 503 and the success
    assert 'remixd_api_latency_seconds_count{call="download"} 1.0' in text
    assert 'remixd_api_errors_total{call="remix",status="503"} 1.0' in text
    assert "remixd_spend_usd_today 0.08" in text
    assert "remixd_queue_depth 0.0" in text
    assert "remixd_oldest_pending_age_seconds 0.0" in text


def _get(url: str) -> int | None:
    try:
        return requests.get(url, timeout=2).status_code
    except requests.ConnectionError:
        return None
