"""Crash recovery, claims and duplicates, and the operator commands that follow a failure.

A crash is simulated by writing the journal and the folders exactly as a killed daemon leaves them (the
journal's own API, the sandbox's real answers), then starting the service on them. The subprocess kill test
(tests/test_kill.py) checks the same promises statistically; these check each crash point by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from remixd import rules
from remixd.config.load import load_config
from remixd.config.model import Config
from remixd.daemon.service import Service
from remixd.errors import ApiRejected
from remixd.ideogram.answers import SAFETY_HINT
from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import JobRecord, JobSpec
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from remixd.work.prepare import prepare
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, send_remix, wait_for, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def remixd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remixd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        check=False,
    )


def run_once(config_path: Path) -> Service:
    service = make_service(config_path, "once", ENV)
    service.run()
    return service


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


class Crash:
    """Builds the journal and folders a daemon killed at a chosen point leaves behind."""

    def __init__(self, config: Config, sandbox: SandboxServer) -> None:
        self.config = config
        self.inbox = config.inboxes[0]
        self.journal = SqliteJournal(config.state_dir / JOURNAL_NAME)
        self.client = IdeogramClient(sandbox.base_url, TEST_KEY, "api-key", requests.Session(), 20, 20, 1 << 26)

    def claimed(self, name: str, color: tuple[int, int, int]) -> int:
        path = make_image(self.inbox.path / name, color=color)
        info = path.stat()
        input_id = self.journal.claim(str(self.inbox.path), name, info.st_size, info.st_mtime_ns)
        assert input_id is not None
        self.journal.set_hash(input_id, hashlib.sha256(path.read_bytes()).hexdigest())
        return input_id

    def planned(self, name: str, color: tuple[int, int, int]) -> JobRecord:
        """Claimed and planned exactly as the worker plans: one job per matching rule."""
        input_id = self.claimed(name, color)
        specs = [
            JobSpec(
                rule=job.rule,
                fingerprint=job.fingerprint,
                endpoint=job.request.endpoint_path(),
                request=job.request.model_dump(mode="json", exclude_unset=True),
                images=job.request.num_images,
                cost_usd=job.request.cost_usd(),
            )
            for job in rules.plan(name, self.config.rules_for(self.inbox))
        ]
        (job,) = self.journal.add_jobs(input_id, specs)
        return job

    def submitting(self, name: str, color: tuple[int, int, int]) -> JobRecord:
        """Killed after the request was recorded as sent, before its answer was."""
        job = self.planned(name, color)
        self.journal.start_submit(job.id)
        return self.journal.get_job(job.id)

    def answered(self, name: str, color: tuple[int, int, int]) -> tuple[JobRecord, dict[str, Any]]:
        """Killed after the answer (the result URLs) was recorded, before anything was downloaded."""
        job = self.submitting(name, color)
        prepared = prepare(self.inbox.path / name)
        response = send_remix(
            self.client,
            RemixRequest.model_validate(job.request),
            prepared.data,
            prepared.filename,
            prepared.content_type,
        ).model_dump(mode="json")
        self.journal.record_answer(job.id, response)
        return self.journal.get_job(job.id), response


def test_restart_resumes_every_crash_point_without_paying_twice(tmp_path: Path, sandbox: SandboxServer) -> None:
    config_path = write_config(tmp_path, sandbox.base_url)
    crash = Crash(load_config(config_path), sandbox)
    outbox, done, failed = tmp_path / "outbox", tmp_path / "done", tmp_path / "failed"
    try:
        crash.claimed("claimed.jpg", (10, 0, 0))  # claimed, nothing planned yet
        crash.planned("planned.jpg", (20, 0, 0))  # planned, never sent
        crash.submitting("sending.jpg", (30, 0, 0))  # sent, no answer recorded: the one case sent again
        crash.answered("answered.jpg", (40, 0, 0))  # answered: download again, never send again
        # Answered, the image written, killed before its sidecar: the image is recognised as ours.
        _half, response = crash.answered("half.jpg", (50, 0, 0))
        outbox.mkdir()
        (outbox / "half.poster.1.png").write_bytes(crash.client.download(response["data"][0]["url"]))
        # Written, then the files were lost (a crash on a file system that lost them): download again.
        lost, _ = crash.answered("lost.jpg", (60, 0, 0))
        crash.journal.record_written(lost.id, [str(outbox / "lost.poster.1.png")])
        # Finished but killed before the input left the inbox; and one whose copy was made but the source
        # not yet removed (a move across file systems).
        moving = crash.claimed("moving.jpg", (70, 0, 0))
        crash.journal.finish_input(moving, "done")
        copied = crash.claimed("copied.jpg", (80, 0, 0))
        crash.journal.finish_input(copied, "done")
        done.mkdir()
        (done / "copied.jpg").write_bytes((tmp_path / "inbox/copied.jpg").read_bytes())
        failing = crash.claimed("failing.jpg", (90, 0, 0))
        crash.journal.finish_input(failing, "failed", {"schema": "remixd.error/1", "error": {"kind": "input"}})
        # Temp files of interrupted writes, in every folder remixd writes.
        for folder in (outbox, done, tmp_path / "failed/sub"):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ".remixd-tmp-0123abcd-x.png").write_bytes(b"partial")
    finally:
        crash.journal.close()
    requests_before, downloads_before = len(sandbox.received), len(sandbox.downloads)

    service = run_once(config_path)

    new_requests = sandbox.received[requests_before:]
    assert sorted(r.sha256 or "" for r in new_requests) == sorted(
        hashlib.sha256((done / name).read_bytes()).hexdigest() for name in ("claimed.jpg", "planned.jpg", "sending.jpg")
    )
    assert len(sandbox.downloads) - downloads_before == 6  # 3 new, answered, half and lost: once each
    stems = ["answered", "claimed", "half", "lost", "planned", "sending"]
    assert files_under(outbox) == sorted(f"{stem}.poster.1.{ext}" for stem in stems for ext in ("json", "png"))
    assert files_under(done) == sorted(f"{stem}.jpg" for stem in [*stems, "copied", "moving"])
    assert files_under(tmp_path / "inbox") == []
    assert files_under(failed) == ["failing.jpg", "failing.jpg.error.json"]
    assert not list(tmp_path.rglob(".remixd-tmp-*"))
    for document in (json.loads(p.read_text()) for p in outbox.glob("*.json")):
        image = outbox / document["image"]["file"]
        assert hashlib.sha256(image.read_bytes()).hexdigest() == document["image"]["sha256"]
    assert service.outcomes == {"done": 8, "failed": 1}
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        assert journal.unfinished() == []
        assert journal.job_counts()["written"] == 6
    finally:
        journal.close()


def test_lost_results_whose_links_expired_fail_the_input_clearly(tmp_path: Path, sandbox: SandboxServer) -> None:
    config_path = write_config(tmp_path, sandbox.base_url)
    crash = Crash(load_config(config_path), sandbox)
    try:
        lost, _ = crash.answered("lost.jpg", (60, 0, 0))
        crash.journal.record_written(lost.id, [str(tmp_path / "outbox/lost.poster.1.png")])
    finally:
        crash.journal.close()
    sandbox.advance_clock(2 * 86_400)  # the links lived 24 hours
    requests_before = len(sandbox.received)

    service = run_once(config_path)

    assert service.outcomes == {"failed": 1}
    assert len(sandbox.received) == requests_before  # never bought again behind the user's back
    error = json.loads((tmp_path / "failed/lost.jpg.error.json").read_text())
    assert error["error"]["kind"] == "url_expired"
    assert "remixd retry" in error["error"]["hint"]
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        assert journal.job_counts()["failed"] == 1  # the lost results are not a duplicate source any more
    finally:
        journal.close()


def test_a_job_that_failed_before_a_crash_keeps_its_kind_in_the_error_file(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Killed after the job's rejection was journalled, before its input was failed: the error file written
    on the restart names the API's rejection, its status and its answer, not a generic remixd error."""
    config_path = write_config(tmp_path, sandbox.base_url)
    crash = Crash(load_config(config_path), sandbox)
    rejection = ApiRejected(
        "the API rejected the request (422): unsafe image", SAFETY_HINT, http_status=422, response={"detail": "no"}
    )
    try:
        job = crash.submitting("rejected.jpg", (90, 0, 0))
        crash.journal.record_job_failure(job.id, rejection.record(), final=True)
    finally:
        crash.journal.close()

    service = run_once(config_path)

    assert service.outcomes == {"failed": 1}
    error = json.loads((tmp_path / "failed/rejected.jpg.error.json").read_text())
    assert error["error"] == rejection.record().to_json()
    assert error["error"]["kind"] == "api_rejected"


