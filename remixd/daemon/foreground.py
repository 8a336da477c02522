"""`remixd run` and `remixd once` in the foreground: build the service from the config, wire the signals, run it.

The signal handlers only set flags and wake the loop (README, "Stopping"): SIGTERM/SIGINT finish the in-flight
work and a second one stops at once; SIGHUP reloads the config (`run`). `cli.py` turns what a run ends with into
its exit status.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from remixd import logs
from remixd.clock import Clock
from remixd.config.model import Config
from remixd.daemon.parts import build_parts
from remixd.daemon.progress import ProgressBar, Summary
from remixd.daemon.service import Service

log = logs.get_logger(__name__)


def run(config: Config) -> None:
    service = Service(build_parts(config, environ=os.environ), mode="run")

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "remixd.signal",
            signal=signal.Signals(signum).name,
            action="stopping now" if service.drain.is_set() else "finishing in-flight work",
        )
        service.request_stop()

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        service.request_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    service.run()


def once(config: Config, log_format: str, log_level: str) -> tuple[Summary, Service]:
    """Every input present, with a progress bar on a terminal; the summary, and the service it ran in."""

    def spent() -> tuple[int, float]:
        now = service.gates.budget.spent_today()
        return now.images - before.images, now.usd - before.usd

    progress = None
    if sys.stderr.isatty():
        progress = ProgressBar(sys.stderr, spent, Clock())
        logs.configure(log_format, log_level, stream=progress)  # log lines go above the bar
    service = Service(build_parts(config, environ=os.environ), mode="once", progress=progress)
    before = service.gates.budget.spent_today()

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        if not service.drain.is_set():  # the first: say what happens, and what a second one does
            print(
                "\nremixd: finishing the inputs in flight, the rest stay for the next run; "
                "press Ctrl-C again to stop at once",
                file=progress or sys.stderr,
                flush=True,
            )
        service.request_stop()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    summary = service.run()
    if progress is not None:
        progress.close()
    return summary, service
