"""The promise under faults, in process: a worker that fails leaves its input claimed and queued again."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from remixd.config.load import load_config
from remixd.config.model import InboxConfig, Rule
from remixd.daemon.notify import Notifier
from remixd.daemon.parts import build_parts
from remixd.daemon.service import Service
from remixd.errors import JournalError, JournalUnwritable
from remixd.intake.companions import stem_waits
from remixd.journal.sqlite import SqliteJournal
from remixd.sandbox.server import SandboxServer
from remixd.work.worker import Result, Worker
from tests.helpers import TEST_KEY, make_image, wait_for, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


class FailsFirst:
    """The real worker, whose first input fails as a full state fs makes the journal fail."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.failures = 0

    def process(self, input_id: int, inbox: InboxConfig, inbox_rules: Sequence[Rule]) -> Result:
        if not self.failures:
            self.failures += 1
            raise JournalError("cannot write the journal: database or disk is full", "free space on the state fs")
        return self._worker.process(input_id, inbox, inbox_rules)


def drop_one_and_wait(service: Service, tmp_path: Path, message: str) -> list[MutableMapping[str, Any]]:
    """Run the service, drop inbox/a.jpg once it is ready, and stop it once a.jpg is done; its log events."""
    thread = threading.Thread(target=service.run, name="test-service")
    with structlog.testing.capture_logs() as logs:
        thread.start()
        try:
            wait_for(service.ready.is_set, message="the service to start")
            make_image(tmp_path / "inbox/a.jpg")
            wait_for(lambda: (tmp_path / "done/a.jpg").is_file(), message=message)
        finally:
            service.request_stop()
            thread.join(timeout=30)
    return logs


def test_an_input_whose_worker_failed_is_queued_again_without_a_traceback(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    parts = build_parts(load_config(config), environ=ENV)
    worker = FailsFirst(parts.worker)
    service = Service(dataclasses.replace(parts, worker=worker), mode="run", notifier=Notifier(ENV))  # type: ignore[arg-type]
    logs = drop_one_and_wait(service, tmp_path, "a.jpg after its worker failed once")
    assert worker.failures == 1 and sandbox.ledger.requests == 1
    failed = [event for event in logs if event["event"] == "remixd.worker.failed"]
    assert [event["kind"] for event in failed] == ["journal"]
    assert not any("exc_info" in event or event["event"] == "remixd.worker.crashed" for event in logs)


class FullAtAnswers:
    """The real journal, on a state fs that is full whenever the first two answers arrive."""

    def __init__(self, journal: SqliteJournal) -> None:
        self._journal = journal
        self.refused = 0

    def record_answer(self, job_id: int, *args: Any, **kwargs: Any) -> None:
        if self.refused < 2:
            self.refused += 1
            raise JournalUnwritable("cannot write the journal: database or disk is full", "free space on the state fs")
        self._journal.record_answer(job_id, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)


def test_an_answer_the_journal_cannot_take_is_kept_and_written_never_sent_again(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    parts = build_parts(load_config(config), environ=ENV)
    journal = FullAtAnswers(parts.journal)
    worker = Worker(journal, parts.client, parts.gates, clock=parts.clock, stem_waits=stem_waits)
    service = Service(dataclasses.replace(parts, worker=worker), mode="run", notifier=Notifier(ENV))
    logs = drop_one_and_wait(service, tmp_path, "a.jpg once its answer was journalled")
    assert journal.refused == 2 and sandbox.ledger.requests == 1  # paid once: the answer was kept, not lost
    events = [event["event"] for event in logs]
    assert events.count("remixd.journal.answer_kept") == 1 and "remixd.journal.answer_written" in events
    assert "remixd.worker.failed" not in events
