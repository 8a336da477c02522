"""`remixd once`'s output: the progress bar on a terminal (finished inputs, spend so far, an ETA) and the
closing summary."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from remixd.clock import Clock


class ProgressBar:
    """`remixd once` on a terminal: one line, redrawn in place, with the run's spend and an ETA.

    The spend is of the requests sent, with how many images they asked for: a request counts as paid when it
    is sent, and results are downloaded and written outside the in-flight places, so with
    `max_in_flight_images: 1` the next inputs' requests are often sent (and paid) before the first input is
    finished. Showing the images sent beside the dollars keeps "1 done, $0.24" from reading as a
    miscount.

    Log lines are written through it (`write`): the bar's line is cleared first and the bar drawn again
    after, so a log line never starts glued to the end of the bar.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO, spent: Callable[[], tuple[int, float]], clock: Clock) -> None:
        self._stream = stream
        self._spent = spent  # (images, USD) of the requests this run has sent
        self._clock = clock
        self._lock = threading.RLock()
        self._started = clock.monotonic()
        self._line = ""  # the bar as last drawn; "" until the first input is finished
        self._pending = ""  # a log line's text until its newline arrives (print writes it in pieces)

    def __call__(self, outcomes: Counter[str], outstanding: int) -> None:
        finished = sum(outcomes.values())
        total = finished + outstanding
        filled = self.WIDTH * finished // total if total else self.WIDTH
        elapsed = self._clock.monotonic() - self._started
        eta = f"{elapsed / finished * outstanding:.0f}s" if finished and outstanding else "-"
        images, usd = self._spent()
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {finished}/{total}"
            f"  done {outcomes['done']}  failed {outcomes['failed']}  vanished {outcomes['vanished']}"
            f"  sent {images} image{'s' * (images != 1)} ${usd:.2f}  eta {eta}"
        )
        with self._lock:
            self._line = line
            self._stream.write(f"\r\x1b[K{line}")
            self._stream.flush()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                complete, _, self._pending = self._pending.rpartition("\n")
                self._stream.write(f"\r\x1b[K{complete}\n{self._line}")
            return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def close(self) -> None:
        with self._lock:
            self._stream.write("\n" if self._line else "")
            self._line = ""


@dataclass(frozen=True)
class Summary:
    done: int
    failed: int
    duplicate: int
    vanished: int
    deferred: int
    withheld_images: int  # answered, paid for, and kept back by Ideogram's safety check

    @classmethod
    def of(cls, outcomes: Counter[str], withheld_images: int) -> Summary:
        return cls(
            outcomes["done"],
            outcomes["failed"],
            outcomes["duplicate"],
            outcomes["vanished"],
            outcomes["deferred"],
            withheld_images,
        )


def summary_line(summary: Summary) -> str:
    """The line `remixd once` ends with: what became of the inputs it took."""
    return (
        f"{summary.done} done, {summary.duplicate} duplicates, {summary.failed} failed"
        + (f", {summary.vanished} vanished" if summary.vanished else "")  # removed before remixd could send them
        + (f", {summary.deferred} left for later" if summary.deferred else "")
        + (
            f", {summary.withheld_images} image{'s' * (summary.withheld_images != 1)} withheld"
            if summary.withheld_images
            else ""
        )
    )
