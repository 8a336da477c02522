"""Sending one job: wait for the pauses and the budget, take in-flight slots, send, and record the answer.

The request is journalled as `submitting` before it is sent, and its answer before anything is downloaded, so
a crash never pays twice for an answered job (README, "Retries never pay twice"). 429 and 5xx are retried
within the policy; an unknown outcome (a reset or timeout after sending) fails the job instead of resending.
"""

from __future__ import annotations

import functools
import random

import structlog

from remixd.clock import Clock
from remixd.errors import ApiRejected, ApiUnavailable, AuthError, JobFailed, Stopped, with_hint
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import JobRecord, Journal
from remixd.work.gates import Gates
from remixd.work.prepare import PreparedImage
from remixd.work.retry import RetryPolicy

log = structlog.get_logger(__name__)

UNKNOWN_OUTCOME_HINT = "check the API's usage page; `remixd retry` sends it again (it may be billed twice)"


class Submitter:
    def __init__(
        self,
        journal: Journal,
        client: RemixApi,
        gates: Gates,
        policy: RetryPolicy,
        *,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._journal = journal
        self._client = client
        self._gates = gates
        self._policy = policy
        self._clock = clock
        self._rng = rng

    def submit(self, job: JobRecord, request: RemixRequest, prepared: PreparedImage) -> None:
        gates, attempts, first = self._gates, 0, self._clock.monotonic()
        limited = 0  # 429 inflight_limit answers: the shared limit at work, bounded by time, not attempts
        while True:
            self._wait_until_allowed(job.images, job.cost_usd)
            if not gates.wait_for(lambda seconds: gates.limiter.acquire(job.images, gates.stop, seconds)):
                gates.budget.release(job.images, job.cost_usd)
                raise Stopped
            billed = False
            try:
                self._journal.start_submit(job.id)
                attempts += 1
                gates.beat()  # the request may take its whole deadline: the watchdog's limit is one deadline
                response = self._client.remix(request, prepared.data, prepared.filename, prepared.content_type)
                self._journal.record_answer(
                    job.id, response.model_dump(mode="json"), images=len(response.data), cost_usd=request.cost_usd()
                )
                billed = True
            except AuthError as error:
                self._journal.record_job_failure(job.id, error.record(), final=False)
                if gates.auth.pause(f"{error.message} — {error.hint}"):  # several workers may hear it at once
                    log.error("remixd.api.paused", reason=error.message, hint=error.hint)
                attempts -= 1  # not an attempt: the key is wrong for every file, so wait for it to work
                continue
            except ApiRejected as error:
                self._journal.record_job_failure(job.id, error.record(), final=True)
                raise JobFailed(error.record()) from None
            except ApiUnavailable as error:
                limited += error.inflight_limit
                self._unavailable(job, error, attempts, first, limited)
                continue
            finally:
                gates.limiter.release(job.images)
                gates.budget.release(job.images, job.cost_usd)
            gates.limiter.on_success()
            log.debug("remixd.job.answered", attempts=attempts, billed=billed)
            return

    def _unavailable(
        self, job: JobRecord, error: ApiUnavailable, attempts: int, first: float, limited: int = 0
    ) -> None:
        """Decide whether to try again; raises JobFailed when not.

        A 5xx is retried: the reference says a generation that fails is not billed (README, "Retries never
        pay twice"). `limited` of the attempts were 429 inflight_limit: other clients of the organisation
        were busy, nothing ran; those count against the time bound only, so a long shared-limit storm
        slows remixd down instead of failing inputs."""
        if error.inflight_limit:
            # Other clients of the organisation hold slots too: back off our own ceiling (AIMD).
            self._gates.limiter.on_inflight_limit()
        unknown = error.sent and error.http_status is None
        if unknown:
            # A reset or timeout after sending: Ideogram may have run and billed it. Sending it again could
            # pay twice, so the input fails with a way back instead of being resent behind the user's back.
            error = with_hint(error, f"{UNKNOWN_OUTCOME_HINT}")
        if unknown or self._policy.gives_up(attempts - limited, self._clock.monotonic() - first):
            self._journal.record_job_failure(job.id, error.record(), final=True)
            raise JobFailed(error.record())
        self._journal.record_job_failure(job.id, error.record(), final=False)
        delay = self._policy.delay(attempts, error.retry_after, self._rng)
        log.warning(
            "remixd.api.retry", status=error.http_status, attempt=attempts, delay_s=round(delay, 2), error=error.message
        )
        if self._gates.sleep(delay):
            raise Stopped

    def _wait_until_allowed(self, images: int, usd: float) -> None:
        gates = self._gates
        while True:
            for pause in (gates.auth, gates.budget_pause):
                if not gates.wait_for(functools.partial(pause.wait_while_paused, gates.stop)):
                    raise Stopped
            refusal = gates.budget.reserve(images, usd)
            if refusal is None:
                return
            if gates.budget_pause.pause(
                f"{refusal.reason}; submissions resume at {refusal.until.isoformat()}", until=refusal.until.timestamp()
            ):
                log.warning("remixd.budget.paused", reason=refusal.reason, until=refusal.until.isoformat())
