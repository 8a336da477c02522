"""The worker pool: outstanding counts and the hang detection the watchdog relies on, on a fake clock."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import cast

from remixd.config.model import InboxConfig
from remixd.daemon.pool import WorkerPool
from remixd.intake.backlog import Claimed
from tests.helpers import FakeClock, wait_for

HUNG_AFTER_S = 120.0  # the production margin is the HTTP timeout plus a minute: the fake clock passes it


def test_a_busy_worker_silent_past_the_margin_is_hung_and_healthy_again_once_done(tmp_path: Path) -> None:
    clock, release = FakeClock(), threading.Event()
    stop, drain = threading.Event(), threading.Event()
    done: list[int] = []

    def process(_item: Claimed) -> str:
        release.wait(10)  # a blocking call that never beats, like a stuck HTTP request
        return "done"

    pool = WorkerPool(stop=stop, drain=drain, clock=clock)
    pool.start(2, process, lambda _o, left: done.append(left))
    try:
        pool.enqueue([Claimed(1, _inbox(tmp_path))])
        wait_for(lambda: pool.busy == 1, timeout=10, message="the worker to take the input")
        clock.advance(HUNG_AFTER_S)
        assert pool.healthy(HUNG_AFTER_S)  # exactly at the margin: a slow request, not a hang
        clock.advance(0.5)
        assert not pool.healthy(HUNG_AFTER_S)
        release.set()
        wait_for(lambda: done == [0], timeout=10, message="the input to finish")
        assert pool.healthy(HUNG_AFTER_S)  # an idle worker cannot hang, however long it waits
        assert pool.outcomes == Counter(done=1) and pool.outstanding == 0
    finally:
        stop.set()
        release.set()
        pool.join()


def test_a_dead_worker_thread_is_unhealthy(tmp_path: Path) -> None:
    stop, drain = threading.Event(), threading.Event()
    pool = WorkerPool(stop=stop, drain=drain, clock=FakeClock())
    pool.start(1, lambda _item: "done", lambda _o, _n: None)
    assert pool.healthy(HUNG_AFTER_S)
    pool.join()  # the thread takes its None and ends, as a crashed one would
    assert not pool.healthy(HUNG_AFTER_S)


def test_what_is_taken_while_draining_is_deferred_not_processed(tmp_path: Path) -> None:
    stop, drain = threading.Event(), threading.Event()
    processed: list[Claimed] = []
    pool = WorkerPool(stop=stop, drain=drain, clock=FakeClock())
    drain.set()
    pool.enqueue([Claimed(1, _inbox(tmp_path)), Claimed(2, _inbox(tmp_path))])

    def process(item: Claimed) -> str:
        processed.append(item)
        return "done"

    pool.start(1, process, lambda _o, _n: None)
    wait_for(lambda: pool.outstanding == 0, timeout=10, message="the queue to empty")
    pool.join()
    assert processed == [] and pool.outcomes == Counter(deferred=2)


def _inbox(tmp_path: Path) -> InboxConfig:
    return cast("InboxConfig", tmp_path)  # the pool hands the item over untouched; only `process` reads it
