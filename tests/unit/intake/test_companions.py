"""Companions at intake: never claimed alone, read into the journal with their image's claim, waited for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.intake.loop import Intake
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, make_image, write_config

SETTLE_S = 2.0
WAIT_S = 3.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2025, 1, 1, tzinfo=UTC))  # nothing on disk looks quiet already


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.sqlite3", clock)
    yield opened
    opened.close()


def intake_for(tmp_path: Path, journal: SqliteJournal, clock: FakeClock, mode: str) -> Intake:
    inbox = {"settle_s": SETTLE_S, "companions": mode, "companion_wait_s": WAIT_S}
    intake = Intake(load_config(write_config(tmp_path, None, inbox=inbox)).inboxes, journal, clock=clock)
    intake.start(watch=False)
    return intake


def test_optional_waits_after_settling_and_records_the_companion_with_the_claim(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    make_image(tmp_path / "inbox/a.jpg")
    (tmp_path / "inbox/lonely.txt").write_text("no image of mine", encoding="utf-8")
    intake = intake_for(tmp_path, journal, clock, "optional")
    assert intake.step(timeout=0) == 0  # the scan sees it settling
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 0  # settled, but its companion may still come
    (tmp_path / "inbox/a.txt").write_text("a red mug\n", encoding="utf-8")  # a script writing it after the image
    (tmp_path / "inbox/a.yaml").write_text("seed: 7\n", encoding="utf-8")
    clock.advance(WAIT_S)
    assert intake.step(timeout=0) == 1
    [record] = journal.unfinished()
    assert record.relpath == "a.jpg"  # neither companion, nor the lonely .txt, is an input
    assert record.companions == (("a.txt", "a red mug\n"), ("a.yaml", "seed: 7\n"))
    (tmp_path / "inbox/a.txt").write_text("changed after the claim", encoding="utf-8")
    clock.advance(600)
    intake.step(timeout=0)
    assert journal.get_input(record.id).companions[0] == ("a.txt", "a red mug\n")  # what was claimed, kept


def test_required_never_claims_an_image_without_one_and_claims_it_when_it_arrives(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    make_image(tmp_path / "inbox/b.jpg")
    intake = intake_for(tmp_path, journal, clock, "required")
    assert intake.step(timeout=0) == 0
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 0
    clock.advance(600)  # rescans find it again: still nothing to send it with
    assert [intake.step(timeout=0), intake.step(timeout=0)] == [0, 0]
    assert journal.unfinished() == []
    companion = tmp_path / "inbox/b.json"
    companion.write_text('{"seed": 3}', encoding="utf-8")
    intake.events.put((0, companion))  # what the watcher reports: the image is looked at again
    assert intake.step(timeout=0) == 0
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 1
    [record] = journal.unfinished()
    assert (record.relpath, record.companions) == ("b.jpg", (("b.json", '{"seed": 3}'),))
