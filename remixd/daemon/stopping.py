"""How the daemon stops (README, "Stopping"): intake first, then in-flight inputs get `shutdown_grace_s` to
finish, then every request already sent is waited for up to its own deadline; what is left stays in the
journal for the next run."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from remixd.logs import get_logger

if TYPE_CHECKING:
    from remixd.clock import Clock
    from remixd.config.model import Config
    from remixd.daemon.notify import Notifier
    from remixd.daemon.pool import WorkerPool
    from remixd.intake.loop import Intake
    from remixd.work.retry import InflightLimiter, Pause

log = get_logger(__name__)


def drain(  # noqa: PLR0917 — the parts a stop touches, each passed as the service holds it now
    config: Config,
    clock: Clock,
    notifier: Notifier,
    intake: Intake,
    pool: WorkerPool,
    pauses: Sequence[Pause],
    limiter: InflightLimiter,
    stop: threading.Event,
    now: threading.Event,
) -> None:
    """Stop intake; give in-flight inputs `shutdown_grace_s` to finish; then leave the rest to the journal,
    once every request already sent has its answer. `stop` is set on return: no request starts after it;
    `now` is a second stop signal."""
    notifier.stopping()
    intake.stop()
    deadline = clock.monotonic() + config.shutdown_grace_s
    log.info("remixd.stopping", in_flight=pool.busy, grace_s=config.shutdown_grace_s)
    # A worker waiting at a pause (a refused key, a spent budget) has nothing in flight: waiting the grace
    # for it would only hold a Ctrl-C for `shutdown_grace_s`; the journal keeps its input for the next run.
    while pool.busy - sum(pause.waiting for pause in pauses) and not stop.is_set() and clock.monotonic() < deadline:
        clock.wait(stop, 0.05)
    stop.set()  # no request starts from here on
    _await_sent_requests(config, clock, limiter, now)


def _await_sent_requests(config: Config, clock: Clock, limiter: InflightLimiter, now: threading.Event) -> None:
    """A request already sent is waited for up to its own deadline (api.timeout_s): stopping under it would
    leave a possible payment that the restart pays for again (README, "Stopping"). The unit's
    TimeoutStopSec covers shutdown_grace_s plus that deadline; only a second signal cuts the wait short,
    and then the journal keeps those requests as sent, for api.after_crash."""
    if not limiter.in_flight or now.is_set():
        return
    timeout_s = config.api.timeout_s
    log.info("remixd.stopping.awaiting_answers", in_flight_images=limiter.in_flight, deadline_s=timeout_s)
    ends = clock.monotonic() + timeout_s
    while limiter.in_flight and not now.is_set() and clock.monotonic() < ends:
        clock.wait(now, 0.05)
