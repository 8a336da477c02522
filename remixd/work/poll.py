"""Waiting for an async v2 generation: poll `GET /v2/generations/{id}` until it completes or fails.

The generation id is in the journal before the first poll, so this is also how a job is resumed after a crash
or restart: it is polled, never sent again (README, "Async generations"). Every poller of the process shares one
`PollPacer`: together they stay under the organisation's poll limit (1,000 per 10 s) whatever the number in
flight, all wait out a 429's Retry-After, and each first poll is timed by how long generations of its rule have
been taking (a rule's route and rendering speed set that time; two rules do not share an estimate).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus

from remixd.clock import Clock
from remixd.errors import ApiRejected, ApiUnavailable, AuthError, JobFailed, Stopped
from remixd.ideogram.client import RemixApi
from remixd.ideogram.responses import GenerationState, RemixResponse
from remixd.journal.records import JobRecord, Journal
from remixd.logs import get_logger
from remixd.work.gates import Gates

log = get_logger(__name__)

POLL_WINDOW_S = 10.0
POLLS_PER_WINDOW = 800  # Ideogram allows 1,000 per organisation; the rest is left to its other clients
MIN_INTERVAL_S = 0.005
# Where generations usually end: a moving average of the ends seen, and of how far each lay from it (the
# spread, never taken as less than SPREAD_FLOOR of the usual time). Polls come a spread apart (no further
# than FOLLOW_UP of the usual time), the first two before the usual end (at the earliest FIRST_FLOOR of it),
# and ever less often from a spread past it. The sandbox's 0.5 s generations are seen within 5 ms of their
# end in two or three polls; the first poll at 97% and then every 1.5%, growing, saw some 16 ms late
# (python -m bench --only async_v2). An end seen between two polls further apart than SHARP intervals (the
# polls before any end was seen, api.poll_interval_s apart, or the late ones) teaches only that it lay
# between them: taken as their middle, the first ten of the bench (pending at 0.25 s, completed at 0.5 s)
# brought the estimate to 0.39 s, and the next generations took 5 to 14 polls each for some 2 s.
SPREAD_FLOOR = 0.005
FIRST_FLOOR = 0.9
FOLLOW_UP = 0.015
SHARP = 2
GROWTH = 1.5
MAX_INTERVAL_S = 15.0
FAILURE_HINTS = {
    "content_policy_violation": "the prompt or image broke Ideogram's content policy; change the prompt or the image",
}
FAILURE_HINT = "Ideogram could not make this image (not billed); `remixd retry` sends it again"


@dataclass
class PollSettings:
    interval_s: float = 1.0  # api.poll_interval_s: the first poll, before remixd has seen any generation end
    slow_after_s: float = 180.0  # api.timeout_s: past this, say the generation is slow (and keep polling)


@dataclass
class _Estimate:
    typical_s: float  # when generations of one rule usually end, after they were accepted
    spread_s: float = 0.0  # how far from it they end


class PollPacer:
    """The process's polls, shared by every worker: a sliding window, a hold after a 429, and for each rule
    an estimate of how long its generations take (to time first polls)."""

    def __init__(self, clock: Clock, settings: PollSettings | None = None, per_window: int = POLLS_PER_WINDOW) -> None:
        self.clock = clock
        self.settings = settings or PollSettings()
        self._per_window = per_window
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._not_before = 0.0
        self._estimates: dict[str, _Estimate] = {}
        self.polls = 0

    def take(self, stop: threading.Event, within: float) -> bool:
        """Take a poll slot if one comes within `within` seconds (False otherwise, or when stopping)."""
        deadline = self.clock.monotonic() + within
        while True:
            with self._lock:
                now = self.clock.monotonic()
                while self._sent and self._sent[0] <= now - POLL_WINDOW_S:
                    self._sent.popleft()
                wait = self._not_before - now
                if len(self._sent) >= self._per_window:
                    wait = max(wait, self._sent[0] + POLL_WINDOW_S - now)
                if wait <= 0:
                    self._sent.append(now)
                    self.polls += 1
                    return True
            wait = min(wait, deadline - now)
            if wait <= 0 or self.clock.wait(stop, wait):
                return False

    def hold(self, seconds: float) -> None:
        """A 429's Retry-After: no poller polls before it has passed."""
        with self._lock:
            self._not_before = max(self._not_before, self.clock.monotonic() + seconds)

    def observe(self, rule: str, after: float | None, by: float) -> None:
        """A generation of `rule` ended between `after` and `by` seconds after it was accepted (`after` None:
        the first poll saw it ended; it is taken to have ended two spreads before, so later first polls come
        earlier)."""
        with self._lock:
            estimate = self._estimates.get(rule)
            if estimate is None:
                # Not the midpoint: polls before anything was seen are api.poll_interval_s apart, and an
                # estimate too early brings every next poll early and often (one too late corrects itself:
                # seen by the first poll, the next end moves the estimate down).
                self._estimates[rule] = _Estimate(by)
                return
            typical = estimate.typical_s
            spread = max(estimate.spread_s, SPREAD_FLOOR * typical)
            if after is None:
                ended = max(FIRST_FLOOR * by, by - 2 * spread)
            elif by - after <= SHARP * self._interval(typical, spread):
                ended = (after + by) / 2
            else:  # only that it ended in between: an estimate outside moves towards the nearer edge
                ended = min(max(typical, after), by)
                if ended == typical:
                    return
            estimate.spread_s = 0.8 * estimate.spread_s + 0.2 * abs(ended - typical)
            estimate.typical_s = 0.8 * typical + 0.2 * ended

    def _interval(self, typical: float, spread: float) -> float:
        """How far apart polls come around the usual end."""
        return min(self.settings.interval_s, max(MIN_INTERVAL_S, min(spread, FOLLOW_UP * typical)))

    def schedule(self, rule: str) -> Iterator[float]:
        """When to poll one generation of `rule`, in seconds after it was accepted: from a little before its
        generations usually end, often until a spread after it, then ever less often (the window above keeps
        the total bounded however close they are)."""
        with self._lock:
            estimate = self._estimates.get(rule)
            typical, spread = (None, 0.0) if estimate is None else (estimate.typical_s, estimate.spread_s)
        configured = self.settings.interval_s
        if typical is None:  # nothing seen yet: every api.poll_interval_s, growing
            at, interval, usual_end = configured, configured, 0.0
        else:
            spread = max(spread, SPREAD_FLOOR * typical)
            interval = self._interval(typical, spread)
            at = max(MIN_INTERVAL_S, FIRST_FLOOR * typical, typical - 2 * min(spread, interval))
            usual_end = typical + spread
        while True:
            yield at
            at += interval
            if at > usual_end:
                interval = min(interval * GROWTH, MAX_INTERVAL_S)


