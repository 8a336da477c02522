"""`{caption}` through the whole pipeline: the image's own caption becomes the prompt that is sent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, sidecars, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_the_caption_is_sent_and_an_image_without_one_fails_before_paying(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    captioned = {**POSTER, "request": {**POSTER["request"], "prompt": "{caption}"}}
    config = write_config(tmp_path, sandbox.base_url, rules=[captioned])
    mug = make_image(tmp_path / "inbox/mug.jpg")
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description=A red mug", str(mug)], check=True)
    make_image(tmp_path / "inbox/bare.jpg", color=(5, 5, 5))

    make_service(config, "once", ENV).run()

    [document] = sidecars(tmp_path / "outbox")
    assert document["api"]["request"]["prompt"] == "A red mug"
    error = json.loads((tmp_path / "failed/bare.jpg.error.json").read_text())
    assert "gives an empty prompt" in error["error"]["message"] and "caption" in error["error"]["hint"]
    assert len(sandbox.received) == 1
