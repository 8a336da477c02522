"""An answered job's results: download every image, then name and write each with its sidecar.

Downloads are retried through outages, but an expired link fails the job with the way back instead of sending
the request again: remixd never pays twice on its own (README, "Expired result links"). Writes wait out a full
disk or a read-only folder, holding the output folder's lock so two inputs never take the same free name.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from remixd import output_name
from remixd.clock import Clock
from remixd.config.model import InboxConfig
from remixd.errors import ApiRejected, ApiUnavailable, JobFailed, OutputError, Stopped, UrlExpired, with_hint
from remixd.files import embed, sidecar, templates, write
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse, ResultItem
from remixd.journal.records import InputRecord, JobRecord, Journal, Reroll
from remixd.logs import get_logger
from remixd.work.gates import Gates
from remixd.work.prepare import PreparedImage
from remixd.work.retry import RetryPolicy, retry_unavailable

log = get_logger(__name__)

# Striped locks, one per output folder (bounded in number), shared by every Worker a reload creates.
_FOLDER_LOCKS = tuple(threading.Lock() for _ in range(64))


@dataclass(frozen=True)
class Results:
    """The worker's results half, with the worker's own seams (one clock, one jitter source for both)."""

    journal: Journal
    client: RemixApi
    gates: Gates
    policy: RetryPolicy
    _: KW_ONLY
    clock: Clock
    rng: random.Random

    def verify_written(  # noqa: PLR0917 — as download_and_write
        self,
        job: JobRecord,
        request: RemixRequest,
        record: InputRecord,
        inbox: InboxConfig,
        prepared: PreparedImage,
        reroll: Reroll | None = None,
    ) -> None:
        """An unfinished input's written job whose files went missing (a crash on a file system that lost
        them, or someone deleting them): download again while the links are valid, never send again."""
        missing = [name for name in _expected_files(job.files) if not Path(name).is_file()]
        if not missing:
            return
        log.warning(
            "remixd.recover.results_missing",
            missing=missing,
            hint="downloading the results again from the links the API answered with",
        )
        self.download_and_write(job, request, record, inbox, prepared, reroll)

    def download_and_write(  # noqa: PLR0917 — the job, its input and where it is, and whether it is a reroll
        self,
        job: JobRecord,
        request: RemixRequest,
        record: InputRecord,
        inbox: InboxConfig,
        prepared: PreparedImage,
        reroll: Reroll | None = None,
    ) -> None:
        response = RemixResponse.model_validate(job.response)
        downloads = [self._download(job, item.url) if item.url else None for item in response.data]
        settings = inbox.outputs_for(job.rule)
        source = sidecar.Source(
            record.inbox,
            record.relpath,
            prepared.source_sha256,
            prepared.source_bytes,
            prepared.conversion,
            record.mtime_ns,
        )
        completed, count = self.clock.utcnow(), len(response.data)
        created = response.created or stamp_now(completed)  # v2 answers carry no `created`: when it was seen
        cost_source = "usage" if response.usage_cost_usd_micros is not None else job.cost_source
        earlier = [paid.to_json() for paid in self.journal.earlier_payments(record.id)]
        documents = [
            sidecar.sidecar(
                source=source,
                rule=job.rule,
                fingerprint=job.fingerprint,
                endpoint=self.client.endpoint_url(request),
                request=request.wire_fields(),
                created=created,
                route=request.model,
                generation_id=response.generation_id,
                cost_source=cost_source,
                index=index,
                count=count,
                item=item.model_dump(mode="json"),
                image=None,
                cost_usd=round(job.cost_usd / count, 6),
                possible_payments=job.possible_payments,
                earlier_payments=earlier,
                detected_at=record.detected_at,
                submitted_at=job.submitted_at or completed,
                completed_at=completed,
                sandbox=job.sandbox,
            )
            for index, item in enumerate(response.data, start=1)
        ]
        if reroll is not None:  # sent again on purpose: its results take names beside the earlier ones
            for document in documents:
                document["reroll"] = {"id": reroll.id, "of_input": reroll.of_input, "seed": reroll.seed}
        shared = templates.tokens(
            record.relpath,
            rule=job.rule,
            model=request.model,
            count=count,
            source_sha256=prepared.source_sha256,
            moment=job.submitted_at or completed,  # from the journal: a resume renders the same names
        )
        values = [{**shared, "seed": "none" if item.seed is None else str(item.seed)} for item in response.data]
        # Choosing free names and taking them is one step per output folder: two inputs whose names collide
        # (same.jpg and same.png, or two long names cut to one) must never both pick the same free name. A
        # template of the user's own may send inputs of any folder to one place: then the lock is the output's.
        locked = PurePosixPath(record.relpath).parent if inbox.output_name == output_name.DEFAULT else PurePosixPath()
        try:
            finals = [
                None
                if data is None
                else write.encode_result(
                    data,
                    document,
                    _story(item, created, request=request, source_sha256=prepared.source_sha256, rule=job.rule),
                    output_format=settings.format,
                    quality=settings.quality,
                    max_side=settings.max_side,
                    embed_metadata=settings.embed_metadata,
                )
                for data, document, item in zip(downloads, documents, response.data, strict=True)
            ]
            with self._folder_locked(inbox.output / locked):
                paths = self.gates.retry_output(
                    lambda: write.write_results(
                        inbox.output,
                        source,
                        rule=job.rule,
                        fingerprint=job.fingerprint,
                        finals=finals,
                        documents=documents,
                        template=inbox.output_name,
                        values=values,
                        reroll=None if reroll is None else reroll.id,
                        keep_download=settings.keep_download,
                    )
                )
        except OutputError as failed:  # not writable as asked, or blocked past the bound: it fails with the reason
            self.journal.record_job_failure(job.id, failed.record(), final=True)
            raise JobFailed(failed.record()) from None
        files = [str(place.image or place.sidecar) for place in paths]
        self.journal.record_written(job.id, files)
        unsafe = sum(1 for item in response.data if not item.url)
        log.info("remixd.job.finished", status="written", images=count - unsafe, withheld=unsafe, cost_usd=job.cost_usd)

    @contextmanager
    def _folder_locked(self, folder: Path) -> Iterator[None]:
        """Hold the output folder's lock, beating while another worker writes there (it may be waiting out
        a full disk, which must not read as a hung worker)."""
        lock = _FOLDER_LOCKS[hash(str(folder).casefold()) % len(_FOLDER_LOCKS)]
        if not self.gates.wait_for(lambda seconds: lock.acquire(timeout=seconds)):
            raise Stopped
        try:
            yield
        finally:
            lock.release()

    def _download(self, job: JobRecord, url: str) -> bytes:
        def journal(error: ApiUnavailable, final: bool) -> None:
            if final:  # an answered job stays answered while its download is retried
                self.journal.record_job_failure(job.id, error.record(), final=True)

        return retry_unavailable(
            lambda: self._fetch(job, url),
            policy=self.policy,
            clock=self.clock,
            rng=self.rng,
            sleep=self.gates.sleep,
            on_error=journal,
            event="remixd.download.retry",
        )

    def _fetch(self, job: JobRecord, url: str) -> bytes:
        self.gates.beat()  # each download may take its whole deadline: the watchdog's limit is one deadline
        try:
            return self.client.download(url)
        except UrlExpired as error:
            # Policy (README, "Expired result links"): never pay again on our own; fail with the way back.
            expired = with_hint(
                error,
                "its result links expired before remixd could fetch them; "
                "`remixd retry` sends it again (and pays again)",
            )
            self.journal.record_job_failure(job.id, expired.record(), final=True)
            raise JobFailed(expired.record()) from None
        except ApiRejected as error:
            self.journal.record_job_failure(job.id, error.record(), final=True)
            raise JobFailed(error.record()) from None


def _expected_files(files: Sequence[str]) -> list[str]:
    """Every file a written job left: each image with its sidecar (`STEM.RULE.K.json`), or the sidecar alone
    for a withheld image (the journal keeps the image's path, or the sidecar's when there is no image)."""
    expected = []
    for name in files:
        path = Path(name)
        expected += [name] if path.suffix == ".json" else [name, str(path.with_suffix(".json"))]
    return expected


def _story(item: ResultItem, created: str, *, request: RemixRequest, source_sha256: str, rule: str) -> embed.Story:
    """What the result's embedded metadata tells of how it was made."""
    return embed.Story(
        prompt=item.prompt or request.prompt,
        source_sha256=source_sha256,
        rule=rule,
        model=request.model,
        seed=item.seed,
        created=created,
    )


def stamp_now(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
