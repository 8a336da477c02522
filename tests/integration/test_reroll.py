"""`remixd reroll`: a done input sent again on purpose, with a new seed, beside its earlier results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, remixd, sidecars, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def _once(config: Path) -> None:
    make_service(config, "once", ENV).run()


def test_a_reroll_is_a_new_paid_job_with_new_names_beside_the_old(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    make_image(tmp_path / "inbox/mug.jpg")
    _once(config)
    first = json.loads((tmp_path / "outbox/mug.poster.1.json").read_text())
    first_image = (tmp_path / "outbox/mug.poster.1.png").read_bytes()

    # The same seed as the rule's: the very same request, which the duplicate check would have stopped.
    done = remixd("reroll", "-c", str(config), "--seed", "12345", "--yes", str(tmp_path / "done/mug.jpg"))
    shown = done.stdout
    assert done.returncode == 0, done.stderr
    assert "mug.jpg: poster (1 image(s), $0.08), seed 12345" in shown
    assert "total: 1 input(s) -> 1 image(s) -> $0.08" in shown
    assert (tmp_path / "inbox/mug.jpg").is_file() and not (tmp_path / "done/mug.jpg").exists()

    _once(config)

    assert len([r for r in sandbox.received if r.path == "/remix"]) == 2  # paid again, on purpose
    assert (tmp_path / "outbox/mug.poster.1.png").read_bytes() == first_image  # the earlier result is untouched
    documents = {document["image"]["file"]: document for document in sidecars(tmp_path / "outbox")}
    rerolled = documents[f"mug-{first['source']['sha256'][:8]}.poster.1.png"]
    assert rerolled["reroll"]["seed"] == 12345 and rerolled["api"]["request"] == first["api"]["request"]
    assert "reroll" not in documents["mug.poster.1.png"]
    assert (tmp_path / "done/mug.jpg").is_file()


def test_a_new_seed_from_a_sidecar_and_what_cannot_be_rerolled(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    make_image(tmp_path / "inbox/lamp.jpg")
    _once(config)

    refused = remixd("reroll", "-c", str(config), "--yes", str(tmp_path / "inbox/nothing.jpg"))
    assert refused.returncode == 1 and "not a done input" in refused.stderr
    sidecar = str(tmp_path / "outbox/lamp.poster.1.json")
    assert remixd("reroll", "-c", str(config), "--new-seed", "--yes", sidecar).returncode == 0
    _once(config)

    seeds = sorted(document["api"]["request"]["seed"] for document in sidecars(tmp_path / "outbox"))
    assert len(seeds) == 2 and 12345 in seeds and len(set(seeds)) == 2  # a random seed; 1 in 2^31 to clash
    assert remixd("reroll", "-c", str(config), "--yes", sidecar).returncode == 0  # again: its latest done input


def test_without_a_terminal_the_cost_is_shown_and_nothing_is_sent_without_yes(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    make_image(tmp_path / "inbox/cup.jpg")
    _once(config)

    shown = remixd("reroll", "-c", str(config), str(tmp_path / "done/cup.jpg"), stdin=subprocess.DEVNULL)

    assert shown.returncode == 1
    assert "$0.08" in shown.stdout and "pass --yes" in shown.stderr
    assert (tmp_path / "done/cup.jpg").is_file() and not (tmp_path / "inbox/cup.jpg").exists()
