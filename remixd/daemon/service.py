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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

from remixd.config.model import Config, InboxConfig
from remixd.daemon.connection import KeyProbe
from remixd.daemon.folders import check_folders, remove_stale_temps
from remixd.daemon.notify import Notifier
from remixd.daemon.parts import Parts
from remixd.daemon.status import status_line, write_status
from remixd.errors import ConfigError, RemixdError
from remixd.intake.backlog import Backlog, Claimed
from remixd.journal.sqlite import JOURNAL_NAME

if TYPE_CHECKING:
    from remixd.daemon.metrics import MetricsServer, Snapshot
    from remixd.review.pages import Live
    from remixd.review.server import ReviewServer

log = structlog.get_logger(__name__)

Mode = Literal["run", "once"]
REQUEUE_S = 5.0  # a failed worker's input is queued again after this, doubling per failure
REQUEUE_MAX_S = 600.0
HOUSEKEEPING_S = 5.0  # status file and STATUS= refresh while idle; no busy loop
HUNG_MARGIN_S = 60.0  # beyond the HTTP timeouts before a silent busy worker counts as hung
EXTRA_WORKERS = 4  # workers beyond the in-flight ceiling: downloads and writes happen outside the slots
QUEUED_PER_WORKER = 2  # the queue is topped up from the journal to this many inputs per worker (intake.backlog)


