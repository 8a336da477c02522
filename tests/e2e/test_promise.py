"""The promise under faults, as an operator meets them: a second remixd, a damaged or read-only journal."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import pytest

from remixd.clock import SYSTEM_CLOCK
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, read_only, remixd, sidecars, wait_for, write_config

pytestmark = pytest.mark.e2e

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_a_second_remixd_on_one_state_dir_exits_3_and_pays_nothing(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    first = Daemon(config, ENV)
    first.wait_started()
    sandbox.hold()  # the first daemon's claims stay in flight while the others try to take them
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: sandbox.in_flight, message="the first daemon to send a.jpg")

    for command in ("run", "once"):
        second = remixd(command, "-c", str(config), env=ENV)
        assert second.returncode == 3, second.stderr
        assert f"remixd is already running (pid {first.process.pid}) on {tmp_path / 'state'}" in second.stderr
        assert "Traceback" not in second.stderr
    status = remixd("status", "-c", str(config), env=ENV)
    check = remixd("check", "-c", str(config), env=ENV)
    assert (status.returncode, check.returncode) == (0, 0), status.stderr + check.stderr

    sandbox.release()
    wait_for(lambda: not any((tmp_path / "inbox").iterdir()), message="a.jpg to finish")
    assert first.stop() == 0
    assert sandbox.ledger.requests == 1


def journal_with_work_done(root: Path, base_url: str) -> tuple[Path, Path]:
    """(config, journal) after a `remixd once` that finished three inputs."""
    config = write_config(root, base_url)
    for number in range(3):
        make_image(root / f"inbox/old-{number}.jpg", color=(number * 60, 9, 9))
    assert remixd("once", "-c", str(config), env=ENV).returncode == 0
    return config, root / "state" / JOURNAL_NAME


def test_a_damaged_journal_stops_the_start_with_exit_3_the_path_and_the_fix(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config, journal = journal_with_work_done(tmp_path, sandbox.base_url)
    with journal.open("r+b") as file:  # a torn page, as a bad disk or a careless copy leaves it
        file.seek(2 * 4096)
        file.write(b"\xde\xad" * 2048)
    make_image(tmp_path / "inbox/new.jpg")

    for command in ("run", "once"):
        started = remixd(command, "-c", str(config), env=ENV)
        assert started.returncode == 3, started.stderr
        assert f"the journal {journal} is damaged" in started.stderr
        assert f"move {journal} and its -wal and -shm files aside" in started.stderr
        assert "Traceback" not in started.stderr
    # status skips the whole-file check (seconds on a big journal); the damage it reads is told the same way
    status = remixd("status", "-c", str(config), env=ENV)
    assert status.returncode == 3, status.stdout + status.stderr
    assert f"the journal {journal} is damaged" in status.stderr
    assert "Traceback" not in status.stderr
    assert (tmp_path / "inbox/new.jpg").exists()
    assert sandbox.ledger.requests == 3


def test_a_read_only_state_dir_is_reported_as_read_only_not_as_a_journal_to_move(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config, journal = journal_with_work_done(tmp_path, sandbox.base_url)
    with read_only(journal.parent):
        started = remixd("run", "-c", str(config), env=ENV)
        status = remixd("status", "-c", str(config), env=ENV)
    assert started.returncode == 3, started.stderr
    assert f"the state folder {journal.parent} is read-only" in started.stderr
    assert status.returncode == 3, status.stdout + status.stderr
    assert f"the journal {journal} is read-only" in status.stderr
    for result in (started, status):
        assert "aside" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("after_crash", ["resend", "hold"])
def test_a_request_caught_in_flight_by_a_crash_is_counted_and_resent_or_held(
    tmp_path: Path, sandbox: SandboxServer, after_crash: str
) -> None:
    first_day = SYSTEM_CLOCK.utcnow().date()  # a run may cross midnight UTC: its spend is on both days
    config = write_config(tmp_path, sandbox.base_url, api={"after_crash": after_crash})
    crashed = Daemon(config, ENV)
    crashed.wait_started()
    sandbox.hold()
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: sandbox.in_flight, message="a.jpg to be sent")
    crashed.stop(signal.SIGKILL)
    crashed.log_path.rename(tmp_path / "crashed-run.log")  # the restart's wait_started reads its own log
    sandbox.release()  # the request runs to the end: Ideogram billed it, remixd never heard
    wait_for(lambda: sandbox.ledger.requests == 1, message="the sandbox to bill the orphaned request")

    status = remixd("status", "-c", str(config), env=ENV)
    assert "possible payments: 1 request(s), 1 images, $0.08" in status.stdout, status.stdout
    assert "spent today (UTC): 1 images, $0.08 (counting 1 request(s) with an unknown outcome" in status.stdout

    restarted = Daemon(config, ENV)
    restarted.wait_started()
    wait_for(lambda: not any((tmp_path / "inbox").iterdir()), message="a.jpg to end")
    assert restarted.stop() == 0
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spent = journal.spent_since(first_day)
    finally:
        journal.close()
    if after_crash == "resend":
        assert sandbox.ledger.requests == 2  # paid twice, and counted twice: the budget saw both
        (document,) = sidecars(tmp_path / "outbox")
        assert document["possible_payments"] == 1
        assert (spent.images, spent.unknown) == (2, 1)
    else:
        assert sandbox.ledger.requests == 1  # never sent again on its own
        error = json.loads((tmp_path / "failed/a.jpg.error.json").read_text())
        assert error["error"]["kind"] == "outcome_unknown"
        assert "remixd retry" in error["error"]["hint"]
        assert (spent.images, spent.unknown) == (1, 1)
    assert spent.images >= sandbox.ledger.images  # the journal never counts less than the API billed


def test_a_stop_waits_for_a_sent_request_instead_of_paying_for_it_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"timeout_s": 30}, extra={"shutdown_grace_s": 0.2})
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    sandbox.set_faults(latency_s=2.0)  # well beyond the grace, well within the request's deadline
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: sandbox.in_flight, message="a.jpg to be sent")
    assert daemon.stop() == 0
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        assert journal.job_counts()["submitting"] == 0  # the answer was journalled before the exit
        assert journal.possible_payments().unknown == 0
    finally:
        journal.close()
    assert any(event.get("event") == "remixd.stopping.awaiting_answers" for event in daemon.events())
    daemon.log_path.rename(tmp_path / "stopped-run.log")  # the restart's wait_started reads its own log

    sandbox.set_faults(latency_s=0.0)
    restarted = Daemon(config, ENV)
    restarted.wait_started()
    wait_for(lambda: not any((tmp_path / "inbox").iterdir()), message="a.jpg to finish")
    assert restarted.stop() == 0
    assert sandbox.ledger.requests == 1  # answered before the exit: never sent again
    assert (tmp_path / "outbox/a.poster.1.png").is_file()


def test_an_input_renamed_over_while_it_was_sent_is_kept_as_a_new_input(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"rescan_s": 1})
    daemon = Daemon(config, ENV)
    daemon.wait_started()
    sandbox.hold()
    old = make_image(tmp_path / "inbox/a.jpg", color=(1, 2, 3))
    old_sha = hashlib.sha256(old.read_bytes()).hexdigest()
    wait_for(lambda: sandbox.in_flight, message="the first a.jpg to be sent")
    new = make_image(tmp_path / "staging/a.jpg", color=(200, 9, 9))
    new_sha = hashlib.sha256(new.read_bytes()).hexdigest()
    new.rename(tmp_path / "inbox/a.jpg")  # mv over it while its upload runs
    sandbox.release()

    wait_for(lambda: (tmp_path / "done/a.jpg").is_file(), timeout=60, message="the new a.jpg to be processed")
    assert daemon.stop() == 0
    assert hashlib.sha256((tmp_path / "done/a.jpg").read_bytes()).hexdigest() == new_sha
    assert sorted(document["source"]["sha256"] for document in sidecars(tmp_path / "outbox")) == sorted(
        [old_sha, new_sha]
    )  # one result for each image, each under the sidecar that describes it
    assert sandbox.ledger.requests == 2
