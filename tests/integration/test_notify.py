"""systemd's notify protocol against a real datagram socket: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remixd.clock import SYSTEM_CLOCK
from remixd.daemon.notify import Notifier
from remixd.daemon.service import Service
from remixd.intake.claims import CLAIM_BATCH
from remixd.journal.records import Candidate
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon, make_image, make_service, wait_for, write_config


class NotifySocket:
    """A bound AF_UNIX datagram socket collecting what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-reader")
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def names(self) -> list[str]:
        return [key for message in self.messages for key in message]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    reader = NotifySocket(tmp_path / "notify.sock")
    yield reader
    reader.close()


ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def test_nothing_is_sent_without_notify_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    notifier.ready("fine")  # must not raise


def test_abstract_socket_names_are_understood(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0remixd-test-" + tmp_path.name)
        sock.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@remixd-test-" + tmp_path.name}).status("hello")
        assert sock.recv(100) == b"STATUS=hello"


@pytest.fixture
def supervised(tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket) -> Iterator[Service]:
    """The daemon running in a thread as systemd would run it: NOTIFY_SOCKET set, a 0.2 s watchdog."""
    config = write_config(tmp_path, sandbox.base_url)
    environ = {"IDEOGRAM_API_KEY": TEST_KEY, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "200000"}
    service = make_service(config, "run", environ)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    yield service
    service.request_stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def assert_no_more_pings(notify_socket: NotifySocket) -> int:
    threading.Event().wait(0.3)  # let a ping already on its way land
    pings = notify_socket.names().count("WATCHDOG")
    threading.Event().wait(0.5)  # five watchdog intervals: a healthy daemon pings at least twice in them
    assert notify_socket.names().count("WATCHDOG") == pings
    return pings


def test_the_daemon_lifecycle_as_systemd_sees_it(
    tmp_path: Path, supervised: Service, notify_socket: NotifySocket
) -> None:
    ready = wait_for(
        lambda: next((m for m in notify_socket.messages if m.get("READY") == "1"), None), message="READY=1"
    )
    assert "inboxes" in ready["STATUS"]
    assert supervised.intake.modes == {str(tmp_path / "inbox"): "native"}  # armed before READY=1
    wait_for(lambda: notify_socket.names().count("WATCHDOG") >= 2, message="watchdog pings")
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: (tmp_path / "done/a.jpg").exists(), message="the input to finish")
    supervised.request_reload()
    wait_for(lambda: "RELOADING" in notify_socket.names(), message="RELOADING=1")
    wait_for(lambda: notify_socket.names().count("READY") >= 2, message="READY=1 after the reload")
    reloading = notify_socket.names().index("RELOADING")
    assert "READY" in notify_socket.names()[reloading:]
    supervised.request_stop()
    wait_for(lambda: "STOPPING" in notify_socket.names(), message="STOPPING=1")


def test_no_watchdog_ping_while_a_worker_is_dead(supervised: Service, notify_socket: NotifySocket) -> None:
    wait_for(lambda: notify_socket.names().count("WATCHDOG") >= 1, message="a first ping")
    supervised.pool._work.put(None)  # one worker thread ends, as a crashed one would
    wait_for(lambda: not all(t.is_alive() for t in supervised.pool._threads), message="the worker to end")
    assert_no_more_pings(notify_socket)


def test_no_watchdog_ping_while_a_busy_worker_has_stopped_beating(
    supervised: Service, notify_socket: NotifySocket
) -> None:
    wait_for(lambda: notify_socket.names().count("WATCHDOG") >= 1, message="a first ping")
    with supervised.pool._lock:  # a worker busy on one input, silent for longer than any HTTP timeout allows
        supervised.pool._beats[-1] = time.monotonic() - 10_000
    pings = assert_no_more_pings(notify_socket)
    with supervised.pool._lock:
        del supervised.pool._beats[-1]
    wait_for(lambda: notify_socket.names().count("WATCHDOG") > pings, message="pings after recovery")


