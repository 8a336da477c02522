"""`remixd reroll`: a done input sent again on purpose, with a new seed, beside its earlier results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from remixd.review.pages import card
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


def test_a_kept_input_is_rerolled_where_it_is_once_and_only_once(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    make_image(tmp_path / "inbox/mug.jpg")
    _once(config)
    _once(config)  # kept and unchanged: not sent again
    assert len([r for r in sandbox.received if r.path == "/remix"]) == 1

    done = remixd("reroll", "-c", str(config), "--seed", "777", "--yes", str(tmp_path / "inbox/mug.jpg"))
    assert done.returncode == 0, done.stderr
    assert "mug.jpg: poster (1 image(s), $0.08), seed 777" in done.stdout
    assert f"rerolling mug.jpg with seed 777 (kept in {tmp_path / 'inbox'})" in done.stdout
    _once(config)
    _once(config)  # the reroll let one claim through, not every one after it

    assert len([r for r in sandbox.received if r.path == "/remix"]) == 2
    rerolled = [document for document in sidecars(tmp_path / "outbox") if "reroll" in document]
    assert [document["reroll"]["seed"] for document in rerolled] == [777]
    assert (tmp_path / "outbox" / rerolled[0]["image"]["file"]).is_file()
    assert (tmp_path / "inbox/mug.jpg").is_file()  # still where it was kept


def test_the_cost_shown_before_a_reroll_counts_what_its_companions_ask_for(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep", "companions": "optional"})
    make_image(tmp_path / "inbox/mug.jpg")
    (tmp_path / "inbox/mug.yaml").write_text("num_images: 3\n", encoding="utf-8")
    _once(config)

    done = remixd("reroll", "-c", str(config), "--seed", "777", "--yes", str(tmp_path / "inbox/mug.jpg"))
    assert done.returncode == 0, done.stderr
    assert "mug.jpg: poster (3 image(s), $0.24), seed 777" in done.stdout  # not the rule's one image
    _once(config)
    posts = [r for r in sandbox.received if r.path == "/remix"]
    assert len(posts) == 2 and posts[1].fields["num_images"] == 3


def test_a_moved_input_goes_back_with_its_companions_and_is_sent_as_before(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional"})
    make_image(tmp_path / "inbox/mug.jpg")
    (tmp_path / "inbox/mug.txt").write_text("a blue mug on oak", encoding="utf-8")
    (tmp_path / "inbox/mug.yaml").write_text("num_images: 2\n", encoding="utf-8")
    _once(config)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["mug.jpg", "mug.txt", "mug.yaml"]

    done = remixd("reroll", "-c", str(config), "--seed", "777", "--yes", str(tmp_path / "done/mug.jpg"))
    assert done.returncode == 0, done.stderr
    assert "mug.jpg: poster (2 image(s), $0.16), seed 777" in done.stdout
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["mug.jpg", "mug.txt", "mug.yaml"]
    _once(config)
    first, again = [r.fields for r in sandbox.received if r.path == "/remix"]
    assert again["prompt"] == first["prompt"] and again["num_images"] == first["num_images"] == 2
    assert again["seed"] == 777


def test_an_input_its_inbox_deleted_cannot_be_rerolled_and_says_why(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "delete"})
    make_image(tmp_path / "inbox/mug.jpg")
    _once(config)
    assert not (tmp_path / "inbox/mug.jpg").exists()

    for named in (tmp_path / "inbox/mug.jpg", tmp_path / "outbox/mug.poster.1.json"):
        refused = remixd("reroll", "-c", str(config), "--yes", str(named))
        assert refused.returncode == 1
        assert f"remixd: {named}: its inbox deletes inputs once done (after: delete)" in refused.stderr
        assert "nothing was sent" in refused.stderr
    assert len([r for r in sandbox.received if r.path == "/remix"]) == 1


def test_the_review_pages_reroll_sends_a_kept_input_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    make_image(tmp_path / "inbox/cup.jpg")
    _once(config)
    service = make_service(config, "once", ENV)  # as the review page calls it: the daemon's views
    try:
        record = service.journal.done_input(at=(str(tmp_path / "inbox"), "cup.jpg"))
        assert record is not None and card(record, has_source=True).can_reroll
        lines = service.views.reroll(record.id)
    finally:
        service.parts.close()
    assert len(lines) == 1 and lines[0].startswith("rerolling cup.jpg with seed "), lines
    _once(config)
    assert len([r for r in sandbox.received if r.path == "/remix"]) == 2