@dataclass(frozen=True)
class Summary:
    done: int
    failed: int
    duplicate: int
    vanished: int
    deferred: int
    withheld_images: int  # answered, paid for, and kept back by Ideogram's safety check


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
        self._later_lock = threading.Lock()
        self._later: list[tuple[float, Claimed]] = []  # (when, input) queued again after its worker failed
        self._failures: dict[int, int] = {}
        self._now = threading.Event()  # a second stop signal: exit at once, even under a request just sent
        self._metrics: MetricsServer | None = None
        self._ui: ReviewServer | None = None
        self._opened = False  # open() went through: there is a status to report
        self._started = self.clock.utcnow()  # `once` counts what was withheld from here on
        self._withheld_images = 0
        self.ready = threading.Event()  # READY=1 sent: /readyz answers 200

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
                config.metrics, self.parts.api_metrics, self._snapshot, healthy=self._healthy, ready=self.ready.is_set
            )
        for inbox in config.inboxes:
            check_folders(inbox, config.source.parent)
        self._opened = True

    def _start_ui(self) -> None:
        """The review page (README, "The review page"): loaded only when `ui:` is configured."""
        from remixd.config.credentials import read_ui_token
        from remixd.daemon.operator import retry_failed
        from remixd.review.server import ReviewServer

        if self.config.ui is None:
            return
        self._ui = ReviewServer(
            self.config.ui,
            token=read_ui_token(self.config.ui),
            journal_path=self.config.state_dir / JOURNAL_NAME,
            config=lambda: self.config,
            live=self._live,
            retry=lambda input_id: retry_failed(self.config, input_ids=[input_id]).lines,
            reroll=self._reroll,
            clock=self.clock,
        )
        self._ui.start()

    def _reroll(self, input_id: int) -> list[str]:
        """The review page's Re-roll: `remixd reroll --new-seed --yes` for one done input."""
        from remixd.daemon.reroll import find_rerolls, send_rerolls

        record = self.journal.get_input(input_id)
        if record.state != "done" or record.disposed_to is None:
            return [f"{record.relpath} is not a done input in a done folder: nothing was sent"]
        orders, problems = find_rerolls(self.config, [Path(record.disposed_to)])
        return problems + list(send_rerolls(self.config, orders))

    def _live(self) -> Live:
        from remixd.review.pages import Live

        return Live(self.pool.queued, self.limiter.in_flight, self.limiter.ceiling, tuple(self._paused()))

    def _snapshot(self) -> Snapshot:
        from remixd.daemon.metrics import Snapshot

        oldest = self.journal.oldest_claim()
        spent = self.gates.budget.spent_today()
        return Snapshot(
            discovered=dict(self.intake.counters.claimed),
            missed_by_events=self.intake.counters.missed_by_events,
            outcomes=dict(self.outcomes),
            queue_depth=self.pool.queued,
            oldest_pending_age_s=0.0 if oldest is None else (self.clock.utcnow() - oldest).total_seconds(),
            in_flight_images=self.limiter.in_flight,
            ceiling=self.limiter.ceiling,
            spend_usd_today=spent.usd,
            spend_images_today=spent.images,
            paused=int(bool(self.gates.auth.reason or self.gates.budget_pause.reason or self.intake.paused)),
        )

    def run(self) -> Summary:
        """Run until stopped (`run`) or until every input present is finished (`once`)."""
        self._started = self.clock.utcnow()
        self.open()
        try:
            self._start_ui()
            self._recover()
            self.pool.start(self.config.api.max_in_flight_images + EXTRA_WORKERS, self._process, self._processed)
            # The scans begin here and go on in the loop (README "A million files"): READY=1 waits for the
            # journal and the watchers, never for a backlog.
            self.intake.start(watch=self.mode == "run")
            self.notifier.ready(self._status_line())
            self.ready.set()
            log.info("remixd.started", mode=self.mode, inboxes=len(self.config.inboxes), watch=self.intake.modes)
            self._loop()
        finally:
            self._shutdown()
        return Summary(
            self.outcomes["done"],
            self.outcomes["failed"],
            self.outcomes["duplicate"],
            self.outcomes["vanished"],
            self.outcomes["deferred"],
            self._withheld_images,
        )

    def _loop(self) -> None:
        next_housekeeping, next_ping, probe = 0.0, 0.0, KeyProbe(self.gates.auth, refresh=self._reread_key)
        # WATCHDOG=1 at least every WatchdogSec/2 (`watchdog_interval_s`): the loop wakes twice as often, and
        # while a scan keeps it busy each turn is a slice of milliseconds, so no ping is ever late.
        heartbeat = self.notifier.watchdog_interval_s
        tick = min(HOUSEKEEPING_S, heartbeat / 2) if heartbeat else HOUSEKEEPING_S
        while not self.drain.is_set():
            scanning = self.intake.scanning
            self.backlog.grew(self.intake.step(timeout=tick))
            self._feed()
            self.pool.enqueue(self._due())
            if scanning and not self.intake.scanning:
                self._housekeeping()  # systemd and status.json learn at once that the scan is done
            if self._reload_requested.is_set():
                self._reload()
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
            if self.mode == "once" and (self.gates.auth.reason or self.gates.budget_pause.reason):
                # `once` must end: what waits for a key or for tomorrow's budget stays in the journal.
                self.gave_up = self.gates.auth.reason or self.gates.budget_pause.reason
                log.error(
                    "remixd.once.paused",
                    reason=self.gave_up,
                    hint="the waiting inputs stay in their inbox and are picked up by the next run",
                )
                self.stop.set()
                return
        self._drain()

    def _drain(self) -> None:
        """Stop intake; give in-flight inputs `shutdown_grace_s` to finish; then leave the rest to the journal,
        once every request already sent has its answer."""
        self.notifier.stopping()
        self.intake.stop()
        deadline = self.clock.monotonic() + self.config.shutdown_grace_s
        log.info("remixd.stopping", in_flight=self.pool.busy, grace_s=self.config.shutdown_grace_s)
        # A worker waiting at a pause (a refused key, a spent budget) has nothing in flight: waiting the grace
        # for it would only hold a Ctrl-C for `shutdown_grace_s`; the journal keeps its input for the next run.
        while self._working() and not self.stop.is_set() and self.clock.monotonic() < deadline:
            self.clock.wait(self.stop, 0.05)
        self.stop.set()  # no request starts from here on
        self._await_sent_requests()

    def _working(self) -> int:
        """Busy workers that are not waiting at a pause."""
        return self.pool.busy - self.gates.auth.waiting - self.gates.budget_pause.waiting

    def _await_sent_requests(self) -> None:
        """A request already sent is waited for up to its own deadline (api.timeout_s): stopping under it would
        leave a possible payment that the restart pays for again (README, "Stopping"). The unit's
        TimeoutStopSec covers shutdown_grace_s plus that deadline; only a second signal cuts the wait short,
        and then the journal keeps those requests as sent, for api.after_crash."""
        if not self.limiter.in_flight or self._now.is_set():
            return
        timeout_s = self.config.api.timeout_s
        log.info("remixd.stopping.awaiting_answers", in_flight_images=self.limiter.in_flight, deadline_s=timeout_s)
        ends = self.clock.monotonic() + timeout_s
        while self.limiter.in_flight and not self._now.is_set() and self.clock.monotonic() < ends:
            self.clock.wait(self._now, 0.05)

    def _shutdown(self) -> None:
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
        if self._feed():
            log.info("remixd.recover.resumed", inputs=self.journal.counts()["claimed"])

    def _feed(self) -> int:
        """Top the workers' queue up from the journal once it runs low; the number of inputs queued."""
        workers = self.config.api.max_in_flight_images + EXTRA_WORKERS
        if self.pool.queued >= workers:
            return 0
        taken = self.backlog.take(workers * QUEUED_PER_WORKER - self.pool.queued)
        self.pool.enqueue(taken)
        return len(taken)

    def _processed(self, outcomes: Counter[str], outstanding: int) -> None:
        if self._progress is not None:
            self._progress(outcomes, outstanding)
        workers = self.config.api.max_in_flight_images + EXTRA_WORKERS
        if self.mode == "once" or (self.pool.queued < workers and not self.backlog.exhausted):
            self.intake.wake()  # the loop checks whether everything is finished, or tops the queue up

    def _process(self, item: Claimed) -> str:
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
        self._retry_later(item)
        return "deferred"

    def _retry_later(self, item: Claimed) -> None:
        """A claimed input whose worker failed is queued again, after a backoff that doubles per failure; left
        alone it stayed claimed, and never processed, until the next start. `once` leaves it to the next run."""
        if self.mode != "run":
            return
        with self._later_lock:
            failures = self._failures[item.input_id] = self._failures.get(item.input_id, 0) + 1
            delay = min(REQUEUE_MAX_S, REQUEUE_S * 2 ** (failures - 1))
            self._later.append((self.clock.monotonic() + delay, item))

    def _due(self) -> list[Claimed]:
        now = self.clock.monotonic()
        with self._later_lock:
            due = [item for when, item in self._later if when <= now]
            self._later = [(when, item) for when, item in self._later if when > now]
        return due

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

    # -- reload, status --------------------------------------------------------------------------------------

    def _reload(self) -> None:
        from remixd.config.load import load_config

        self._reload_requested.clear()
        self.notifier.reloading(round(self.clock.monotonic() * 1_000_000))
        try:
            new = load_config(self.config.source)
        except ConfigError as error:
            for problem in error.problems:
                log.error("remixd.reload.refused", problem=str(problem))
            log.error("remixd.reload.kept_old_config", hint="fix the config and send SIGHUP again")
        else:
            try:
                self._reload_api(new)
            except ConfigError as error:
                for problem in error.problems:
                    log.error("remixd.reload.refused", problem=str(problem))
                self.notifier.ready(self._status_line())
                return
            self.intake.stop()
            for inbox in new.inboxes:
                check_folders(inbox, new.source.parent)
            self.config = new
            self.limiter.set_maximum(new.api.max_in_flight_images)
            # A higher ceiling needs the workers to fill it; a lower one keeps its idle workers, the limiter
            # bounds what they send.
            missing = new.api.max_in_flight_images + EXTRA_WORKERS - self.pool.size
            if missing > 0:
                self.pool.start(missing, self._process, self._processed)
            self.gates.budget.reconfigure(new.budget)
            if self.gates.budget_pause.is_paused:
                # The caps may have been raised: the next submission decides again (and pauses again if the
                # day's budget is still spent), instead of waiting for UTC midnight.
                self.gates.budget_pause.resume()
                log.warning("remixd.budget.resumed", reason="configuration reloaded")
            self.intake = self.parts.intake(new.inboxes)
            self.backlog.inboxes = new.inboxes
            self.intake.start(watch=self.mode == "run")
            log.info("remixd.reload.done", inboxes=len(new.inboxes), rules=len(new.rules))
        self.notifier.ready(self._status_line())

    def _reread_key(self) -> None:
        """Before a key probe: a key that was fixed where the config says it is (a key file, the credential)
        is read again and used, without a reload (README "How remixd keeps files and money safe")."""
        connection = self.parts.connection
        if not connection.is_current(self.config.api):
            api = self.config.api
            self.client.swap(connection.build_client(self.config, self.parts.api_metrics), sandbox=api.sandbox)
            log.info("remixd.api.key_reread", hint="the key changed where the config points; trying it now")

    def _reload_api(self, new: Config) -> None:
        """A new key or API setting takes effect for the next request; a reload also lifts an auth pause
        (the operator fixed something; if not, the next 401 pauses again)."""
        connection = self.parts.connection
        if not connection.is_current(new.api):
            self.client.swap(connection.build_client(new, self.parts.api_metrics), sandbox=new.api.sandbox)
            log.info("remixd.reload.api_changed")
        if self.gates.auth.is_paused:
            self.gates.auth.resume()
            log.warning("remixd.api.resumed", reason="configuration reloaded")
        if new.metrics != self.config.metrics:
            log.warning("remixd.reload.metrics_unchanged", hint="metrics.listen takes effect at the next start")

    def _paused(self) -> list[str]:
        """Why work waits: a rejected key, the day's budget, then each missing inbox."""
        paused = [reason for reason in (self.gates.auth.reason, self.gates.budget_pause.reason) if reason]
        return paused + self.intake.paused

    def _status_line(self) -> str:
        scanned = self.intake.progress.files if self.intake.scanning else None
        return status_line(len(self.config.inboxes), self.pool.queued, self.limiter.in_flight, self._paused(), scanned)

    def _housekeeping(self) -> None:
        self.notifier.status(self._status_line())
        self._write_status()
        self.parts.upkeep.step()

    def _write_status(self, stopped: bool = False) -> None:
        if not self._opened:  # open() failed before there was anything to report
            return
        write_status(
            self.config.state_dir,
            running=not stopped,
            paused=self._paused(),
            inboxes=self.intake.modes,
            queued=self.pool.queued,
            in_flight_images=self.limiter.in_flight,
            ceiling=self.limiter.ceiling,
            missed_by_events=self.intake.counters.missed_by_events,
            updated_at=self.clock.wall(),
            scan=self.intake.progress.as_dict(),
        )
