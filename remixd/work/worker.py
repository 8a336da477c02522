"""One claimed input, start to finish: prepare -> plan -> submit -> download -> write -> dispose.

Every step reads its starting point from the journal, so the same call resumes an input after a crash: a job
that was answered is downloaded again (its URLs are in the journal), never sent again; a job caught in
`submitting` had no answer recorded and is sent again (the one case a crash can cost a second request).
One bad input fails alone (style habit 4): per-input errors end as a failed input with an error file.
Downloading and writing an answered job's results is `results.Results`; what workers share is `gates.Gates`.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import structlog

from remixd import rules
from remixd.config.model import InboxConfig, Rule
from remixd.errors import (
    ApiRejected,
    ApiUnavailable,
    AuthError,
    InputError,
    JobFailed,
    RemixdError,
    with_hint,
)
from remixd.files import dispose, sidecar
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import InputRecord, JobRecord, JobSpec, Journal, utcnow
from remixd.work.gates import Gates, Stopped
from remixd.work.prepare import PreparedImage, prepare
from remixd.work.results import Results
from remixd.work.retry import RetryPolicy

log = structlog.get_logger(__name__)

Outcome = Literal["done", "duplicate", "failed", "vanished", "deferred"]
UNKNOWN_OUTCOME_HINT = "check the API's usage page; `remixd retry` sends it again (it may be billed twice)"
ContentKey = tuple[str, str, str]  # (source sha256, rule, request fingerprint): what makes a duplicate
DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Result:
    input_id: int
    relpath: str
    outcome: Outcome


class Worker:
    def __init__(
        self,
        journal: Journal,
        client: RemixApi,
        gates: Gates,
        policy: RetryPolicy = DEFAULT_POLICY,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._gates = gates
        self._policy = policy
        self._monotonic = monotonic
        self._now = now
        self._rng = rng or random.Random()  # noqa: S311 — jitter, not cryptography
        self._results = Results(journal, client, gates, policy, monotonic=monotonic, now=now, rng=self._rng)
        # Identical content in flight at once (two copies dropped together) would both miss the journal's
        # duplicate check, which only sees written jobs: the first leads, the others wait for its outcome.
        self._leaders: dict[ContentKey, threading.Event] = {}
        self._leaders_lock = threading.Lock()

    # -- one input -------------------------------------------------------------------------------------------

    def process(self, input_id: int, inbox: InboxConfig, inbox_rules: Sequence[Rule]) -> Result:
        record = self._journal.get_input(input_id)
        structlog.contextvars.bind_contextvars(input_id=input_id, inbox=record.inbox, relpath=record.relpath)
        started = self._monotonic()
        try:
            outcome = self._process(record, inbox, inbox_rules)
        except Stopped:
            outcome = "deferred"
        finally:
            structlog.contextvars.unbind_contextvars("input_id", "inbox", "relpath")
        if outcome != "deferred":
            log.info(
                "remixd.input.finished",
                input_id=input_id,
                inbox=record.inbox,
                relpath=record.relpath,
                status=outcome,
                duration_ms=round((self._monotonic() - started) * 1000),
            )
        return Result(input_id, record.relpath, outcome)

    def _process(  # noqa: PLR0911 — one return per way an input can end, in the order they are checked
        self, record: InputRecord, inbox: InboxConfig, inbox_rules: Sequence[Rule]
    ) -> Outcome:
        source_path = inbox.path / record.relpath
        if record.state != "claimed":  # finished before a crash, disposal still pending
            return self._dispose(record, inbox, source_path)
        if not source_path.is_file() or source_path.is_symlink():
            if source_path.is_symlink():
                return self._fail_input(
                    record,
                    inbox,
                    source_path,
                    None,
                    InputError(
                        f"{record.relpath} is a symbolic link",
                        "remixd never follows links out of an inbox; copy the file itself into the inbox",
                    ),
                )
            if record.jobs and all(job.state in ("written", "duplicate") for job in record.jobs):
                return self._dispose(self._finish(record, "done"), inbox, source_path)
            log.warning(
                "remixd.input.vanished",
                relpath=record.relpath,
                hint="the file was removed or renamed before remixd could process it",
            )
            self._journal.finish_input(record.id, "vanished")
            return "vanished"
        try:
            prepared = prepare(source_path)
        except InputError as error:
            return self._fail_input(record, inbox, source_path, None, error)
        if record.sha256 != prepared.source_sha256:
            self._journal.set_hash(record.id, prepared.source_sha256)
        try:
            jobs = self._plan(record, inbox_rules)
        except InputError as error:  # e.g. a prompt template that renders empty for this file's name
            return self._fail_input(record, inbox, source_path, prepared, error)
        if not jobs:
            return self._fail_input(
                record,
                inbox,
                source_path,
                prepared,
                InputError(
                    f"no rule matches {record.relpath}",
                    f"add a rule whose match covers it (rules tried: {', '.join(inbox.rules)}) or remove the file",
                ),
            )
        requests = {job.rule: RemixRequest.model_validate(job.request) for job in jobs}
        failures: list[tuple[JobRecord, RemixdError]] = []
        for job in jobs:
            try:
                self._run_job(job, requests[job.rule], record, inbox, prepared)
            except JobFailed as failed:
                failures.append((job, failed.error))
        record = self._journal.get_input(record.id)
        if failures:
            failed_job, first_error = failures[0]
            return self._fail_input(record, inbox, source_path, prepared, first_error, failed_job)
        states = {job.state for job in record.jobs}
        return self._dispose(
            self._finish(record, "duplicate" if states == {"duplicate"} else "done"), inbox, source_path
        )

    def _plan(self, record: InputRecord, inbox_rules: Sequence[Rule]) -> list[JobRecord]:
        if record.jobs:  # planned before a crash: the journal, not today's config, says what was promised
            return list(record.jobs)
        specs = [
            JobSpec(
                rule=planned.rule,
                fingerprint=planned.fingerprint,
                endpoint=planned.request.endpoint_path(),
                request=planned.request.model_dump(mode="json", exclude_unset=True),
                images=planned.request.num_images,
                cost_usd=planned.request.cost_usd(),
            )
            for planned in rules.plan(record.relpath, inbox_rules)
        ]
        return self._journal.add_jobs(record.id, specs) if specs else []

    # -- one (input, rule) job -------------------------------------------------------------------------------

    def _run_job(
        self, job: JobRecord, request: RemixRequest, record: InputRecord, inbox: InboxConfig, prepared: PreparedImage
    ) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, rule=job.rule)
        try:
            if job.state == "duplicate":
                return
            if job.state == "written":
                self._results.verify_written(job, request, record, inbox, prepared)
                return
            if job.state == "failed":
                raise JobFailed(_error_from(job))
            key = (prepared.source_sha256, job.rule, job.fingerprint)
            # Only a job never sent can still become a duplicate; one sent before a crash goes on alone.
            with self._leading(key, wait=job.state == "pending"):
                job = self._journal.get_job(job.id)
                if job.state == "pending":
                    earlier = self._journal.find_duplicate(prepared.source_sha256, job.rule, job.fingerprint)
                    if earlier is not None:
                        self._journal.mark_duplicate(job.id, earlier.id)
                        log.info("remixd.job.finished", status="duplicate", of_job=earlier.id, files=earlier.files)
                        return
                if job.state != "answered":
                    self._submit(job, request, prepared)
                self._results.download_and_write(self._journal.get_job(job.id), request, record, inbox, prepared)
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "rule")

    @contextmanager
    def _leading(self, key: ContentKey, *, wait: bool) -> Iterator[None]:
        """Be the one job working on `key`; with `wait`, first wait until no other job is (then the caller
        looks for its written results again). Without `wait` (already sent) go on even if another leads."""
        mine: threading.Event | None = None
        while True:
            with self._leaders_lock:
                leader = self._leaders.get(key)
                if leader is None:
                    mine = self._leaders[key] = threading.Event()
                    break
            if not wait:
                break
            if not self._gates.wait_for(leader.wait):
                raise Stopped
        try:
            yield
        finally:
            if mine is not None:
                with self._leaders_lock:
                    del self._leaders[key]
                mine.set()

    def _submit(self, job: JobRecord, request: RemixRequest, prepared: PreparedImage) -> None:
        gates, attempts, first = self._gates, 0, self._monotonic()
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
                response = self._client.remix(request, prepared.data, prepared.filename, prepared.content_type)
                self._journal.record_answer(
                    job.id, response.model_dump(mode="json"), images=len(response.data), cost_usd=request.cost_usd()
                )
                billed = True
            except AuthError as error:
                self._journal.record_job_failure(job.id, error.to_dict(), final=False)
                if gates.auth.pause(f"{error.message} — {error.hint}"):  # several workers may hear it at once
                    log.error("remixd.api.paused", reason=error.message, hint=error.hint)
                attempts -= 1  # not an attempt: the key is wrong for every file, so wait for it to work
                continue
            except ApiRejected as error:
                self._journal.record_job_failure(job.id, error.to_dict(), final=True)
                raise JobFailed(error) from None
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
        if unknown or self._policy.gives_up(attempts - limited, self._monotonic() - first):
            self._journal.record_job_failure(job.id, error.to_dict(), final=True)
            raise JobFailed(error)
        self._journal.record_job_failure(job.id, error.to_dict(), final=False)
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

    # -- finishing -------------------------------------------------------------------------------------------

    def _finish(self, record: InputRecord, state: Literal["done", "duplicate"]) -> InputRecord:
        self._journal.finish_input(record.id, state)
        return self._journal.get_input(record.id)

    def _dispose(self, record: InputRecord, inbox: InboxConfig, source_path: Path) -> Outcome:
        if record.state == "failed":
            error = record.error or {}
            disposed = self._gates.retry_output(
                lambda: dispose.dispose_failed(source_path, inbox.failed_dir, record.relpath, record.sha256, error)
            )
            self._journal.set_disposed(record.id, "moved", None if disposed.input is None else str(disposed.input))
            return "failed"
        destination = self._gates.retry_output(
            lambda: dispose.dispose_done(source_path, inbox.after, inbox.done_dir, record.relpath, record.sha256)
        )
        disposal = {"move": "moved", "delete": "deleted", "keep": "kept"}[inbox.after]
        self._journal.set_disposed(
            record.id,
            disposal,  # type: ignore[arg-type]
            None if destination is None else str(destination),
        )
        return "duplicate" if record.state == "duplicate" else "done"

    def _fail_input(  # noqa: PLR0917 — the input, where it is, what is known of it, and why it failed
        self,
        record: InputRecord,
        inbox: InboxConfig,
        source_path: Path,
        prepared: PreparedImage | None,
        error: RemixdError,
        job: JobRecord | None = None,
    ) -> Outcome:
        source = sidecar.Source(
            record.inbox,
            record.relpath,
            prepared.source_sha256 if prepared else record.sha256,
            prepared.source_bytes if prepared else None,
            prepared.conversion if prepared else None,
        )
        document = sidecar.error_document(
            source=source,
            rule=job.rule if job else None,
            fingerprint=job.fingerprint if job else None,
            error=error.to_dict(),
            attempts=self._journal.get_job(job.id).attempts if job else 0,
            failed_at=self._now(),
        )
        log.error(
            "remixd.input.failed", kind=error.kind, error=error.message, hint=error.hint, rule=job.rule if job else None
        )
        self._journal.finish_input(record.id, "failed", document)
        return self._dispose(self._journal.get_input(record.id), inbox, source_path)


def _error_from(job: JobRecord) -> RemixdError:
    error = job.last_error or {}
    return RemixdError(str(error.get("message", "the job failed")), str(error.get("hint", "")))
