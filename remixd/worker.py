"""One claimed input, start to finish: prepare -> plan -> submit -> download -> write -> dispose.

Every step reads its starting point from the journal, so the same call resumes an input after a crash: a job
that was answered is downloaded again (its URLs are in the journal), never sent again; a job caught in
`submitting` had no answer recorded and is sent again (the one case a crash can cost a second request).
One bad input fails alone (style habit 4): per-input errors end as a failed input with an error file.
"""

from __future__ import annotations

import copy
import hashlib
import io
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar

import structlog
from PIL import Image

from remixd import output, rules
from remixd.apischema import RemixRequest, RemixResponse
from remixd.budget import Budget
from remixd.config import InboxConfig, Rule
from remixd.errors import (
    ApiRejected,
    ApiUnavailable,
    AuthError,
    InputError,
    OutputError,
    RemixdError,
    UrlExpired,
)
from remixd.ideogram import IdeogramClient
from remixd.journal import InputRecord, JobRecord, JobSpec, Journal, utcnow
from remixd.prepare import PreparedImage, prepare
from remixd.retry import InflightLimiter, Pause, RetryPolicy

log = structlog.get_logger(__name__)

T = TypeVar("T")
Outcome = Literal["done", "duplicate", "failed", "vanished", "deferred"]
UNKNOWN_OUTCOME_HINT = "check the API's usage page; `remixd retry` sends it again (it may be billed twice)"
OUTPUT_RETRY_MAX_S = 60.0  # a full disk or a read-only folder is retried this often at most, forever


class Stopped(Exception):
    """The daemon is stopping: leave the job where the journal says it is."""


