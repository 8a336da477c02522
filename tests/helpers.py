"""Shared test helpers: tiny images, configs pointing at a sandbox, a daemon subprocess, bounded waits."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
import structlog
import yaml
from PIL import Image

from remixd import cli, httpd
from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.daemon.notify import Notifier
from remixd.daemon.parts import build_parts
from remixd.daemon.service import Mode, Service
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse
from remixd.journal import packing

REPO = Path(__file__).resolve().parents[1]

# The seed example's request (tests/fixtures/reference/seed-remix-api.txt) as it reaches the API: what the client
# sends and the sandbox must receive, field by field.
SEED_WIRE_FIELDS = {
    "prompt": "A serene tropical beach",
    "model": "V_1",
    "aspect_ratio": "ASPECT_10_16",
    "image_weight": 50,
    "seed": 12345,
    "magic_prompt_option": "AUTO",
    "negative_prompt": "brush strokes, painting",
}

TEST_KEY = "test-key-5f1c9a77d2"

# Names every file-writing stage must survive, and a stand-in content hash.
LONG_NAME = "é" * 125 + "x.jpg"  # 255 bytes in UTF-8
ODD_NAMES = [
    "plain.jpg",
    "with space.jpg",
    "ünïcødé 画像.png",
    "new\nline.jpg",
    "-leading-dash.jpg",
    LONG_NAME,
]
SHA = "0123456789abcdef" * 4


class FakeClock(Clock):
    """Time that moves only when told: `advance(seconds)`, or a wait that times out (it returns at once,
    having moved the clock by its timeout). Drives a backoff, a drain, a pause or a hang through hours with
    the production policy, in milliseconds. `now` is the monotonic reading; the wall clock starts at `start`.

    A whole service on threads needs `idle_s`: a timed wait first gives the other threads that much real time
    to end it (a worker that finished, an event) and moves the clock only when none did. Without it, the
    service's loop would race the clock ahead by its every tick while a worker's real request is in flight."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, tzinfo=UTC), *, idle_s: float = 0.0) -> None:
        self.now = 0.0
        self._epoch = start.timestamp()
        self._idle_s = idle_s
        self.waits: list[float] = []  # every timed wait that moved the clock, in seconds, in order

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self._epoch + self.now

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def wait(self, waitable: threading.Event | threading.Condition, timeout: float | None) -> bool:
        if isinstance(waitable, threading.Event) and waitable.is_set():
            return True
        if timeout is None:
            return waitable.wait(30.0)  # an untimed wait still needs a real bound in a test
        if self._idle_s and waitable.wait(min(self._idle_s, timeout)):
            return True
        self.waits.append(timeout)
        self.advance(timeout)
        return waitable.wait(0)  # a Condition lets go of its lock for a moment, as a real wait would


def make_service(config_path: Path, mode: Mode, environ: dict[str, str], **parts: Any) -> Service:
    """A service on the config at `config_path`, its parts built as `remixd run` builds them; `parts` swaps
    some (clock, policy, limiter, session) and `environ` stands for the process environment."""
    return Service(
        build_parts(load_config(config_path), environ=environ, **parts), mode=mode, notifier=Notifier(environ)
    )


