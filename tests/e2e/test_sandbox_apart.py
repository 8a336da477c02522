"""The sandbox never stands in for real work: tried there first, a photo is still sent (and paid) for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, remixd, sidecars, write_config

pytestmark = pytest.mark.e2e


def once(config: Path) -> None:
    result = remixd("once", "-c", str(config), "--log-format", "json", env={"IDEOGRAM_API_KEY": TEST_KEY})
    assert result.returncode == 0, result.stderr


def test_a_photo_tried_in_the_sandbox_is_sent_for_real_after_switching(tmp_path: Path, sandbox: SandboxServer) -> None:
    """`sandbox` here plays the real API, reached through base_url; api.sandbox: true is the built-in one."""
    make_image(tmp_path / "inbox/shop.jpg", color=(9, 99, 199))
    once(write_config(tmp_path, None, extra={"budget": {"max_images_per_day": 1}}))
    tried = sidecars(tmp_path / "outbox")
    assert [document["sandbox"] for document in tried] == [True]
    status = remixd("status", "-c", str(tmp_path / "remixd.yaml"), "--json")
    spent = json.loads(status.stdout)
    assert spent["spent_today"] == {"images": 0, "usd": 0.0, "unknown_outcome": 0}  # never counted against budget.*
    assert spent["sandbox_today"]["images"] == 1 and spent["sandbox_today"]["billed"] is False
    text = remixd("status", "-c", str(tmp_path / "remixd.yaml")).stdout
    assert "sandbox today: 1 images, not billed" in text

    (tmp_path / "done/shop.jpg").rename(tmp_path / "inbox/shop.jpg")  # the same photo, now for real
    once(write_config(tmp_path, sandbox.base_url, extra={"budget": {"max_images_per_day": 1}}))
    assert [r.path for r in sandbox.received] == ["/remix"]  # sent, not a "duplicate" of the placeholder
    real = [document for document in sidecars(tmp_path / "outbox") if not document["sandbox"]]
    assert len(real) == 1 and real[0]["image"] is not None
    spent = json.loads(remixd("status", "-c", str(tmp_path / "remixd.yaml"), "--json").stdout)
    assert spent["spent_today"]["images"] == 1 == sandbox.ledger.images


def test_sandbox_spend_never_pauses_for_the_budget(tmp_path: Path) -> None:
    for number in range(3):
        make_image(tmp_path / f"inbox/p{number}.jpg", color=(number * 50, 20, 20))
    once(write_config(tmp_path, None, extra={"budget": {"max_images_per_day": 1, "max_usd_per_day": 0.01}}))
    assert sorted(path.name for path in (tmp_path / "done").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg"]


def test_a_sandbox_error_file_says_sandbox(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox/notes.jpg").write_text("not a photo", encoding="utf-8")
    config = write_config(tmp_path, None)
    result = remixd("once", "-c", str(config), "--log-format", "json")
    assert result.returncode == 1, result.stderr
    error = json.loads((tmp_path / "failed/notes.jpg.error.json").read_text(encoding="utf-8"))
    assert error["sandbox"] is True
