"""The metrics server on its own: a scraper gone mid-request leaves no traceback in the daemon's journal."""

from __future__ import annotations

import pytest
import requests
from prometheus_client import CollectorRegistry

from remixd.daemon.metrics import MetricsServer
from tests.helpers import noting_errors, reset_mid_request


def test_a_scraper_that_resets_mid_request_leaves_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    dealt = noting_errors(monkeypatch)
    server = MetricsServer("127.0.0.1", 0, CollectorRegistry(), lambda: True, lambda: True)
    server.start()
    try:
        reset_mid_request(("127.0.0.1", server.port))
        assert dealt.wait(10)
        # and it goes on answering
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err