def run_cli(*argv: str) -> tuple[int, str]:
    """`remixd ARGV…` in process: (exit status, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = structlog.get_config()  # main() configures logging for the process; give it back afterwards
    try:
        with redirect_stdout(out), redirect_stderr(err):
            status = cli.main(list(argv))
    finally:
        structlog.configure(**saved)
    return status, out.getvalue() + err.getvalue()


def send_remix(
    client: RemixApi, request: RemixRequest, image: bytes, filename: str, content_type: str
) -> RemixResponse:
    """One POST of `request` with `image`, encoded and sent as a worker sends it (`upload`, then `remix`)."""
    return client.remix(request, client.upload(request, image, filename, content_type))


def make_image(
    path: Path, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 80, 40), fmt: str | None = None
) -> Path:
    """Write a small real image (format from the extension unless `fmt` says otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def image_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (10, 120, 200), fmt: str = "JPEG"
) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02, message: str = "condition"
) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def reset_mid_request(address: tuple[str, int], partial: bytes = b"GET /metr") -> None:
    """A client that sends part of a request, then closes its connection as a reset (killed, its page closed)."""
    client = socket.create_connection(address)
    client.sendall(partial)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def noting_errors(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once one of remixd's HTTP servers has dealt with a request that ended in an error."""
    dealt = threading.Event()
    handle_error = httpd.Server.handle_error

    def noting(server: httpd.Server, request: Any, client_address: Any) -> None:
        handle_error(server, request, client_address)
        dealt.set()

    monkeypatch.setattr(httpd.Server, "handle_error", noting)
    return dealt


def approx(expected: float) -> float:
    """`pytest.approx`, typed as the float it stands for, so a `Spend` or a tuple built with it type-checks."""
    return cast(float, pytest.approx(expected))


def remixd(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = subprocess.run(
        [sys.executable, "-m", "remixd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]
    return result


def sidecars(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.rglob("*.json"))]


POSTER: dict[str, Any] = {
    "name": "poster",
    "match": ["*.jpg", "*.jpeg", "*.png", "*.webp"],
    "request": {
        "prompt": "A serene tropical beach, {stem}",
        "model": "V_2",
        "aspect_ratio": "ASPECT_10_16",
        "image_weight": 50,
        "seed": 12345,
    },
}


def write_config(
    root: Path,
    base_url: str | None,
    *,
    rules: list[dict[str, Any]] | None = None,
    api: dict[str, Any] | None = None,
    inbox: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A config under `root` with one inbox (root/inbox -> root/outbox) pointing at the sandbox."""
    api_section: dict[str, Any] = {"sandbox": base_url is None, "max_in_flight_images": 4, "timeout_s": 20}
    if base_url is not None:
        api_section["base_url"] = base_url
    api_section.update(api or {})
    inbox_section: dict[str, Any] = {
        "path": "./inbox",
        "output": "./outbox",
        "done_dir": "./done",
        "failed_dir": "./failed",
        "settle_s": 0.2,
        "rescan_s": 30,
    }
    inbox_section.update(inbox or {})
    document: dict[str, Any] = {
        "api": api_section,
        "state_dir": "./state",
        "inboxes": [inbox_section],
        "rules": rules or [POSTER],
        "shutdown_grace_s": 10,
    }
    document.update(extra or {})
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    path = root / "remixd.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class Daemon:
    """`remixd run` in a subprocess, logging JSON lines to a file the test reads. Every one a test starts is
    killed (and its log closed) when the test ends, even when it fails half-way."""

    started: ClassVar[list[Daemon]] = []

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        Daemon.started.append(self)
        self.log_path = config.parent / "remixd.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "remixd", "run", "-c", str(config), "--log-format", "json"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )

    def events(self) -> list[dict[str, object]]:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_started(self) -> None:
        wait_for(
            lambda: any(e.get("event") == "remixd.started" for e in self.events()) or self.process.poll() is not None,
            message="remixd.started",
        )
        assert self.process.poll() is None, self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        finally:
            self._log.close()

    def reap(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._log.close()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` made read-only for this process: by permissions, or for root (who ignores them) by a read-only
    bind mount over it; skips the test where neither is possible."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot make {folder} read-only as root: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def exiftool(path: Path) -> dict[str, Any]:
    """Every tag exiftool reads from `path`, named GROUP:TAG (`XMP-dc:Description`, `PNG:Remixd`), with its
    warnings as `ExifTool:Warning`. `.ci/run` installs exiftool from Debian's libimage-exiftool-perl."""
    found = subprocess.run(
        ["exiftool", "-json", "-groupNames1", "-duplicates", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert found.stdout, f"exiftool read nothing from {path}: {found.stderr}"
    tags: dict[str, Any] = json.loads(found.stdout)[0]
    return tags


class FakeFs:
    """statvfs of a file system whose free space the test sets; raises while `broken`."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.broken = False
        self.asked: list[str] = []

    def __call__(self, path: str) -> os.statvfs_result:
        self.asked.append(path)
        if self.broken:
            raise OSError(5, "Input/output error")
        # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, ...: one-byte fragments keep the arithmetic exact
        return os.statvfs_result((4096, 1, 10**12, self.free, self.free, 10**5, 10**4, 10**4, 0, 255))


def old_journal(path: Path, version: int) -> sqlite3.Connection:
    """A journal made by the remixd of schema `version`, to write its rows into."""
    from remixd.journal.schema import MIGRATIONS

    old = sqlite3.connect(path, isolation_level=None)
    for name in ("pack_hash", "result_folder", "result_names"):  # the migrations' own: no row to call them on
        old.create_function(name, 1, lambda value: None)
    for name in ("result_stem", "result_ending"):
        old.create_function(name, 2, lambda *values: None)
    old.create_function("pack_texts", 3, lambda *values: None)
    packing.register(old)  # the search's triggers read packed jobs through it
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, statements in enumerate(MIGRATIONS[:version], start=1):
        for statement in statements:
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?)", (number,))
    return old