def test_ready_comes_before_a_20000_file_backlog_is_scanned(
    tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket
) -> None:
    """READY=1 waits for the journal and the watchers, never for the backlog (README "A million files")."""
    inbox = tmp_path / "inbox"
    settled = time.time() - 60
    for folder in range(20):
        (inbox / f"batch-{folder:02d}").mkdir(parents=True)
        for number in range(1000):
            path = inbox / f"batch-{folder:02d}" / f"{number:04d}.dat"  # matched by no rule: never sent
            path.write_bytes(b"x")
            os.utime(path, (settled, settled))
    config = write_config(tmp_path, sandbox.base_url, inbox={"recursive": True, "after": "keep"})
    environ = {"IDEOGRAM_API_KEY": TEST_KEY, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"}
    service = make_service(config, "run", environ)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        ready = wait_for(lambda: next((m for m in notify_socket.messages if m.get("READY") == "1"), None))
        assert "scanning" in ready["STATUS"]  # at READY=1 the daemon itself said the scan was still running
        done = wait_for(
            lambda: [m for m in notify_socket.messages if "STATUS" in m and "scanning" not in m["STATUS"]],
            timeout=120,
            message="a STATUS= after the scan",
        )
        assert notify_socket.messages.index(ready) < notify_socket.messages.index(done[0])
        # The workers may have moved some of the head start's first slice to the failed folder (no rule
        # matches) before the scan came by: the scan saw the rest, and every file was claimed.
        progress = service.intake.progress
        assert progress.running is False and 20_000 - CLAIM_BATCH <= progress.files <= 20_000
        assert progress.claimed >= 20_000
    finally:
        service.request_stop()
        service.request_stop()  # at once: what is claimed stays in the journal
        thread.join(timeout=60)
    assert not thread.is_alive()
    journal = sqlite3.connect(tmp_path / "state" / "journal.sqlite3")
    assert journal.execute("SELECT count(DISTINCT relpath) FROM inputs").fetchone()[0] == 20_000
    journal.close()


def told_before_ready(config: Path, notify_socket: NotifySocket) -> list[dict[str, str]]:
    """What `remixd run` told systemd before READY=1; the service is stopped again."""
    environ = {"IDEOGRAM_API_KEY": TEST_KEY, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"}
    service = make_service(config, "run", environ)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        ready = wait_for(lambda: next((m for m in notify_socket.messages if m.get("READY") == "1"), None))
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    return notify_socket.messages[: notify_socket.messages.index(ready)]


def test_a_rebuild_from_sidecars_keeps_systemd_informed_before_ready(
    tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket
) -> None:
    """The journal lost: the sidecars are read back before READY=1, and systemd hears of it as it goes."""
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    make_image(tmp_path / "inbox/a.jpg")
    first = make_service(config, "once", {"IDEOGRAM_API_KEY": TEST_KEY})
    assert first.run().done == 1
    for path in (tmp_path / "state").glob("journal.sqlite3*"):
        path.unlink()
    before = told_before_ready(config, notify_socket)
    assert before[0] == {
        "STATUS": "rebuilding from sidecars: 1 read, 0 jobs written",
        "EXTEND_TIMEOUT_USEC": "3000000",  # six paces of 0.5 s
        "WATCHDOG": "1",
    }


def test_a_journal_migrating_to_a_newer_schema_keeps_systemd_informed_before_ready(
    tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A year of journal made by an older remixd takes minutes to convert, before READY=1."""
    from remixd.journal import database
    from remixd.journal.schema import MIGRATIONS

    monkeypatch.setattr(database, "MIGRATING_STEPS", 1_000)  # a small journal converts in far fewer steps
    config = write_config(tmp_path, sandbox.base_url)
    (tmp_path / "state").mkdir(exist_ok=True)
    old = sqlite3.connect(tmp_path / "state" / "journal.sqlite3", isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:11], start=1):
        for statement in statements:
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?)", (version,))
    old.close()
    before = told_before_ready(config, notify_socket)
    assert before[0] == {
        "STATUS": "bringing the journal up to this remixd's schema (once, after an upgrade)",
        "EXTEND_TIMEOUT_USEC": "3000000",  # six paces of 0.5 s
        "WATCHDOG": "1",
    }


def journal_of_finished_inputs(state_dir: Path, count: int) -> Path:
    """A journal holding `count` finished inputs, pages of them that a start (open, recovery) never reads."""
    journal, now = SqliteJournal(state_dir / JOURNAL_NAME), SYSTEM_CLOCK.utcnow()
    ids = journal.claim_many([Candidate("/gone", f"photo-{n:05d}-{'x' * 60}.jpg", n, n, now) for n in range(count)])
    for input_id in ids:
        assert input_id is not None
        journal.finish_input(input_id, "vanished")
    journal.close()
    return state_dir / JOURNAL_NAME


def test_the_whole_journal_is_checked_after_ready_and_a_damaged_page_stops_the_daemon_with_exit_3(
    tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket
) -> None:
    """The page check reads every page, seconds for a year of journal: READY=1 does not wait for it (README "A
    million files"), and damage it finds stops remixd as SIGTERM would, with exit 3 (not restarted by the unit),
    its path and the fix."""
    config = write_config(tmp_path, sandbox.base_url)
    journal = journal_of_finished_inputs(tmp_path / "state", 2_000)
    pages = journal.stat().st_size // 4096
    with journal.open("r+b") as file:  # a torn page deep in the inputs, as a bad disk leaves it
        file.seek((pages - 2) * 4096)
        file.write(b"\xde\xad" * 2048)
    daemon = Daemon(config, {**ENV, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"})
    assert daemon.process.wait(timeout=60) == 3
    daemon.reap()
    names = notify_socket.names()
    assert "READY" in names and "STOPPING" in names[names.index("READY") :]
    events = [event["event"] for event in daemon.events()]
    assert events.index("remixd.started") < events.index("remixd.journal.damaged") < events.index("remixd.stopped")
    told = daemon.log_path.read_text(encoding="utf-8")
    assert f"remixd: the journal {journal} is damaged" in told and f"move {journal} and its -wal" in told
    assert "Traceback" not in told


def test_a_sound_journal_is_checked_after_ready_and_the_daemon_goes_on(
    tmp_path: Path, sandbox: SandboxServer, notify_socket: NotifySocket
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    journal_of_finished_inputs(tmp_path / "state", 2_000)
    daemon = Daemon(config, {**ENV, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"})
    wait_for(lambda: any(e["event"] == "remixd.journal.checked" for e in daemon.events()), message="the check")
    assert daemon.process.poll() is None
    assert "READY" in notify_socket.names()
    make_image(tmp_path / "inbox/a.jpg")
    wait_for(lambda: (tmp_path / "done/a.jpg").exists(), message="a.jpg to be done")
    assert daemon.stop() == 0
