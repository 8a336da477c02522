"""The worker threads: they take claimed inputs from one queue, count what is outstanding and beat while busy.

A busy thread beats at every step it takes (the gates call `beat`), so the watchdog can tell a slow input from a
hung thread; an idle thread cannot hang. What is still queued when the daemon stops stays claimed in the
journal for the next start (README, "The journal decides").
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable

from remixd.clock import Clock
from remixd.intake.backlog import Claimed

# Workers with the next input prepared, waiting for a place at the API, beyond the pipeline's depth.
READY_WORKERS = 4


def workers_for(max_in_flight_images: int) -> int:
    """The pipeline's depth in workers: one per place at the API (sending, or polling its generation), as many
    again downloading and writing what just ended (generations end in bunches), and some with the next input
    ready. With only a fixed few beyond the places, a place that freed often found no worker with an input
    ready, and the API stood idle until one had written its results (python -m bench --only async_v2)."""
    return 2 * max_in_flight_images + READY_WORKERS


class WorkerPool:
    def __init__(self, *, stop: threading.Event, drain: threading.Event, clock: Clock) -> None:
        self._clock = clock
        self._stop = stop  # abort: workers end without taking more work
        self._drain = drain  # stopping: what is taken from the queue is deferred, not processed
        self._work: queue.Queue[Claimed | None] = queue.Queue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._beats: dict[int, float] = {}  # busy worker thread -> last heartbeat (monotonic)
        self._busy = 0
        self.outcomes: Counter[str] = Counter()
        self._threads: list[threading.Thread] = []

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def queued(self) -> int:
        return self._work.qsize()

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    def enqueue(self, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        with self._lock:
            self._outstanding += len(claimed)
        for item in claimed:
            self._work.put(item)

    @property
    def size(self) -> int:
        return len(self._threads)

    def start(
        self, count: int, process: Callable[[Claimed], str], on_done: Callable[[Counter[str], int], None]
    ) -> None:
        """Start `count` threads that `process` each claimed input; `on_done` hears the outcomes so far and
        how many inputs are outstanding after each one."""
        for number in range(len(self._threads), len(self._threads) + count):
            thread = threading.Thread(
                target=self._work_loop, args=(process, on_done), name=f"remixd-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work_loop(self, process: Callable[[Claimed], str], on_done: Callable[[Counter[str], int], None]) -> None:
        while True:
            item = self._work.get()
            if item is None or self._stop.is_set():
                return
            with self._lock:
                self._busy += 1
            self.beat()
            try:
                # Stopping: what is still queued stays claimed in the journal for the next start.
                outcome = "deferred" if self._drain.is_set() else process(item)
            finally:
                with self._lock:
                    self._beats.pop(threading.get_ident(), None)  # idle workers cannot hang
                    self._busy -= 1
                    self._outstanding -= 1
                    self.outcomes[outcome] += 1
            on_done(self.outcomes, self._outstanding)

    def beat(self) -> None:
        with self._lock:
            self._beats[threading.get_ident()] = self._clock.monotonic()

    def healthy(self, hung_after: float) -> bool:
        """Every thread alive, and no busy one silent for longer than `hung_after` seconds."""
        with self._lock:
            oldest = min(self._beats.values(), default=None)
        if oldest is not None and self._clock.monotonic() - oldest > hung_after:
            return False
        return all(thread.is_alive() for thread in self._threads)

    def join(self) -> None:
        """End every thread: each takes one None from the queue after the work before it."""
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=2.0)
