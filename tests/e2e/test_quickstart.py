"""README's first command as a new user runs it: the example config, untouched, in a fresh folder."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.rules import match
from tests.helpers import REPO, Daemon, make_image, wait_for

pytestmark = pytest.mark.e2e

# Every format README's "Odd and hostile inputs" says remixd sends or converts, by the names people's files have.
CONVERTED = ["jpg", "JPEG", "png", "webp", "heic", "HEIF", "gif", "tif", "tiff", "avif", "bmp"]


@pytest.mark.parametrize("extension", CONVERTED)
def test_the_examples_catch_all_rule_takes_every_format_remixd_converts(extension: str) -> None:
    config = load_config(REPO / "config.example.yaml")
    assert [rule.name for rule in match(f"holiday/photo.{extension}", config.rules)] == ["poster"]


def test_the_quick_start_creates_its_inbox_and_starts_without_an_error(tmp_path: Path) -> None:
    config = tmp_path / "config.example.yaml"
    example = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    assert "listen: 127.0.0.1:8765" in example  # the quick start shows the review page
    # Only the page's port changes: suites running side by side on one machine would all want 8765.
    config.write_text(example.replace("listen: 127.0.0.1:8765", "listen: 127.0.0.1:0"), encoding="utf-8")
    daemon = Daemon(config, {})
    daemon.wait_started()
    assert (tmp_path / "inbox").is_dir()
    assert [event["level"] for event in daemon.events() if event["level"] in ("warning", "error")] == []
    make_image(tmp_path / "inbox/photo.gif")  # a converted format, through the catch-all rule
    wait_for(lambda: (tmp_path / "outbox/photo.poster.1.json").exists(), message="the GIF's result")
    page = next(str(event["url"]) for event in daemon.events() if event["event"] == "remixd.ui.listening")
    with urllib.request.urlopen(page + "?q=photo", timeout=10) as answer:  # noqa: S310 - the loopback page
        assert "photo.gif" in answer.read().decode("utf-8")
    assert daemon.stop(signal.SIGINT) == 0
    sidecar = json.loads((tmp_path / "outbox/photo.poster.1.json").read_text(encoding="utf-8"))
    assert f"{sidecar['image']['width']}x{sidecar['image']['height']}" == sidecar["result"]["resolution"]
