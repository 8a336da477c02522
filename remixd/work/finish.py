"""How a claimed input ends: finished in the journal, its source moved, deleted or kept, or failed with an error file.

Disposal comes after every result is durable (README, "How remixd keeps files and money safe"); a done or
failed folder that stays unwritable keeps the input where it is instead of losing it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from remixd.clock import Clock
from remixd.config.model import InboxConfig
from remixd.errors import ErrorRecord, OutputError
from remixd.files import dispose, sidecar
from remixd.journal.records import InputRecord, JobRecord, Journal
from remixd.logs import get_logger
from remixd.work.gates import Gates
from remixd.work.prepare import PreparedImage

log = get_logger(__name__)

Outcome = Literal["done", "duplicate", "failed", "vanished", "renamed", "deferred"]
# Whether a file of the image's stem beside it (the image's path, its relative path, its inbox) will be claimed:
# then the stem's companions wait for it (README "Companions"). The intake knows which files it claims.
StemWaits = Callable[[Path, str, InboxConfig], bool]


class Finisher:
    def __init__(
        self, journal: Journal, gates: Gates, *, clock: Clock, sandbox: Callable[[], bool], stem_waits: StemWaits
    ) -> None:
        self._journal = journal
        self._stem_waits = stem_waits
        self._gates = gates
        self._clock = clock
        self._sandbox = sandbox
        # Images of one stem share its companions, which leave with the last of them (README "Companions"):
        # one disposal of such an input at a time, so that two at once do not each leave the files to the other.
        self._companions = threading.Lock()

    def finish(self, record: InputRecord, state: Literal["done", "duplicate"]) -> InputRecord:
        self._journal.finish_input(record.id, state)
        return self._journal.get_input(record.id)

    def dispose_of(self, record: InputRecord, inbox: InboxConfig, source_path: Path) -> Outcome:
        try:
            with self._companions if record.companions else contextlib.nullcontext():
                return self._dispose_processed(record, inbox, source_path)
        except dispose.Replaced:
            # Overwritten or renamed over since its claim: the processed file is no longer there, and what is
            # there now is a new input (the intake claims it); the results stay, nothing else is moved.
            log.warning(
                "remixd.input.replaced",
                relpath=record.relpath,
                hint="the file changed after it was claimed; the new one is processed as a new input",
            )
        except OutputError as blocked:  # the done or failed folder stayed unwritable: the input stays put
            log.error("remixd.input.kept", relpath=record.relpath, error=blocked.message, hint=blocked.hint)
        self._journal.set_disposed(record.id, "kept", None)
        return "failed" if record.state == "failed" else "duplicate" if record.state == "duplicate" else "done"

    def _dispose_processed(self, record: InputRecord, inbox: InboxConfig, source_path: Path) -> Outcome:
        companions = [name for name, _text in record.companions]
        shared = bool(companions) and (
            self._journal.shares_companions(record) or self._stem_waits(source_path, record.relpath, inbox)
        )
        if record.state == "failed":
            disposed = dispose.dispose_failed(
                source_path,
                inbox.failed_dir,
                record.relpath,
                record.sha256,
                record.error or {},
                companions=companions,
                shared=shared,
                retry=self._gates.retry_output,
            )
            self._journal.set_disposed(record.id, "moved", None if disposed.input is None else str(disposed.input))
            return "failed"
        destination = dispose.dispose_done(
            source_path,
            inbox.after,
            inbox.done_dir,
            record.relpath,
            record.sha256,
            companions=companions,
            shared=shared,
            retry=self._gates.retry_output,
        )
        disposal = {"move": "moved", "delete": "deleted", "keep": "kept"}[inbox.after]
        self._journal.set_disposed(
            record.id,
            disposal,  # type: ignore[arg-type]
            None if destination is None else str(destination),
        )
        return "duplicate" if record.state == "duplicate" else "done"

    def fail(  # noqa: PLR0917 — the input, where it is, what is known of it, and why it failed
        self,
        record: InputRecord,
        inbox: InboxConfig,
        source_path: Path,
        prepared: PreparedImage | None,
        error: ErrorRecord,
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
            error=error,
            attempts=self._journal.get_job(job.id).attempts if job else 0,
            failed_at=self._clock.utcnow(),
            sandbox=job.sandbox if job else self._sandbox(),
            payments=[
                paid.to_json()
                for paid in (*self._journal.earlier_payments(record.id), *self._journal.unwritten_payments(record.id))
            ],
        )
        log.error(
            "remixd.input.failed", kind=error.kind, error=error.message, hint=error.hint, rule=job.rule if job else None
        )
        self._journal.finish_input(record.id, "failed", document)
        return self.dispose_of(self._journal.get_input(record.id), inbox, source_path)