class JobFailed(Exception):
    def __init__(self, error: RemixdError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Result:
    input_id: int
    relpath: str
    outcome: Outcome


@dataclass
class Gates:
    """What every worker shares: the stop switch, the pauses, the limiter and the budget."""

    stop: threading.Event
    auth: Pause
    budget_pause: Pause
    limiter: InflightLimiter
    budget: Budget


class Worker:
    def __init__(
        self,
        journal: Journal,
        client: IdeogramClient,
        gates: Gates,
        policy: RetryPolicy = RetryPolicy(),
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
            log.info("remixd.input.finished", input_id=input_id, inbox=record.inbox, relpath=record.relpath,
                     status=outcome, duration_ms=round((self._monotonic() - started) * 1000))
        return Result(input_id, record.relpath, outcome)

    def _process(self, record: InputRecord, inbox: InboxConfig, inbox_rules: Sequence[Rule]) -> Outcome:
        source_path = inbox.path / record.relpath
        if record.state != "claimed":  # finished before a crash, disposal still pending
            return self._dispose(record, inbox, source_path)
        if not source_path.is_file() or source_path.is_symlink():
            if source_path.is_symlink():
                return self._fail_input(record, inbox, source_path, None, InputError(
                    f"{record.relpath} is a symbolic link", "remixd never follows links out of an inbox; "
                    "copy the file itself into the inbox"))
            if record.jobs and all(job.state in ("written", "duplicate") for job in record.jobs):
                return self._dispose(self._finish(record, "done"), inbox, source_path)
            log.warning("remixd.input.vanished", relpath=record.relpath,
                        hint="the file was removed or renamed before remixd could process it")
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
            return self._fail_input(record, inbox, source_path, prepared, InputError(
                f"no rule matches {record.relpath}",
                f"add a rule whose match covers it (rules tried: {', '.join(inbox.rules)}) or remove the file"))
        requests = {job.rule: RemixRequest.model_validate(job.request) for job in jobs}
        failures: list[tuple[JobRecord, RemixdError]] = []
        for job in jobs:
            try:
                self._run_job(job, requests[job.rule], record, inbox, prepared)
            except JobFailed as failed:
                failures.append((job, failed.error))
        record = self._journal.get_input(record.id)
        if failures:
            job, error = failures[0]
            return self._fail_input(record, inbox, source_path, prepared, error, job)
        states = {job.state for job in record.jobs}
        return self._dispose(self._finish(record, "duplicate" if states == {"duplicate"} else "done"),
                             inbox, source_path)

    def _plan(self, record: InputRecord, inbox_rules: Sequence[Rule]) -> list[JobRecord]:
        if record.jobs:  # planned before a crash: the journal, not today's config, says what was promised
            return list(record.jobs)
        specs = [JobSpec(rule=planned.rule, fingerprint=planned.fingerprint,
                         endpoint=planned.request.endpoint_path(),
                         request=planned.request.model_dump(mode="json", exclude_unset=True),
                         images=planned.request.num_images, cost_usd=planned.request.cost_usd())
                 for planned in rules.plan(record.relpath, inbox_rules)]
        return self._journal.add_jobs(record.id, specs) if specs else []

    # -- one (input, rule) job -------------------------------------------------------------------------------

    def _run_job(self, job: JobRecord, request: RemixRequest, record: InputRecord, inbox: InboxConfig,
                 prepared: PreparedImage) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, rule=job.rule)
        try:
            if job.state in ("written", "duplicate"):
                return
            if job.state == "failed":
                raise JobFailed(_error_from(job))
            if job.state != "answered":
                earlier = (self._journal.find_duplicate(prepared.source_sha256, job.rule, job.fingerprint)
                           if job.state == "pending" else None)
                if earlier is not None:
                    self._journal.mark_duplicate(job.id, earlier.id)
                    log.info("remixd.job.finished", status="duplicate", of_job=earlier.id, files=earlier.files)
                    return
                self._submit(job, request, prepared)
            self._download_and_write(self._journal.get_job(job.id), request, record, inbox, prepared)
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "rule")

    def _submit(self, job: JobRecord, request: RemixRequest, prepared: PreparedImage) -> None:
        gates, attempts, first = self._gates, 0, self._monotonic()
        while True:
            self._wait_until_allowed(job.images, job.cost_usd)
            if not gates.limiter.acquire(job.images, gates.stop):
                gates.budget.release(job.images, job.cost_usd)
                raise Stopped
            billed = False
            try:
                self._journal.start_submit(job.id)
                attempts += 1
                response = self._client.remix(request, prepared.data, prepared.filename, prepared.content_type)
                self._journal.record_answer(job.id, response.model_dump(mode="json"),
                                            images=len(response.data), cost_usd=request.cost_usd())
                billed = True
            except AuthError as error:
                self._journal.record_job_failure(job.id, error.to_dict(), final=False)
                if not gates.auth.is_paused:
                    log.error("remixd.api.paused", reason=error.message, hint=error.hint)
                gates.auth.pause(f"{error.message} — {error.hint}")
                continue  # not an attempt: the key is wrong for every file, so wait for it to work
            except ApiRejected as error:
                self._journal.record_job_failure(job.id, error.to_dict(), final=True)
                raise JobFailed(error) from None
            except ApiUnavailable as error:
                self._unavailable(job, error, attempts, first)
                continue
            finally:
                gates.limiter.release(job.images)
                gates.budget.release(job.images, job.cost_usd)
            gates.limiter.on_success()
            log.debug("remixd.job.answered", attempts=attempts, billed=billed)
            return

    def _unavailable(self, job: JobRecord, error: ApiUnavailable, attempts: int, first: float) -> None:
        """Decide whether to try again; raises JobFailed when not."""
        if error.inflight_limit:
            # Other clients of the organisation hold slots too: back off our own ceiling (AIMD).
            self._gates.limiter.on_inflight_limit()
        unknown = error.sent and error.http_status is None
        if unknown:
            # A reset or timeout after sending: Ideogram may have run and billed it. Sending it again could
            # pay twice, so the input fails with a way back instead of being resent behind the user's back.
            error = _with_hint(error, f"{UNKNOWN_OUTCOME_HINT}")
        if unknown or self._policy.gives_up(attempts, self._monotonic() - first):
            self._journal.record_job_failure(job.id, error.to_dict(), final=True)
            raise JobFailed(error)
        self._journal.record_job_failure(job.id, error.to_dict(), final=False)
        delay = self._policy.delay(attempts, error.retry_after, self._rng)
        log.warning("remixd.api.retry", status=error.http_status, attempt=attempts, delay_s=round(delay, 2),
                    error=error.message)
        if self._gates.stop.wait(delay):
            raise Stopped

    def _wait_until_allowed(self, images: int, usd: float) -> None:
        gates = self._gates
        while True:
            if not gates.auth.wait_while_paused(gates.stop) or not gates.budget_pause.wait_while_paused(gates.stop):
                raise Stopped
            refusal = gates.budget.reserve(images, usd)
            if refusal is None:
                return
            if not gates.budget_pause.is_paused:
                log.warning("remixd.budget.paused", reason=refusal.reason, until=refusal.until.isoformat())
            gates.budget_pause.pause(f"{refusal.reason}; submissions resume at {refusal.until.isoformat()}",
                                     until=refusal.until.timestamp())

    # -- results ---------------------------------------------------------------------------------------------

    def _download_and_write(self, job: JobRecord, request: RemixRequest, record: InputRecord,
                            inbox: InboxConfig, prepared: PreparedImage) -> None:
        response = RemixResponse.model_validate(job.response)
        images = [self._download(job, item.url) if item.url else None for item in response.data]
        formats = [None if data is None else _image_facts(data) for data in images]
        source = output.Source(record.inbox, record.relpath, prepared.source_sha256, prepared.source_bytes,
                               prepared.conversion)
        paths = self._retry_output(lambda: output.result_paths(
            inbox.output, source, job.rule, job.fingerprint,
            extensions=[None if facts is None else facts[0] for facts in formats],
            image_sha256s=[None if data is None else _sha256(data) for data in images]))
        completed = self._now()
        for item, data, facts, place in zip(response.data, images, formats, paths, strict=True):
            info = None
            if data is not None and facts is not None and place.image is not None:
                info = output.ImageInfo(file=place.image.name, sha256=_sha256(data), bytes=len(data),
                                        width=facts[1], height=facts[2])
            document = output.sidecar(
                source=source, rule=job.rule, fingerprint=job.fingerprint,
                endpoint=self._client.endpoint_url(request), request=request.wire_fields(),
                created=response.created, index=place.index, count=len(paths),
                item=item.model_dump(mode="json"), image=info, cost_usd=round(job.cost_usd / len(paths), 6),
                detected_at=record.detected_at, submitted_at=job.submitted_at or completed,
                completed_at=completed)
            self._retry_output(lambda place=place, data=data, document=document:  # type: ignore[misc]
                               output.write_result(place, data, document))
        files = [str(place.image or place.sidecar) for place in paths]
        self._journal.record_written(job.id, files)
        unsafe = sum(1 for item in response.data if not item.url)
        log.info("remixd.job.finished", status="written", images=len(paths) - unsafe, withheld=unsafe,
                 cost_usd=job.cost_usd)

    def _download(self, job: JobRecord, url: str) -> bytes:
        attempts, first = 0, self._monotonic()
        while True:
            attempts += 1
            try:
                return self._client.download(url)
            except UrlExpired as error:
                # Policy (README, "Expired result links"): never pay again on our own; fail with the way back.
                expired = _with_hint(error, "its result links expired before remixd could fetch them; "
                                     "`remixd retry` sends it again (and pays again)")
                self._journal.record_job_failure(job.id, expired.to_dict(), final=True)
                raise JobFailed(expired) from None
            except ApiUnavailable as error:
                if self._policy.gives_up(attempts, self._monotonic() - first):
                    self._journal.record_job_failure(job.id, error.to_dict(), final=True)
                    raise JobFailed(error) from None
                delay = self._policy.delay(attempts, error.retry_after, self._rng)
                log.warning("remixd.download.retry", attempt=attempts, delay_s=round(delay, 2), error=error.message)
                if self._gates.stop.wait(delay):
                    raise Stopped from None
            except ApiRejected as error:
                self._journal.record_job_failure(job.id, error.to_dict(), final=True)
                raise JobFailed(error) from None

    def _retry_output(self, action: Callable[[], T]) -> T:
        """Disk full or folder not writable: wait and try again, forever; the input stays where it is."""
        delay, told = 1.0, False
        while True:
            try:
                return action()
            except OutputError as error:
                if not told:
                    log.error("remixd.output.blocked", error=error.message, hint=error.hint)
                    told = True
                if self._gates.stop.wait(delay):
                    raise Stopped from None
                delay = min(delay * 2, OUTPUT_RETRY_MAX_S)

    # -- finishing -------------------------------------------------------------------------------------------

    def _finish(self, record: InputRecord, state: Literal["done", "duplicate"]) -> InputRecord:
        self._journal.finish_input(record.id, state)
        return self._journal.get_input(record.id)

    def _dispose(self, record: InputRecord, inbox: InboxConfig, source_path: Path) -> Outcome:
        if record.state == "failed":
            error = record.error or {}
            disposed = self._retry_output(lambda: output.dispose_failed(
                source_path, inbox.failed_dir, record.relpath, record.sha256, error))
            self._journal.set_disposed(record.id, "moved",
                                       None if disposed.input is None else str(disposed.input))
            return "failed"
        destination = self._retry_output(lambda: output.dispose_done(
            source_path, inbox.after, inbox.done_dir, record.relpath, record.sha256))
        disposal = {"move": "moved", "delete": "deleted", "keep": "kept"}[inbox.after]
        self._journal.set_disposed(record.id, disposal,  # type: ignore[arg-type]
                                   None if destination is None else str(destination))
        return "duplicate" if record.state == "duplicate" else "done"

    def _fail_input(self, record: InputRecord, inbox: InboxConfig, source_path: Path,
                    prepared: PreparedImage | None, error: RemixdError, job: JobRecord | None = None) -> Outcome:
        source = output.Source(record.inbox, record.relpath,
                               prepared.source_sha256 if prepared else record.sha256,
                               prepared.source_bytes if prepared else None,
                               prepared.conversion if prepared else None)
        document = output.error_document(
            source=source, rule=job.rule if job else None, fingerprint=job.fingerprint if job else None,
            error=error.to_dict(), attempts=self._journal.get_job(job.id).attempts if job else 0,
            failed_at=self._now())
        log.error("remixd.input.failed", kind=error.kind, error=error.message, hint=error.hint,
                  rule=job.rule if job else None)
        self._journal.finish_input(record.id, "failed", document)
        return self._dispose(self._journal.get_input(record.id), inbox, source_path)


def _error_from(job: JobRecord) -> RemixdError:
    error = job.last_error or {}
    return RemixdError(str(error.get("message", "the job failed")), str(error.get("hint", "")))


E = TypeVar("E", bound=RemixdError)


def _with_hint(error: E, hint: str) -> E:
    """The same error with the hint that fits how remixd handles it."""
    changed = copy.copy(error)
    changed.hint = hint
    return changed


def _image_facts(data: bytes) -> tuple[str, int, int]:
    """(extension, width, height) of a downloaded image; the client already checked that it decodes."""
    with Image.open(io.BytesIO(data)) as image:
        extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(image.format or "", "png")
        return extension, image.width, image.height


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
