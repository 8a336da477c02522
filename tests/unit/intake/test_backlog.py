"""A big backlog waits in the journal: the scan claims it a slice per step, the queue takes it in claim order."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.config.model import Config
from remixd.daemon.status import scan_line
from remixd.intake.backlog import Backlog
from remixd.intake.claims import CLAIM_BATCH
from remixd.intake.loop import Intake
from remixd.journal.records import Candidate
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import write_config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, None, inbox={"recursive": True}))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "journal.sqlite3")
    yield opened
    opened.close()


def settled_files(inbox: Path, count: int) -> None:
    moment = time.time() - 60
    for number in range(count):
        path = inbox / f"folder-{number // 100}" / f"{number:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (moment, moment))


def test_the_scan_claims_a_slice_per_step(config: Config, journal: SqliteJournal) -> None:
    settled_files(config.inboxes[0].path, 600)
    intake = Intake(config.inboxes, journal, clock=Clock())
    intake.start(watch=False)
    assert intake.scanning  # started, nothing claimed yet: start() does not wait for the backlog
    assert journal.counts()["claimed"] == 0
    with capture_logs() as logs:
        claims = [intake.step(timeout=0.0) for _ in range(3)]
    assert claims == [CLAIM_BATCH, CLAIM_BATCH, 600 - 2 * CLAIM_BATCH]
    assert not intake.scanning
    assert (intake.progress.files, intake.progress.claimed, intake.progress.running) == (600, 600, False)
    assert [entry["files"] for entry in logs if entry["event"] == "remixd.scan.finished"] == [600]
    daemon = {"scan": intake.progress.as_dict(), "updated_at": time.time()}
    assert (scan_line(daemon) or "").endswith("600 files found, 600 of them new")


def test_the_queue_takes_the_journal_in_claim_order(config: Config, journal: SqliteJournal) -> None:
    root = str(config.inboxes[0].path)
    now = Clock().utcnow()
    ids = journal.claim_many([Candidate(root, f"{n}.jpg", 1, 1, now) for n in range(5)])
    stranger = journal.claim("/srv/gone", "x.jpg", 1, 1)  # an inbox no longer in the config
    backlog = Backlog(journal, config.inboxes)
    assert [item.input_id for item in backlog.take(3)] == ids[:3]
    assert not backlog.exhausted
    with capture_logs() as logs:
        assert [item.input_id for item in backlog.take(10)] == ids[3:]  # the stranger stays in the journal
    assert backlog.exhausted
    assert [entry["inbox"] for entry in logs if entry["event"] == "remixd.recover.unknown_inbox"] == ["/srv/gone"]
    assert journal.get_input(stranger or 0).state == "claimed"
    later = journal.claim(root, "later.jpg", 1, 1)
    backlog.grew(1)
    assert not backlog.exhausted
    assert [item.input_id for item in backlog.take(10)] == [later]
    # a restart starts from the beginning: what is unfinished is taken again, oldest first
    assert [item.input_id for item in Backlog(journal, config.inboxes).take(2)] == ids[:2]
