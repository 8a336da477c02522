"""The daemon: runs the parts `daemon/parts.py` built and owns the lifecycle (start, recover, run, reload,
drain, stop).

Threads: the caller's thread runs the intake loop and the housekeeping (status, systemd notify, probes);
worker threads take claimed inputs from a queue. Stages never call each other; everything meets here.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from remixd.config.model import InboxConfig
from remixd.daemon.connection import KeyProbe
from remixd.daemon.folders import check_folders, remove_stale_temps
from remixd.daemon.notify import Notifier
from remixd.daemon.pagecheck import PageCheck
from remixd.daemon.parts import Parts
from remixd.daemon.pool import workers_for
from remixd.daemon.progress import Summary
from remixd.daemon.rebuild import StartProgress, rebuild_from_sidecars
from remixd.daemon.reload import reload, reread_key
from remixd.daemon.requeue import Requeue
from remixd.daemon.stopping import drain
from remixd.daemon.views import Views
from remixd.errors import RemixdError
from remixd.intake.backlog import Backlog, Claimed
from remixd.logs import get_logger

if TYPE_CHECKING:
    from remixd.daemon.metrics import MetricsServer
    from remixd.review.server import ReviewServer

log = get_logger(__name__)

Mode = Literal["run", "once"]
HOUSEKEEPING_S = 5.0  # status file and STATUS= refresh while idle; no busy loop
HUNG_MARGIN_S = 60.0  # beyond the HTTP timeouts before a silent busy worker counts as hung
QUEUED_PER_WORKER = 2  # the queue is topped up from the journal to this many inputs per worker (intake.backlog)


class Service:
    """Runs the parts `daemon.parts.build_parts` made: start, recover, run, reload, drain, stop."""

    def __init__(
        self,
        parts: Parts,
        *,
        mode: Mode = "run",
        notifier: Notifier | None = None,
        progress: Callable[[Counter[str], int], None] | None = None,
    ) -> None:
        self.parts = parts
        self.config = parts.config
        self.clock = parts.clock
        self.mode = mode
        self.notifier = notifier or Notifier(os.environ)
        self.client = parts.client
        self.journal = parts.journal
        self.limiter = parts.limiter
        self.gates = parts.gates
        self.worker = parts.worker
        self.pool = parts.pool
        self.stop = parts.gates.stop  # abort: leave every unfinished job in the journal, now
        self.drain = parts.drain  # no new work; in-flight inputs finish within shutdown_grace_s
        self.intake = parts.intake(parts.config.inboxes)
        self.backlog = Backlog(parts.journal, parts.config.inboxes)  # what is claimed waits in the journal
        self.outcomes = self.pool.outcomes
        self.gave_up: str | None = None  # `once` stopped because submissions were paused: why
        self._progress = progress
        self._reload_requested = threading.Event()
        self._requeue = Requeue(self.clock)  # inputs queued again after their worker failed
        self._now = threading.Event()  # a second stop signal: exit at once, even under a request just sent
        self._metrics: MetricsServer | None = None
        self._ui: ReviewServer | None = None
        self._opened = False  # open() went through: there is a status to report
        self._started = self.clock.utcnow()  # `once` counts what was withheld from here on
        self._withheld_images = 0
        self.ready = threading.Event()  # READY=1 sent: /readyz answers 200
        self.page_check = PageCheck(parts.journal, self.clock, stopping=self.drain, on_damage=self.request_stop)
        self.views = Views(self)

    # -- signals (called from signal handlers: only set flags and wake the loop) -----------------------------

    def request_stop(self) -> None:
        if self.drain.is_set():
            self.stop.set()  # second signal: exit at once; the journal keeps what is unfinished
            self._now.set()
        self.drain.set()
        self.intake.wake()

    def request_reload(self) -> None:
        self._reload_requested.set()
        self.intake.wake()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def open(self) -> None:
        """What can still fail at start fails here, before READY=1: the metrics port, the folders. (The key
        and the journal were checked when the parts were built.)"""
        config = self.config
        if config.metrics is not None and self.parts.api_metrics is not None:
            from remixd.daemon import metrics  # loaded only when metrics are configured: prometheus_client

            self._metrics = metrics.serve(
                config.metrics,
                self.parts.api_metrics,
                self.views.snapshot,
                healthy=self._healthy,
                ready=self.ready.is_set,
            )
        for inbox in config.inboxes:
            check_folders(inbox, config.source.parent)
        self.parts.space.step()  # a nearly full state fs pauses submissions from the first one on
        self._opened = True

    def run(self) -> Summary:
        """Run until stopped (`run`) or until every input present is finished (`once`)."""
        self._started = self.clock.utcnow()
        self.open()
        try:
            self._ui = self.views.start_ui()
            self._recover()
            self.pool.start(workers_for(self.config.api.max_in_flight_images), self.process, self.processed)
            # The scans begin here and go on in the loop (README "A million files"): READY=1 waits for the
            # journal and the watchers, never for a backlog; the first inputs are at work before the watchers
            # are armed.
            self.backlog.grew(self.intake.head_start())
            self._feed()
            self.intake.start(watch=self.mode == "run")
            self.notifier.ready(self.views.status_line())
            self.ready.set()
            log.info("remixd.started", mode=self.mode, inboxes=len(self.config.inboxes), watch=self.intake.modes)
            self.page_check.start()  # after READY=1 and its line: it reads every page of the journal
            self._loop()
        finally:
            self._shutdown()
        if self.page_check.damage is not None:
            raise self.page_check.damage  # exit 3 with what to do, as when the start found it
        return Summary.of(self.outcomes, self._withheld_images)

    def _loop(self) -> None:
        next_housekeeping, next_ping, probe = 0.0, 0.0, KeyProbe(self.gates.auth, refresh=lambda: reread_key(self))
        heartbeat, tick = self.notifier.watchdog_interval_s, self._tick()
        while not self.drain.is_set():
            scanning = self.intake.scanning
            self.backlog.grew(self.intake.step(timeout=tick))
            self._feed()
            self.pool.enqueue(self._requeue.due())
            if scanning and not self.intake.scanning:
                self._housekeeping()  # systemd and status.json learn at once that the scan is done
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                reload(self)
            now = self.clock.monotonic()
            probe.step(self.client, now)
            if now >= next_housekeeping:
                self._housekeeping()
                next_housekeeping = now + HOUSEKEEPING_S
            if heartbeat and now >= next_ping and self._healthy():
                self.notifier.watchdog()
                next_ping = now + heartbeat / 2
            if self.mode == "once" and self._idle():
                return
            paused = next((pause.reason for pause in self.gates.pauses if pause.reason), None)
            if self.mode == "once" and paused:
                # `once` must end: what waits for a key, tomorrow's budget or free space stays in the journal;
                # what was already sent and paid for is drained, so its results are written by this run.
                self.gave_up = paused
                log.error(
                    "remixd.once.paused",
                    reason=self.gave_up,
                    hint="the waiting inputs stay in their inbox and are picked up by the next run",
                )
                break
        drain(
            self.config,
            self.clock,
            self.notifier,
            self.intake,
            self.pool,
            self.gates.pauses,
            self.limiter,
            self.stop,
            self._now,
        )

    def _tick(self) -> float:
        """How often the loop wakes: WATCHDOG=1 at least every WatchdogSec/2 (`watchdog_interval_s`) needs it
        twice as often, and while a scan keeps it busy each turn is a slice of milliseconds, so no ping is
        ever late."""
        heartbeat = self.notifier.watchdog_interval_s
        return min(HOUSEKEEPING_S, heartbeat / 2) if heartbeat else HOUSEKEEPING_S

    def _shutdown(self) -> None:
        self.page_check.join()  # `once` ends with its journal checked; a daemon stopping has cancelled it
        self.drain.set()
        self.stop.set()
        self.intake.stop()
        self.pool.join()
        if self.mode == "once":  # its summary line says what the safety check kept back of this run
            self._withheld_images = sum(found.withheld for found in self.journal.withheld(self._started))
        self._write_status(stopped=True)
        if self._ui is not None:
            self._ui.stop()
        self.parts.close()
        if self._metrics is not None:
            self._metrics.stop()
        log.info("remixd.stopped", **{key: value for key, value in sorted(self.outcomes.items())})

    # -- work ------------------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """The journal, not memory, says what to resume: temp files go, unfinished inputs are queued first."""
        remove_stale_temps(self.config.state_dir, self.config.inboxes)
        if self.journal.is_new():  # lost, deleted or moved: the sidecars say what was done and paid
            # Before READY=1 and before any claim, with systemd told as it goes (README "The sidecars are a
            # second journal").
            progress = StartProgress(self.notifier, self.clock, self._tick())
            rebuild_from_sidecars(self.journal, self.config.inboxes, progress)
        if self._feed():
            log.info("remixd.recover.resumed", inputs=self.journal.counts()["claimed"])

    def _feed(self) -> int:
        """Top the workers' queue up from the journal once it runs low; the number of inputs queued."""
        workers = workers_for(self.config.api.max_in_flight_images)
        if self.pool.queued >= workers:
            return 0
        taken = self.backlog.take(workers * QUEUED_PER_WORKER - self.pool.queued)
        self.pool.enqueue(taken)
        return len(taken)

    def processed(self, outcomes: Counter[str], outstanding: int) -> None:
        if self._progress is not None:
            self._progress(outcomes, outstanding)
        workers = workers_for(self.config.api.max_in_flight_images)
        if self.mode == "once" or (self.pool.queued < workers and not self.backlog.exhausted):
            self.intake.wake()  # the loop checks whether everything is finished, or tops the queue up

    def process(self, item: Claimed) -> str:
        inbox = self._current_inbox(item.inbox)
        try:
            return self.worker.process(item.input_id, inbox, self.config.rules_for(inbox)).outcome
        except RemixdError as error:  # e.g. the journal could not be written (a full state fs): said, not traced
            log.error(
                "remixd.worker.failed",
                input_id=item.input_id,
                kind=error.kind,
                error=error.message,
                hint=f"{error.hint}; the input stays claimed and is tried again" if error.hint else None,
            )
        except Exception:  # one bad input never stops the daemon (README, "The daemon keeps going"); it stays claimed
            log.exception(
                "remixd.worker.crashed",
                input_id=item.input_id,
                hint="this is a bug in remixd; the input stays claimed and is tried again",
            )
        if self.mode == "run":  # `once` leaves it to the next run
            self._requeue.later(item)
        return "deferred"

    def _current_inbox(self, inbox: InboxConfig) -> InboxConfig:
        """After a reload the same inbox path may have new settings: use them."""
        for current in self.config.inboxes:
            if current.path == inbox.path:
                return current
        return inbox

    def _idle(self) -> bool:
        return (
            self.pool.outstanding == 0
            and self.intake.pending == 0
            and not self.intake.scanning
            and self.backlog.exhausted
        )

    def _healthy(self) -> bool:
        """WATCHDOG=1 only while the watchers and every worker thread are alive, and no busy worker has gone
        without a heartbeat for longer than its longest legitimate blocking call: a worker beats before every
        request and every download, and each is bounded by its total deadline (ideogram/http.py, Deadline),
        so a slow API never gets the service killed while a hung worker still does."""
        api = self.config.api
        hung_after = max(api.timeout_s, api.download_timeout_s) + HUNG_MARGIN_S
        return self.pool.healthy(hung_after) and self.intake.watchers_alive()

    # -- status ----------------------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        self.notifier.status(self.views.status_line())
        self.parts.space.step()
        self._write_status()
        self.parts.upkeep.step()

    def _write_status(self, stopped: bool = False) -> None:
        if not self._opened:  # open() failed before there was anything to report
            return
        self.views.write_status(stopped=stopped)
