"""An answered job's results: download every image, then name and write each with its sidecar.

Downloads are retried through outages, but an expired link fails the job with the way back instead of sending
the request again: remixd never pays twice on its own (README, "Expired result links"). Writes wait out a full
disk or a read-only folder, holding the output folder's lock so two inputs never take the same free name.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import structlog
from PIL import Image

from remixd.config.model import InboxConfig
from remixd.errors import ApiRejected, ApiUnavailable, JobFailed, UrlExpired, with_hint
from remixd.files import names, sidecar
from remixd.ideogram.client import RemixApi
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import RemixResponse
from remixd.journal.records import InputRecord, JobRecord, Journal
from remixd.work.gates import Gates, Stopped
from remixd.work.prepare import PreparedImage
from remixd.work.retry import RetryPolicy

log = structlog.get_logger(__name__)

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
    monotonic: Callable[[], float]
    now: Callable[[], datetime]
    rng: random.Random

    def verify_written(
        self, job: JobRecord, request: RemixRequest, record: InputRecord, inbox: InboxConfig, prepared: PreparedImage
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
        self.download_and_write(job, request, record, inbox, prepared)

    def download_and_write(
        self, job: JobRecord, request: RemixRequest, record: InputRecord, inbox: InboxConfig, prepared: PreparedImage
    ) -> None:
        response = RemixResponse.model_validate(job.response)
        images = [self._download(job, item.url) if item.url else None for item in response.data]
        formats = [None if data is None else _image_facts(data) for data in images]
        source = sidecar.Source(
            record.inbox, record.relpath, prepared.source_sha256, prepared.source_bytes, prepared.conversion
        )
        digests = [None if data is None else _sha256(data) for data in images]
        # Choosing free names and taking them is one step per output folder: two inputs whose names collide
        # (same.jpg and same.png, or two long names cut to one) must never both pick the same free name.
        with self._folder_locked(inbox.output / PurePosixPath(record.relpath).parent):
            paths = self.gates.retry_output(
                lambda: names.result_paths(
                    inbox.output,
                    source,
                    job.rule,
                    job.fingerprint,
                    extensions=[None if facts is None else facts[0] for facts in formats],
                    image_sha256s=digests,
                )
            )
            completed = self.now()
            for item, data, digest, facts, place in zip(response.data, images, digests, formats, paths, strict=True):
                info = None
                if data is not None and digest is not None and facts is not None and place.image is not None:
                    info = sidecar.ImageInfo(
                        file=place.image.name, sha256=digest, bytes=len(data), width=facts[1], height=facts[2]
                    )
                document = sidecar.sidecar(
                    source=source,
                    rule=job.rule,
                    fingerprint=job.fingerprint,
                    endpoint=self.client.endpoint_url(request),
                    request=request.wire_fields(),
                    created=response.created,
                    index=place.index,
                    count=len(paths),
                    item=item.model_dump(mode="json"),
                    image=info,
                    cost_usd=round(job.cost_usd / len(paths), 6),
                    detected_at=record.detected_at,
                    submitted_at=job.submitted_at or completed,
                    completed_at=completed,
                )
                self.gates.retry_output(
                    lambda place=place, data=data, document=document: (  # type: ignore[misc]
                        sidecar.write_result(place, data, document)
                    )
                )
        files = [str(place.image or place.sidecar) for place in paths]
        self.journal.record_written(job.id, files)
        unsafe = sum(1 for item in response.data if not item.url)
        log.info(
            "remixd.job.finished", status="written", images=len(paths) - unsafe, withheld=unsafe, cost_usd=job.cost_usd
        )

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
        attempts, first = 0, self.monotonic()
        while True:
            attempts += 1
            try:
                return self.client.download(url)
            except UrlExpired as error:
                # Policy (README, "Expired result links"): never pay again on our own; fail with the way back.
                expired = with_hint(
                    error,
                    "its result links expired before remixd could fetch them; "
                    "`remixd retry` sends it again (and pays again)",
                )
                self.journal.record_job_failure(job.id, expired.to_dict(), final=True)
                raise JobFailed(expired) from None
            except ApiUnavailable as error:
                if self.policy.gives_up(attempts, self.monotonic() - first):
                    self.journal.record_job_failure(job.id, error.to_dict(), final=True)
                    raise JobFailed(error) from None
                delay = self.policy.delay(attempts, error.retry_after, self.rng)
                log.warning("remixd.download.retry", attempt=attempts, delay_s=round(delay, 2), error=error.message)
                if self.gates.sleep(delay):
                    raise Stopped from None
            except ApiRejected as error:
                self.journal.record_job_failure(job.id, error.to_dict(), final=True)
                raise JobFailed(error) from None


def _expected_files(files: Sequence[str]) -> list[str]:
    """Every file a written job left: each image with its sidecar (`STEM.RULE.K.json`), or the sidecar alone
    for a withheld image (the journal keeps the image's path, or the sidecar's when there is no image)."""
    expected = []
    for name in files:
        path = Path(name)
        expected += [name] if path.suffix == ".json" else [name, str(path.with_suffix(".json"))]
    return expected


def _image_facts(data: bytes) -> tuple[str, int, int]:
    """(extension, width, height) of a downloaded image; the client already checked that it decodes."""
    with Image.open(io.BytesIO(data)) as image:
        extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(image.format or "", "png")
        return extension, image.width, image.height


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
