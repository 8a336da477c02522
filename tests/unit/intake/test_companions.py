"""Companions at intake: never claimed alone, read into the journal with their image's claim, waited for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remixd.config.companion import MAX_BYTES, TOO_LARGE
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


def test_optional_does_not_wait_when_the_companion_is_there_when_the_image_settles(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    make_image(tmp_path / "inbox/a.jpg")
    (tmp_path / "inbox/a.txt").write_text("a red mug", encoding="utf-8")  # written before the image settled
    make_image(tmp_path / "inbox/b.jpg")
    intake = intake_for(tmp_path, journal, clock, "optional")
    assert intake.step(timeout=0) == 0
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 1  # a.jpg at once; b.jpg, alone, waits companion_wait_s
    [record] = journal.unfinished()
    assert (record.relpath, record.companions) == ("a.jpg", (("a.txt", "a red mug"),))
    assert intake.pending == 1  # `remixd once` waits for b.jpg's companion too
    clock.advance(WAIT_S + 0.1)
    assert intake.step(timeout=0) == 1
    assert {record.relpath: record.companions for record in journal.unfinished()}["b.jpg"] == ()


def test_a_companion_event_during_the_wait_claims_the_image_once_the_companion_is_quiet(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    make_image(tmp_path / "inbox/a.jpg")
    intake = intake_for(tmp_path, journal, clock, "optional")
    intake.step(timeout=0)
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 0  # waiting for a companion
    companion = tmp_path / "inbox/a.txt"
    companion.write_text("a script's first half", encoding="utf-8")
    intake.events.put((0, companion))
    assert intake.step(timeout=0) == 0  # the companion may still be being written: settle_s for it
    companion.write_text("a script's first half, and the rest", encoding="utf-8")
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 1
    [record] = journal.unfinished()
    assert record.companions == (("a.txt", "a script's first half, and the rest"),)


def test_suffixes_in_any_case_and_yml_are_companions(tmp_path: Path, journal: SqliteJournal, clock: FakeClock) -> None:
    make_image(tmp_path / "inbox/IMG_0001.JPG")
    (tmp_path / "inbox/IMG_0001.TXT").write_text("from a camera", encoding="utf-8")
    (tmp_path / "inbox/IMG_0001.Yml").write_text("seed: 4\n", encoding="utf-8")
    intake = intake_for(tmp_path, journal, clock, "required")
    intake.step(timeout=0)
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 1  # the companions are no inputs of their own
    [record] = journal.unfinished()
    assert record.companions == (("IMG_0001.TXT", "from a camera"), ("IMG_0001.Yml", "seed: 4\n"))


def test_a_companion_over_the_limit_is_recorded_as_too_large_not_cut_short(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    make_image(tmp_path / "inbox/a.jpg")
    (tmp_path / "inbox/a.txt").write_bytes(b"x" * MAX_BYTES)  # at the limit: whole
    make_image(tmp_path / "inbox/b.jpg")
    (tmp_path / "inbox/b.txt").write_bytes(b"\xef\xbb\xbf" + b"y" * (MAX_BYTES + 1))
    intake = intake_for(tmp_path, journal, clock, "required")
    intake.step(timeout=0)
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 2
    found = {record.relpath: record.companions for record in journal.unfinished()}
    assert found == {"a.jpg": (("a.txt", "x" * MAX_BYTES),), "b.jpg": (("b.txt", TOO_LARGE),)}


def test_an_image_the_events_missed_keeps_that_mark_while_it_waits_for_its_companion(
    tmp_path: Path, journal: SqliteJournal, clock: FakeClock
) -> None:
    intake = intake_for(tmp_path, journal, clock, "optional")  # no watcher: only what the test puts is an event
    assert intake.step(timeout=0) == 0  # the start-up scan: an empty inbox
    make_image(tmp_path / "inbox/alone.jpg")  # no event: a rescan finds them
    make_image(tmp_path / "inbox/prompted.jpg")
    intake.events.put((0, make_image(tmp_path / "inbox/announced.jpg")))
    clock.advance(load_config(tmp_path / "remixd.yaml").inboxes[0].rescan_s + 1)
    assert intake.step(timeout=0) == 0  # the rescan: all three settling
    clock.advance(SETTLE_S + 0.1)
    assert intake.step(timeout=0) == 0  # settled: each waits for a companion
    companion = tmp_path / "inbox/prompted.txt"
    companion.write_text("a red mug", encoding="utf-8")
    intake.events.put((0, companion))
    assert intake.step(timeout=0) == 0
    clock.advance(WAIT_S + 0.1)

    assert intake.step(timeout=0) == 3  # prompted.jpg with its companion, the others after their wait

    assert intake.counters.missed_by_events == 2  # alone.jpg and prompted.jpg; announced.jpg had its event
