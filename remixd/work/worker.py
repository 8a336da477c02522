"""One claimed input, start to finish: prepare -> plan -> submit -> download -> write -> dispose.

Every step reads its starting point from the journal, so the same call resumes an input after a crash: a job
that was answered is downloaded again (its URLs are in the journal), never sent again; a job caught in
`submitting` had no answer recorded and is sent again (the one case a crash can cost a second request).
One bad input fails alone (README, "The daemon keeps going"): per-input errors end as a failed input with an error file.
Which jobs an input becomes is `plan.Planner`; sending a job is `submit.Submitter`; downloading and writing an
answered job's results is `results.Results`; how the input ends (disposed, or failed with an error file) is
`finish.Finisher`; what workers share is `gates.Gates`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from remixd.clock import Clock
from remixd.config.model import InboxConfig, Rule
from remixd.errors import (
    ErrorRecord,
    InputError,
    JobFailed,
    Stopped,
)
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import InputRecord, JobRecord, Journal, Reroll
from remixd.logs import get_logger
from remixd.work.finish import Finisher, Outcome, StemWaits
from remixd.work.gates import Gates
from remixd.work.plan import Planner, upload_limit
from remixd.work.poll import PollSettings
from remixd.work.prepare import PreparedImage, prepare
from remixd.work.results import Results
from remixd.work.retry import RetryPolicy
from remixd.work.submit import Submitter

log = get_logger(__name__)

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
        clock: Clock,
        stem_waits: StemWaits,
        rng: random.Random | None = None,
        sandbox: Callable[[], bool] = lambda: False,
        polls: PollSettings | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._gates = gates
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 — jitter, not cryptography
        self._results = Results(journal, client, gates, policy, clock=clock, rng=self._rng)
        self._submitter = Submitter(journal, client, gates, policy, clock=clock, rng=self._rng, polls=polls)
        self._finisher = Finisher(journal, gates, clock=clock, sandbox=sandbox, stem_waits=stem_waits)
        self._planner = Planner(journal, client, clock=clock, sandbox=sandbox)
        # Identical content in flight at once (two copies dropped together) would both miss the journal's
        # duplicate check, which only sees written jobs: the first leads, the others wait for its outcome.
        self._leaders: dict[ContentKey, threading.Event] = {}
        self._leaders_lock = threading.Lock()

    # -- one input -------------------------------------------------------------------------------------------

    def process(self, input_id: int, inbox: InboxConfig, inbox_rules: Sequence[Rule]) -> Result:
        record = self._journal.get_input(input_id)
        structlog.contextvars.bind_contextvars(input_id=input_id, inbox=record.inbox, relpath=record.relpath)
        started = self._clock.monotonic()
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
                duration_ms=round((self._clock.monotonic() - started) * 1000),
            )
        return Result(input_id, record.relpath, outcome)

    def _process(  # noqa: PLR0911 — one return per way an input can end, in the order they are checked
        self, record: InputRecord, inbox: InboxConfig, inbox_rules: Sequence[Rule]
    ) -> Outcome:
        source_path = inbox.path / record.relpath
        if record.state != "claimed":  # finished before a crash, disposal still pending
            return self._finisher.dispose_of(record, inbox, source_path)
        if not source_path.is_file() or source_path.is_symlink():
            if source_path.is_symlink():
                return self._finisher.fail(
                    record,
                    inbox,
                    source_path,
                    None,
                    InputError(
                        f"{record.relpath} is a symbolic link",
                        "remixd never follows links out of an inbox; copy the file itself into the inbox",
                    ).record(),
                )
            if record.jobs and all(job.state in ("written", "duplicate") for job in record.jobs):
                return self._finisher.dispose_of(self._finisher.finish(record, "done"), inbox, source_path)
            renamed = self._journal.forget_renamed(record.id)
            if renamed is not None:  # claimed again under its new name: nothing vanished
                log.info("remixd.input.renamed", relpath=record.relpath, renamed_to=renamed)
                return "renamed"
            log.warning(
                "remixd.input.vanished",
                relpath=record.relpath,
                hint="the file was removed or renamed before remixd could process it",
            )
            self._journal.finish_input(record.id, "vanished")
            return "vanished"
        try:
            prepared = prepare(source_path, upload_limit(record, inbox_rules))
        except InputError as error:
            return self._finisher.fail(record, inbox, source_path, None, error.record())
        if record.sha256 != prepared.source_sha256:
            self._journal.set_hash(record.id, prepared.source_sha256)
        reroll = self._journal.take_reroll(record.id)  # `remixd reroll` asked for this content again
        try:
            jobs = self._planner.plan(record, source_path, inbox_rules, reroll, inbox=inbox, prepared=prepared)
        except InputError as error:  # e.g. a prompt template that renders empty for this file's name
            return self._finisher.fail(record, inbox, source_path, prepared, error.record())
        if not jobs:
            return self._finisher.fail(
                record,
                inbox,
                source_path,
                prepared,
                InputError(
                    f"no rule matches {record.relpath}",
                    f"add a rule whose match covers it (rules tried: {', '.join(inbox.rules)}) or remove the file",
                ).record(),
            )
        requests = {job.rule: RemixRequest.model_validate(job.request) for job in jobs}
        failures: list[tuple[JobRecord, ErrorRecord]] = []
        for job in jobs:
            try:
                self._run_job(job, requests[job.rule], record, inbox, prepared, reroll)
            except JobFailed as failed:
                failures.append((job, failed.error))
        record = self._journal.get_input(record.id)
        if failures:
            failed_job, first_error = failures[0]
            return self._finisher.fail(record, inbox, source_path, prepared, first_error, failed_job)
        states = {job.state for job in record.jobs}
        return self._finisher.dispose_of(
            self._finisher.finish(record, "duplicate" if states == {"duplicate"} else "done"), inbox, source_path
        )

    # -- one (input, rule) job -------------------------------------------------------------------------------

    def _run_job(  # noqa: PLR0917 — the job, its input and where it is, and whether it is a reroll
        self,
        job: JobRecord,
        request: RemixRequest,
        record: InputRecord,
        inbox: InboxConfig,
        prepared: PreparedImage,
        reroll: Reroll | None,
    ) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, rule=job.rule)
        try:
            if job.state == "duplicate":
                return
            if job.state == "written":
                self._results.verify_written(job, request, record, inbox, prepared, reroll)
                return
            if job.state == "failed":
                raise JobFailed(job.last_error or ErrorRecord("remixd", "the job failed"))
            problem = request.input_problem(prepared.width, prepared.height) if job.state == "pending" else None
            if problem is not None:  # refused by the route for this file's shape: fail before paying
                error = InputError(f"{record.relpath}: {problem[0]}", problem[1]).record()
                self._journal.record_job_failure(job.id, error, final=True)
                raise JobFailed(error)
            key = (prepared.source_sha256, job.rule, job.fingerprint)
            # Only a job never sent can still become a duplicate; one sent before a crash goes on alone.
            with self._leading(key, wait=job.state == "pending"):
                job = self._journal.get_job(job.id)
                if job.state == "pending" and reroll is None:  # a reroll is sent again on purpose
                    earlier = self._journal.find_duplicate(prepared.source_sha256, job.rule, job.fingerprint)
                    if earlier is not None:
                        self._journal.mark_duplicate(job.id, earlier)
                        log.info("remixd.job.finished", status="duplicate", of_job=earlier.id, files=earlier.files)
                        return
                if job.state == "generating":  # accepted before a restart: polled, never sent again
                    self._submitter.resume(job)
                elif job.state != "answered":
                    self._submitter.submit(job, request, prepared)
                answered = self._journal.get_job(job.id)
                self._results.download_and_write(answered, request, record, inbox, prepared, reroll)
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
