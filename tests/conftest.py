"""Fixtures every tier uses: a sandbox on loopback, daemons reaped, no leaked threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, Daemon


@pytest.fixture(autouse=True)
def reap_daemons() -> Iterator[None]:
    yield
    while Daemon.started:
        Daemon.started.pop().reap()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    # Small images keep the suite fast; a user's sandbox answers the declared resolution (test_images.py).
    server = SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY}), output_scale=0.25))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Threads remixd keeps for the life of the process, touching no file: the one that cuts HTTP exchanges at
# their deadlines (ideogram/bounded.py).
PROCESS_THREADS = ("remixd-http-deadlines",)


@pytest.fixture(autouse=True)
def no_leaked_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every thread a test starts (workers, watchers, servers) is gone when it ends: a leaked thread would
    keep writing into the next test's folders. A test module may name threads its module-wide fixtures own
    (`MODULE_THREADS`, name prefixes): they end with the module."""
    before = set(threading.enumerate())
    owned = (*PROCESS_THREADS, *getattr(request.module, "MODULE_THREADS", ()))
    yield
    deadline = time.monotonic() + 10
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.name.startswith(owned)]
        if not leaked:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"threads left running: {sorted(t.name for t in leaked)}")
        time.sleep(0.02)
