"""The CLI in process, against the sandbox on loopback: what each command touches, and what it leaves alone."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from remixd import cli
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, run_cli, write_config


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other process listens on: the running daemon's metrics port."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_check_api_tries_only_the_key_beside_a_running_daemon(
    tmp_path: Path, sandbox: SandboxServer, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, sandbox.base_url, extra={"metrics": {"listen": f"127.0.0.1:{busy_port}"}})
    monkeypatch.setenv("IDEOGRAM_API_KEY", TEST_KEY)

    status, output = run_cli("check", "--api", "-c", str(config))

    assert status == 0, output
    assert "the API accepted the key (nothing was spent)" in output
    # Nothing but the key: no journal or state folder, no output, done or failed folders, and nothing billed.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inbox", "remixd.yaml"]
    assert (sandbox.ledger.images, sandbox.ledger.usd) == (0, 0.0)
    assert len(sandbox.received) == 1  # the one probe, an image_request with no prompt (a free 400)


def test_check_api_refuses_a_wrong_key_with_the_config_status(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    monkeypatch.setenv("IDEOGRAM_API_KEY", "wrong-key-0123456789")

    status, output = run_cli("check", "--api", "-c", str(config))

    assert status == cli.ExitStatus.CONFIG
    assert "refused the key" in output and "wrong-key-0123456789" not in output


def test_once_says_how_many_inputs_vanished_between_their_claim_and_their_request(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    for number in range(3):
        make_image(tmp_path / f"inbox/in-{number}.jpg", color=(number * 60, 90, 200))
    gone = make_image(tmp_path / "inbox/gone.jpg")
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)  # claimed by a run that stopped then
    journal.claim(str(tmp_path / "inbox"), "gone.jpg", gone.stat().st_size, gone.stat().st_mtime_ns)
    journal.close()
    gone.unlink()  # deleted by its owner before anything was sent for it
    monkeypatch.setenv("IDEOGRAM_API_KEY", TEST_KEY)

    status, output = run_cli("once", "-c", str(config))

    assert status == cli.ExitStatus.OK, output
    assert output.splitlines()[-1] == "3 done, 0 duplicates, 0 failed, 1 vanished"
    assert len(sandbox.received) == 3
