"""The parts the daemon runs, made from one config: the building half of the composition root.

`build_parts` makes, in the order that fails earliest for the user, everything `Service` runs: the clock, the
API connection and its client (the key is looked up here: no key, no start), the journal, the limiter, the
pauses and the budget (the gates), the worker, the worker pool and a factory for the intake (a reload makes
a new intake for the new inboxes). `Service(parts)` wires them to each other and runs them. A test builds
the parts it wants to change (a limiter that records, a fake clock, another retry policy) and passes them in,
rather than subclassing the service.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from remixd.clock import Clock
from remixd.config.model import Config, InboxConfig
from remixd.daemon.connection import ApiConnection, CurrentClient
from remixd.daemon.notify import Notifier
from remixd.daemon.pool import WorkerPool
from remixd.daemon.rebuild import StartProgress
from remixd.daemon.space import SpaceWatch, StatVfs
from remixd.intake import companions
from remixd.intake.inbox import IntakeCounters
from remixd.intake.loop import Intake
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.journal.upkeep import Upkeep
from remixd.work.budget import Budget
from remixd.work.gates import Gates
from remixd.work.poll import PollSettings
from remixd.work.retry import InflightLimiter, Pause, RetryPolicy
from remixd.work.worker import Worker

if TYPE_CHECKING:
    from remixd.daemon.metrics import ApiMetrics

IntakeFactory = Callable[[Sequence[InboxConfig]], Intake]


MIGRATING_PACE_S = 5.0  # between two words to systemd while the journal migrates


@dataclass(frozen=True)
class Parts:
    config: Config
    clock: Clock
    connection: ApiConnection  # builds a new client when a reload changes the API settings or the key
    client: CurrentClient
    journal: SqliteJournal
    upkeep: Upkeep  # compacts what is older than journal.keep_days, from the housekeeping
    limiter: InflightLimiter
    gates: Gates  # holds the stop switch every wait gives way to
    worker: Worker
    pool: WorkerPool
    drain: threading.Event  # stopping: no new work; what is in flight finishes within shutdown_grace_s
    intake: IntakeFactory
    api_metrics: ApiMetrics | None  # set when the config has a metrics section; the service serves them
    space: SpaceWatch  # the state fs's free space, from the housekeeping: pauses submissions when nearly full

    def close(self) -> None:
        self.journal.close()
        self.connection.close()


def build_parts(
    config: Config,
    *,
    environ: Mapping[str, str],
    session: requests.Session | None = None,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
    limiter: InflightLimiter | None = None,
    statvfs: StatVfs = os.statvfs,
) -> Parts:
    """Everything the daemon runs for `config`; raises ConfigError (no key, a key file unreadable) or
    JournalError (state_dir unusable) with nothing left open."""
    clock = clock or Clock()
    api_metrics = _api_metrics() if config.metrics is not None else None
    connection = ApiConnection(environ, session or requests.Session(), clock)
    try:
        client = CurrentClient(connection.build_client(config, api_metrics), sandbox=config.api.sandbox)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        journal = SqliteJournal(config.state_dir / JOURNAL_NAME, clock, migrating=_migrating(environ, clock))
    except BaseException:
        connection.close()  # a sandbox it started stops with it
        raise
    limiter = limiter or InflightLimiter(config.api.max_in_flight_images, clock)
    stop, drain = threading.Event(), threading.Event()
    pool = WorkerPool(stop=stop, drain=drain, clock=clock)
    budget = Budget(config.budget, journal, clock)
    gates = Gates(stop, Pause(clock), Pause(clock), limiter, budget, clock, beat=pool.beat, space=Pause(clock))
    counters = IntakeCounters()  # one set for the daemon's life: a reload's new intake counts on

    def intake(inboxes: Sequence[InboxConfig]) -> Intake:
        return Intake(inboxes, journal, clock=clock, counters=counters, state_dir=config.state_dir)

    return Parts(
        config=config,
        clock=clock,
        connection=connection,
        client=client,
        journal=journal,
        upkeep=Upkeep(journal, config.journal.keep_days, clock),
        limiter=limiter,
        gates=gates,
        worker=Worker(
            journal,
            client,
            gates,
            _with_after_crash(policy or RetryPolicy(), config),
            clock=clock,
            stem_waits=companions.stem_waits,
            sandbox=lambda: client.sandbox,
            polls=PollSettings(config.api.poll_interval_s, config.api.timeout_s),
        ),
        pool=pool,
        drain=drain,
        intake=intake,
        api_metrics=api_metrics,
        space=SpaceWatch(config.state_dir, config.journal.min_free_mb, gates.space, statvfs),
    )


def _api_metrics() -> ApiMetrics:
    from remixd.daemon.metrics import ApiMetrics  # loaded only when metrics are configured: prometheus_client

    return ApiMetrics()


def _with_after_crash(policy: RetryPolicy, config: Config) -> RetryPolicy:
    """The configured api.after_crash wins over a policy passed in (a test's fast backoff keeps it too)."""
    return dataclasses.replace(policy, after_crash=config.api.after_crash)


def _migrating(environ: Mapping[str, str], clock: Clock) -> Callable[[], None]:
    """systemd hears from a start held up by the journal's migration to a newer schema: a year of journal takes
    minutes, and a start silent for TimeoutStartSec (90 s by default) is killed and begins it again."""
    notifier = Notifier(environ)
    heartbeat = notifier.watchdog_interval_s
    progress = StartProgress(notifier, clock, min(MIGRATING_PACE_S, heartbeat / 2) if heartbeat else MIGRATING_PACE_S)
    return lambda: progress("bringing the journal up to this remixd's schema (once, after an upgrade)")