class Poller:
    def __init__(self, journal: Journal, client: RemixApi, gates: Gates, pacer: PollPacer) -> None:
        self._journal = journal
        self._client = client
        self._gates = gates
        self._pacer = pacer

    def wait(
        self, job: JobRecord, ended: Callable[[], None] = lambda: None, since: float | None = None
    ) -> RemixResponse:
        """Poll the job's generation until it completes (its answer is journalled) or fails (JobFailed).
        `ended()` is called as soon as a poll sees it completed or failed, before the journal is written.
        `since`: when Ideogram accepted it (monotonic; default now). Polls are timed from then: timed from
        after the id's commit, they came late by however long the disk took."""
        generation_id = job.generation_id
        if generation_id is None:
            raise ValueError(f"job {job.id} has no generation to poll")
        gates, pacer, clock = self._gates, self._pacer, self._pacer.clock
        started = clock.monotonic() if since is None else since
        told_slow, last_pending, schedule = False, None, pacer.schedule(job.rule)
        sent = -1.0
        while True:
            # Each poll at its time after `since`, not a wait after the last answer (the polls' own round
            # trips added up, and every one is time a place may stand idle after the end); times the last
            # poll's round trip covered are skipped, so a slow answer is not followed by a burst of polls.
            at = next(schedule)
            while at <= sent:
                at = next(schedule)
            if gates.sleep(at - (clock.monotonic() - started)):
                raise Stopped
            if not gates.wait_for(lambda seconds: pacer.take(gates.stop, seconds)):
                raise Stopped
            # When the poll left, not when its answer came: the end lies between two polls' departures.
            sent = clock.monotonic() - started
            state = self._poll_once(job, generation_id)
            if state is None:
                continue
            if state.status in ("completed", "failed"):
                ended()
            if state.status == "completed":
                # It ended between the last poll that saw it pending and this one.
                pacer.observe(job.rule, last_pending, sent)
                return self._completed(job, state)
            last_pending = sent
            if state.status == "failed":
                self._failed(job, state)
            elapsed = clock.monotonic() - started
            if not told_slow and elapsed > pacer.settings.slow_after_s:
                told_slow = True
                log.warning(
                    "remixd.generation.slow",
                    generation_id=generation_id,
                    pending_s=round(elapsed),
                    hint="Ideogram is still working on it; remixd keeps polling and never sends it again",
                )

    def _poll_once(self, job: JobRecord, generation_id: str) -> GenerationState | None:
        """One poll; None when it should simply be tried again later."""
        gates = self._gates
        try:
            return self._client.generation(generation_id)
        except AuthError as error:
            if gates.auth.pause(f"{error.message} — {error.hint}"):
                log.error("remixd.api.paused", reason=error.message, hint=error.hint)
            if not gates.wait_for(lambda seconds: gates.auth.wait_while_paused(gates.stop, seconds)):
                raise Stopped from None
        except ApiUnavailable as error:
            if error.http_status == HTTPStatus.TOO_MANY_REQUESTS:
                self._pacer.hold(error.retry_after or POLL_WINDOW_S)
            log.warning("remixd.generation.poll_failed", generation_id=generation_id, error=error.message)
        except ApiRejected as error:  # 404: Ideogram does not know it. Never resent: it may have been billed.
            failed = ApiRejected(
                f"Ideogram no longer knows generation {generation_id}: {error.message}",
                "check the API's usage page; `remixd retry` sends it again (it may be billed twice)",
                http_status=error.http_status,
                response=error.response,
            )
            self._journal.record_job_failure(job.id, failed.record(), final=True)
            raise JobFailed(failed.record()) from None
        return None

    def _completed(self, job: JobRecord, state: GenerationState) -> RemixResponse:
        response = state.as_response(job.generation_seed)
        usage = state.usage_cost_usd_micros
        self._journal.record_answer(
            job.id,
            response.model_dump(mode="json"),
            images=len(response.data),
            cost_usd=None if usage is None else usage / 1_000_000,
        )
        return response

    def _failed(self, job: JobRecord, state: GenerationState) -> None:
        reason = state.failure_reason or "no reason given"
        error = ApiRejected(
            f"Ideogram's generation {state.generation_id} failed: {reason}",
            FAILURE_HINTS.get(reason, FAILURE_HINT),
            response=state.model_dump(mode="json"),
        )
        self._journal.record_job_failure(job.id, error.record(), final=True)
        raise JobFailed(error.record())