def test_identical_content_dropped_together_is_sent_once(tmp_path: Path, sandbox: SandboxServer) -> None:
    fixed = [{"name": "fixed", "match": ["*.jpg"], "request": {"prompt": "a fixed prompt", "seed": 7}}]
    config_path = write_config(tmp_path, sandbox.base_url, rules=fixed)  # no {stem}: the same request
    data = make_image(tmp_path / "inbox/first.jpg", color=(5, 6, 7)).read_bytes()
    for name in ("second.jpg", "third.jpg"):
        (tmp_path / "inbox" / name).write_bytes(data)
    make_image(tmp_path / "inbox/other.jpg", color=(200, 6, 7))
    sandbox.set_faults(latency_s=0.3)  # all three identical copies are in the workers at the same time

    service = run_once(config_path)

    assert service.outcomes == {"done": 2, "duplicate": 2}
    assert sandbox.ledger.requests == 2
    assert len({r.sha256 for r in sandbox.received}) == 2
    written = [json.loads(p.read_text())["source"]["relpath"] for p in (tmp_path / "outbox").glob("*.json")]
    assert len(written) == 2 and "other.jpg" in written
    assert files_under(tmp_path / "done") == ["first.jpg", "other.jpg", "second.jpg", "third.jpg"]


def test_status_and_retry_commands(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules_ = [{"name": "risky", "match": ["*-risky.*"], "request": {"prompt": "FORBIDDEN_422 {stem}"}}, POSTER]
    config_path = write_config(tmp_path, sandbox.base_url, rules=rules_)
    make_image(tmp_path / "inbox/a-risky.jpg")
    (tmp_path / "inbox/broken.jpg").write_bytes(b"not an image")
    make_image(tmp_path / "inbox/fine.jpg")
    run_once(config_path)

    status = remixd("status", "-c", str(config_path), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["inputs"]["done"], report["inputs"]["failed"]) == (1, 2)
    assert report["spent_today"] == {"images": 1, "usd": pytest.approx(0.08), "unknown_outcome": 0}
    assert report["possible_payments"] == {"requests": 0, "images": 0, "usd": 0.0}
    reasons = {failure["relpath"]: failure for failure in report["recent_failures"]}
    assert reasons["a-risky.jpg"]["kind"] == "api_rejected" and "safety" in reasons["a-risky.jpg"]["message"]
    assert reasons["a-risky.jpg"]["rule"] == "risky"
    assert reasons["broken.jpg"]["kind"] == "input" and reasons["broken.jpg"]["hint"]
    assert report["paused"] == []
    with sqlite3.connect(tmp_path / "state" / JOURNAL_NAME) as db:  # what the journal's file holds, in pages
        pages, size = (db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
    db.close()
    assert report["journal"] == {"bytes": pages * size, "free_bytes": report["journal"]["free_bytes"], "keep_days": 90}
    assert 0 <= report["journal"]["free_bytes"] < pages * size
    text = remixd("status", "-c", str(config_path))
    assert text.returncode == 0, text.stderr
    assert "done 1" in text.stdout and "failed 2" in text.stdout
    assert "spent today (UTC): 1 images, $0.08" in text.stdout
    assert "finished inputs older than 90 days are compacted (journal.keep_days)" in text.stdout
    assert "recent failures:" in text.stdout and "a-risky.jpg [risky]: the API rejected" in text.stdout

    one = remixd("retry", "-c", str(config_path), str(tmp_path / "failed/broken.jpg"))
    assert one.returncode == 0, one.stderr
    assert "retrying broken.jpg" in one.stdout and "1 input(s) put back" in one.stdout
    assert files_under(tmp_path / "inbox") == ["broken.jpg"]
    assert files_under(tmp_path / "failed") == ["a-risky.jpg", "a-risky.jpg.error.json"]

    rest = remixd("retry", "-c", str(config_path))
    assert rest.returncode == 0, rest.stderr
    assert "1 input(s) put back" in rest.stdout
    assert files_under(tmp_path / "inbox") == ["a-risky.jpg", "broken.jpg"]
    assert files_under(tmp_path / "failed") == []
    counts = json.loads(remixd("status", "-c", str(config_path), "--json").stdout)["inputs"]
    assert (counts["failed"], counts["retried"]) == (0, 2)
    again = run_once(config_path)  # retried inputs are claimed as new and fail again, the same way
    assert again.outcomes == {"failed": 2}


def test_daemon_picks_up_a_retried_input(tmp_path: Path, sandbox: SandboxServer) -> None:
    """`remixd retry` while the daemon runs: the input lands in the inbox and is claimed as new."""
    import threading

    config_path = write_config(tmp_path, sandbox.base_url)
    make_image(tmp_path / "inbox/later.jpg")
    sandbox.set_faults(reset_after_next=1)
    run_once(config_path)
    assert (tmp_path / "failed/later.jpg").is_file()
    service = make_service(config_path, "run", ENV)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        assert remixd("retry", "-c", str(config_path)).returncode == 0
        wait_for(lambda: (tmp_path / "done/later.jpg").is_file(), message="the retried input to finish")
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert [r.status for r in sandbox.received] == [None, 200]  # reset (billed), then sent again once
