"""Sending one job: wait for the pauses and the budget, take in-flight slots, send, and record the answer.

The request is journalled as `submitting` (and counted as paid) before it is sent, and its answer before anything
is downloaded, so a crash never pays twice for an answered job (README, "Retries never pay twice"); a job a
crash caught in flight is resent or held as `api.after_crash` says. What is retried, and what
never is, is `retry.retry_unavailable`'s business.
"""

from __future__ import annotations

import functools
import random

from remixd.clock import Clock
from remixd.errors import ApiError, ApiRejected, ApiUnavailable, AuthError, ErrorRecord, JobFailed, Stopped
from remixd.ideogram.client import RemixApi
from remixd.ideogram.multipart import Upload
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse
from remixd.journal.records import JobRecord, Journal
from remixd.logs import get_logger
from remixd.work.gates import Gates
from remixd.work.poll import Poller, PollPacer, PollSettings
from remixd.work.prepare import PreparedImage
from remixd.work.retry import UNKNOWN_OUTCOME_HINT, RetryPolicy, retry_unavailable

log = get_logger(__name__)


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
        polls: PollSettings | None = None,
    ) -> None:
        self.pacer = PollPacer(clock, polls)
        self._poller = Poller(journal, client, gates, self.pacer)
        self._journal = journal
        self._client = client
        self._gates = gates
        self._policy = policy
        self._clock = clock
        self._rng = rng

    def submit(self, job: JobRecord, request: RemixRequest, prepared: PreparedImage) -> None:
        if job.state == "submitting":  # sent before a crash, never answered: it may have been billed
            self._after_crash(job)
        try:  # before the job waits for a place: neither the place nor the "sent" row waits for the encoding
            upload = self._client.upload(request, prepared.data, prepared.filename, prepared.content_type)
        except ApiRejected as error:  # a reference image gone: nothing was sent (an earlier send stays counted)
            self._journal.record_job_failure(job.id, error.record(), final=True)
            raise JobFailed(error.record()) from None

        def journal(error: ApiUnavailable, final: bool) -> None:
            if error.inflight_limit:
                # Other clients of the organisation hold slots too: back off our own ceiling (AIMD).
                self._gates.limiter.on_inflight_limit()
            self._journal.record_job_failure(job.id, error.record(), final=final, not_billed=not _may_have_run(error))

        accepted_at = retry_unavailable(
            lambda: self._send(job, request, upload),
            policy=self._policy,
            clock=self._clock,
            rng=self._rng,
            sleep=self._gates.sleep,
            on_error=journal,
            event="remixd.api.retry",
        )
        if accepted_at is not None:
            self._await(job.id, since=accepted_at)

    def resume(self, job: JobRecord) -> None:
        """A job whose generation was accepted before a crash or restart: poll it, holding its places."""
        gates = self._gates
        if not gates.wait_for(lambda seconds: gates.limiter.acquire(job.images, gates.stop, seconds)):
            raise Stopped
        log.info("remixd.generation.resumed", generation_id=job.generation_id)
        self._await(job.id)

    def _await(self, job_id: int, since: float | None = None) -> None:
        """Poll the job's generation to its end; its in-flight places are released then, whatever happens.
        `since`: when Ideogram accepted it (monotonic), which times the polls; None after a restart.

        A generation that ended no longer holds a place at Ideogram: its places go to the next upload the
        moment a poll says so, before its answer is journalled or its images downloaded."""
        job = self._journal.get_job(job_id)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._gates.limiter.release(job.images)

        try:
            self._poller.wait(job, ended=release, since=since)
        finally:
            release()

    def _send(self, job: JobRecord, request: RemixRequest, upload: Upload) -> float | None:
        """One attempt: wait for the pauses and the budget, take the slots, send, journal the answer. A
        rejected key is not an attempt (it is wrong for every file): it pauses, and this waits for it to work.
        When Ideogram accepted an async generation, the moment it did (monotonic): its id is journalled and
        its slots are still held. None for a synchronous answer."""
        gates = self._gates
        # The sandbox bills nothing: its requests take no part of budget.* (README "The sandbox").
        images, usd = (0, 0.0) if job.sandbox else (job.images, job.cost_usd)
        while True:
            self._wait_until_allowed(images, usd)
            if not gates.wait_for(lambda seconds: gates.limiter.acquire(job.images, gates.stop, seconds)):
                gates.budget.release(images, usd)
                raise Stopped
            accepted_at = None
            gates.beat()  # the request may take its whole deadline: the watchdog's limit is one deadline
            try:
                # From here the journal counts the request as paid, and the reservation is freed. Between this
                # row and the answer's record below nothing runs but the exchange itself: a crash in between
                # may have paid for a request the journal cannot name (tests/e2e/test_kill_v2.py).
                gates.budget.sent(images, usd, lambda: self._journal.start_submit(job.id))
                sent_at = self._clock.monotonic()
                response = self._client.remix(request, upload, rule=job.rule)
                answered_at = self._clock.monotonic()  # before the commit below, which may wait for the disk
                # What the API answered is paid for: a journal that cannot take it now gets it again until it does.
                if response.accepted and response.generation_id is not None:
                    # The id first, before anything else: from here a crash means "poll", never "send again".
                    gates.retry_journal(
                        functools.partial(
                            self._journal.record_generation,
                            job.id,
                            response.generation_id,
                            response.seed,
                            images=job.images,
                        )
                    )
                    accepted_at = answered_at
                else:
                    gates.retry_journal(
                        functools.partial(
                            self._journal.record_answer,
                            job.id,
                            response.model_dump(mode="json"),
                            images=len(response.data),
                            cost_usd=_usage_usd(response),
                        )
                    )
            except AuthError as error:
                self._journal.record_job_failure(job.id, error.record(), final=False, not_billed=True)
                if gates.auth.pause(f"{error.message} — {error.hint}"):  # several workers may hear it at once
                    log.error("remixd.api.paused", reason=error.message, hint=error.hint)
                continue
            except ApiRejected as error:
                self._journal.record_job_failure(
                    job.id, error.record(), final=True, not_billed=not _may_have_run(error)
                )
                raise JobFailed(error.record()) from None
            finally:
                if accepted_at is None:  # a pending generation's images keep their places until it ends
                    gates.limiter.release(job.images)
            gates.limiter.on_success()
            log.debug(
                "remixd.job.answered",
                generating=accepted_at is not None,
                endpoint=self._client.endpoint_url(request),
                duration_ms=round((answered_at - sent_at) * 1000),
            )
            return accepted_at

    def _after_crash(self, job: JobRecord) -> None:
        """api.after_crash for a request a crash (or a stop past its deadline) caught in flight: the legacy and
        3.0 routes cannot be asked whether it ran, so either send it again, counted once more, or hold it."""
        sent_at = job.submitted_at.isoformat() if job.submitted_at else "before the last stop"
        if self._policy.after_crash == "hold":
            error = ErrorRecord(
                "outcome_unknown",
                f"the request sent at {sent_at} was never answered (remixd stopped first); "
                "the outcome is unknown: Ideogram may have run and billed it",
                f"{UNKNOWN_OUTCOME_HINT}; api.after_crash: hold kept remixd from sending it again on its own",
            )
            self._journal.record_job_failure(job.id, error, final=True)
            log.warning("remixd.job.held", sent_at=sent_at, possible_payments=job.possible_payments)
            raise JobFailed(error)
        log.warning(
            "remixd.job.resent_after_crash",
            sent_at=sent_at,
            possible_payments=job.possible_payments,
            hint="the earlier request may have been billed too; both count against the budget "
            "(api.after_crash: hold fails it for `remixd retry` instead)",
        )

    def _wait_until_allowed(self, images: int, usd: float) -> None:
        gates = self._gates
        while True:
            for pause in gates.pauses:
                if not gates.wait_for(functools.partial(pause.wait_while_paused, gates.stop)):
                    raise Stopped
            refusal = gates.budget.reserve(images, usd)
            if refusal is None:
                return
            if gates.budget_pause.pause(
                f"{refusal.reason}; submissions resume at {refusal.until.isoformat()}", until=refusal.until.timestamp()
            ):
                log.warning("remixd.budget.paused", reason=refusal.reason, until=refusal.until.isoformat())


def _may_have_run(error: ApiError) -> bool:
    """Whether a request that ended in `error` may still have been billed (it stays counted as paid).

    No status: a reset or timeout after sending may have run; one never sent (`sent=False`, a bad URL) did
    not. A 2xx that could not be used ran. Every other status is the API saying nothing ran: 429 and 4xx are
    refused before any work, and "a generation that fails is not billed" (README, "Every request counts").
    """
    if error.http_status is None:
        return isinstance(error, ApiUnavailable) and error.sent
    return 200 <= error.http_status < 300  # noqa: PLR2004


def _usage_usd(response: RemixResponse) -> float | None:
    """What the API says the request really cost, if it says (else the planned price, quoted or listed, holds)."""
    usage = response.usage_cost_usd_micros
    return None if usage is None else usage / 1_000_000
