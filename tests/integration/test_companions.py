"""Companions through the whole pipeline against the sandbox: what they change is what is sent, and paid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.daemon.operator import retry_failed
from remixd.daemon.parts import build_parts
from remixd.daemon.plan import make_plan
from remixd.journal.records import Candidate
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, sidecars, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_a_txt_is_the_prompt_a_yaml_overrides_and_a_bad_one_fails_its_image_before_paying(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1})
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")
    (inbox / "mug.txt").write_text("A red mug on {a} table\n", encoding="utf-8")  # braces sent as written
    (inbox / "mug.yaml").write_text("seed: 7\nnum_images: 1\n", encoding="utf-8")
    make_image(inbox / "cup.jpg", color=(9, 9, 9))
    (inbox / "cup.yaml").write_text("seed: 1\nimage_weight: 500\n", encoding="utf-8")

    make_service(config, "once", ENV).run()

    [document] = sidecars(tmp_path / "outbox")
    assert document["api"]["request"]["prompt"] == "A red mug on {a} table"
    assert document["api"]["request"]["seed"] == 7
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["mug.jpg", "mug.txt", "mug.yaml"]
    error = json.loads((tmp_path / "failed/cup.jpg.error.json").read_text())
    assert f"{inbox / 'cup.yaml'}:2: image_weight:" in error["error"]["message"]
    assert error["error"]["hint"]  # the fix, from the config's own check
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == ["cup.jpg", "cup.jpg.error.json", "cup.yaml"]
    assert len(sandbox.received) == 1  # the bad companion cost nothing
    assert not any(inbox.iterdir())  # no companion was left behind, none was processed alone


def test_the_same_image_with_another_companion_is_not_a_duplicate(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "required", "after": "keep"})
    inbox = tmp_path / "inbox"
    for stem, text in (("a", "a lighthouse"), ("b", "a windmill")):
        make_image(inbox / f"{stem}.jpg")  # the same bytes twice
        (inbox / f"{stem}.txt").write_text(text, encoding="utf-8")
    make_image(inbox / "alone.jpg")  # required: never sent without one

    make_service(config, "once", ENV).run()

    prompts = sorted(document["api"]["request"]["prompt"] for document in sidecars(tmp_path / "outbox"))
    assert prompts == ["a lighthouse", "a windmill"]
    assert len(sandbox.received) == 2
    (inbox / "c.txt").write_text("a lighthouse", encoding="utf-8")
    make_image(inbox / "c.jpg")  # same image, same companion: a duplicate, not paid again
    make_service(config, "once", ENV).run()
    assert len(sandbox.received) == 2


def test_the_plan_shows_what_a_companion_changes_and_what_waits_for_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, inbox={"companions": "required"})
    make_image(tmp_path / "inbox/mug.jpg")
    (tmp_path / "inbox/mug.txt").write_text("a blue mug", encoding="utf-8")
    (tmp_path / "inbox/mug.json").write_text('{"num_images": 3}', encoding="utf-8")
    make_image(tmp_path / "inbox/alone.jpg")
    loaded = load_config(config)

    rows = make_plan(loaded, loaded.state_dir / JOURNAL_NAME, datetime.now(UTC).date()).to_dict()["rows"]

    by_path = {row["relpath"]: row for row in rows}
    assert set(by_path) == {"mug.jpg", "alone.jpg"}  # the companions are no rows of their own
    assert by_path["mug.jpg"]["request"]["prompt"] == "a blue mug"
    assert by_path["mug.jpg"]["images"] == 3
    assert "waits for its companion" in by_path["alone.jpg"]["reason"]


def test_two_override_files_or_a_companion_over_the_limit_fail_the_image_before_paying(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1})
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")
    (inbox / "mug.yaml").write_text("seed: 7\n", encoding="utf-8")
    (inbox / "mug.JSON").write_text('{"seed": 8}', encoding="utf-8")
    make_image(inbox / "cup.jpg", color=(9, 9, 9))
    (inbox / "cup.txt").write_text("a cup " * 20_000, encoding="utf-8")  # 120 KB: a log pasted by mistake

    make_service(config, "once", ENV).run()

    failed = tmp_path / "failed"
    both = json.loads((failed / "mug.jpg.error.json").read_text())["error"]
    assert f"{inbox / 'mug.yaml'} and {inbox / 'mug.JSON'} both hold request fields" in both["message"]
    assert "keep one of them" in both["hint"]
    large = json.loads((failed / "cup.jpg.error.json").read_text())["error"]
    assert large["message"] == f"{inbox / 'cup.txt'} is larger than the 64 KiB a companion may hold"
    assert "shorten it" in large["hint"]
    assert sorted(p.name for p in failed.iterdir() if not p.name.endswith(".error.json")) == [
        "cup.jpg", "cup.txt", "mug.JSON", "mug.jpg", "mug.yaml",
    ]  # fmt: skip
    assert sandbox.received == []  # nothing was paid for either


@pytest.mark.parametrize("named_by", ["path", "journal id"])  # `remixd retry PATH`, the review page's Retry
def test_a_retry_brings_the_companions_back_with_their_image(
    tmp_path: Path, sandbox: SandboxServer, named_by: str
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1})
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    make_image(inbox / "cup.jpg")
    (inbox / "cup.txt").write_text("a green cup", encoding="utf-8")
    (inbox / "cup.yaml").write_text("image_weight: 500\n", encoding="utf-8")
    make_service(config, "once", ENV).run()
    assert sorted(p.name for p in failed.iterdir()) == ["cup.jpg", "cup.jpg.error.json", "cup.txt", "cup.yaml"]
    (failed / "cup.yaml").write_text("seed: 5\n", encoding="utf-8")  # fixed where the error file pointed
    loaded = load_config(config)
    journal = SqliteJournal(loaded.state_dir / JOURNAL_NAME)
    [record] = journal.failed_inputs()
    journal.close()

    if named_by == "path":
        report = retry_failed(loaded, [failed / "cup.jpg"])
    else:
        report = retry_failed(loaded, input_ids=[record.id])

    assert report.lines[-1] == "1 input(s) put back", report.lines
    assert sorted(p.name for p in inbox.iterdir()) == ["cup.jpg", "cup.txt", "cup.yaml"]
    assert list(failed.iterdir()) == []
    make_service(config, "once", ENV).run()
    [document] = sidecars(tmp_path / "outbox")
    assert (document["api"]["request"]["prompt"], document["api"]["request"]["seed"]) == ("a green cup", 5)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["cup.jpg", "cup.txt", "cup.yaml"]


def test_a_retry_whose_companion_has_a_new_one_in_the_inbox_moves_nothing(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1})
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    make_image(inbox / "cup.jpg")
    (inbox / "cup.yaml").write_text("image_weight: 500\n", encoding="utf-8")
    make_service(config, "once", ENV).run()
    (inbox / "cup.yaml").write_text("seed: 5\n", encoding="utf-8")  # a new companion, written in the inbox

    report = retry_failed(load_config(config), [failed / "cup.jpg"])

    assert report.skipped == 1
    assert f"{inbox / 'cup.yaml'} exists already" in report.lines[0]
    assert sorted(p.name for p in failed.iterdir()) == ["cup.jpg", "cup.jpg.error.json", "cup.yaml"]
    assert [p.name for p in inbox.iterdir()] == ["cup.yaml"]


def two_images_of_one_stem(tmp_path: Path, sandbox: SandboxServer) -> tuple[Path, Path]:
    """A config with `companions: optional`, and its inbox holding mug.jpg, mug.png and mug.txt."""
    config = write_config(tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1})
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")
    make_image(inbox / "mug.png", color=(1, 2, 3))
    (inbox / "mug.txt").write_text("a green mug", encoding="utf-8")
    return config, inbox


def test_two_failed_images_of_one_stem_each_get_its_companions_back_whichever_is_retried_first(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config, inbox = two_images_of_one_stem(tmp_path, sandbox)
    failed = tmp_path / "failed"
    (inbox / "mug.yaml").write_text("image_weight: 500\n", encoding="utf-8")  # fails both, before paying
    make_service(config, "once", ENV).run()
    companions = ["mug.txt", "mug.yaml"]
    assert sorted(p.name for p in failed.iterdir() if not p.name.endswith(".error.json")) == [
        "mug.jpg", "mug.png", *companions
    ]  # fmt: skip
    (failed / "mug.yaml").write_text("seed: 5\n", encoding="utf-8")  # fixed once, for both
    loaded = load_config(config)

    assert retry_failed(loaded, [failed / "mug.png"]).lines[-1] == "1 input(s) put back"
    assert sorted(p.name for p in inbox.iterdir()) == ["mug.png", *companions]
    assert sorted(p.name for p in failed.iterdir()) == ["mug.jpg", "mug.jpg.error.json", *companions]  # its copy
    assert retry_failed(loaded, [failed / "mug.jpg"]).lines[-1] == "1 input(s) put back"
    assert sorted(p.name for p in inbox.iterdir()) == ["mug.jpg", "mug.png", *companions]
    assert list(failed.iterdir()) == []

    make_service(config, "once", ENV).run()
    sent = sorted((d["api"]["request"]["prompt"], d["api"]["request"]["seed"]) for d in sidecars(tmp_path / "outbox"))
    assert sent == [("a green mug", 5), ("a green mug", 5)]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["mug.jpg", "mug.png", *companions]


def test_an_image_that_fails_beside_a_done_one_of_its_stem_keeps_a_copy_of_the_companion(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    rules = [{"name": "poster", "match": ["*.png"], "request": {"prompt": "{text}", "model": "V_2"}}]
    config = write_config(
        tmp_path, sandbox.base_url, rules=rules, inbox={"companions": "optional", "companion_wait_s": 0.1}
    )
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")  # no rule matches it: it fails
    make_image(inbox / "mug.png", color=(1, 2, 3))
    (inbox / "mug.txt").write_text("a green mug", encoding="utf-8")

    make_service(config, "once", ENV).run()

    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["mug.png", "mug.txt"]
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == ["mug.jpg", "mug.jpg.error.json", "mug.txt"]
    assert list(inbox.iterdir()) == []
    assert (tmp_path / "failed/mug.txt").read_text(encoding="utf-8") == "a green mug"  # a retry sends it with it


def test_an_image_of_the_stem_not_claimed_yet_keeps_the_companions_for_itself(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """mug.png still settling when mug.jpg is done: the companions wait for it, so it is sent with them too."""
    config, inbox = two_images_of_one_stem(tmp_path, sandbox)
    done = tmp_path / "done"
    loaded = load_config(config)
    parts = build_parts(loaded, environ=ENV)
    try:
        info = (inbox / "mug.jpg").stat()
        candidate = Candidate(str(inbox), "mug.jpg", info.st_size, info.st_mtime_ns, datetime.now(UTC))
        [input_id] = parts.journal.claim_many([candidate._replace(companions=(("mug.txt", "a green mug"),))])
        assert input_id is not None
        [source] = loaded.inboxes
        assert parts.worker.process(input_id, source, loaded.rules_for(source)).outcome == "done"
    finally:
        parts.journal.close()
    assert sorted(p.name for p in inbox.iterdir()) == ["mug.png", "mug.txt"]  # a copy went with mug.jpg
    assert sorted(p.name for p in done.iterdir()) == ["mug.jpg", "mug.txt"]

    make_service(config, "once", ENV).run()

    assert [document["api"]["request"]["prompt"] for document in sidecars(tmp_path / "outbox")] == ["a green mug"] * 2
    assert sorted(p.name for p in done.iterdir()) == ["mug.jpg", "mug.png", "mug.txt"]
    assert list(inbox.iterdir()) == []


def test_a_file_of_the_stem_the_inbox_ignores_does_not_keep_the_companions(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, inbox={"companions": "optional", "companion_wait_s": 0.1, "ignore": ["*.psd"]}
    )
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")
    (inbox / "mug.psd").write_bytes(b"8BPS layers")  # never claimed: nothing waits for it
    (inbox / "mug.txt").write_text("a green mug", encoding="utf-8")

    make_service(config, "once", ENV).run()

    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["mug.jpg", "mug.txt"]
    assert [p.name for p in inbox.iterdir()] == ["mug.psd"]
