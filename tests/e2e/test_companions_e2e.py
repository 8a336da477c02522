"""Companions with `remixd run` as a subprocess: written the ways people and their tools write them."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, Daemon, image_bytes, wait_for, write_config

pytestmark = pytest.mark.e2e

RULE = {**POSTER, "request": {**POSTER["request"], "prompt": "{text}, as a poster of {stem}"}}


def test_companions_written_by_an_editor_and_by_a_script_go_with_their_image(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    inbox = {"settle_s": 0.3, "companions": "optional", "companion_wait_s": 3.0}
    config = write_config(tmp_path, sandbox.base_url, inbox=inbox, rules=[RULE])
    daemon = Daemon(config, {"IDEOGRAM_API_KEY": TEST_KEY})
    daemon.wait_started()
    inbox_dir = tmp_path / "inbox"
    images = {
        stem: image_bytes(color=(index * 70, 120, 30)) for index, stem in enumerate(["edited", "before", "after"])
    }
    try:
        # An editor saves under a temporary dot-name, then renames it over the companion's name.
        (inbox_dir / "edited.jpg").write_bytes(images["edited"])
        for name, text in (("edited.txt", "a lamp in the fog"), ("edited.yml", "seed: 42\n")):
            temporary = inbox_dir / f".{name}.swp"
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(inbox_dir / name)
        # A script that writes the prompt first, then the image.
        (inbox_dir / "before.txt").write_text("a bridge at dawn\n", encoding="utf-8")
        (inbox_dir / "before.jpg").write_bytes(images["before"])
        # A script that writes the image first and the prompt once the image is complete.
        (inbox_dir / "after.jpg").write_bytes(images["after"])
        time.sleep(0.5)  # the scenario itself: the image has settled when its companion comes
        (inbox_dir / "after.txt").write_text("a ship in a bottle", encoding="utf-8")

        for stem in images:
            wait_for((tmp_path / f"outbox/{stem}.poster.1.json").exists, message=stem)
        wait_for(lambda: not any(inbox_dir.iterdir()), message="the inbox to empty")
    finally:
        assert daemon.stop() == 0

    sent = {request.sha256: request.fields for request in sandbox.received if request.path == "/remix"}
    assert len(sent) == len([r for r in sandbox.received if r.path == "/remix"]) == 3  # each image once
    wanted = {
        "edited": ("a lamp in the fog, as a poster of edited", 42),
        "before": ("a bridge at dawn, as a poster of before", 12345),
        "after": ("a ship in a bottle, as a poster of after", 12345),
    }
    for stem, (prompt, seed) in wanted.items():
        fields = sent[hashlib.sha256(images[stem]).hexdigest()]
        assert (fields["prompt"], fields["seed"]) == (prompt, seed), stem
        sidecar = json.loads((tmp_path / f"outbox/{stem}.poster.1.json").read_text(encoding="utf-8"))
        assert (sidecar["api"]["request"]["prompt"], sidecar["api"]["request"]["seed"]) == (prompt, seed)
    done = sorted(path.name for path in (tmp_path / "done").iterdir())
    assert done == ["after.jpg", "after.txt", "before.jpg", "before.txt", "edited.jpg", "edited.txt", "edited.yml"]
    assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())
