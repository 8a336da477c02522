"""At the start of a new journal, what the sidecars in the output folders say was done is written back, before
any input is claimed (README "The sidecars are a second journal").

A journal deleted, lost with its disk, or left behind by a moved state_dir forgot every input it finished; with
`after: keep` those inputs are still in their inbox, and each was bought again. The sidecars name what made
each result (the source's sha256, the rule and its fingerprint, the cost and the day it was sent), so the
duplicate check finds them again and today's budget counts what was already paid.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from remixd.clock import Clock
from remixd.config.model import InboxConfig
from remixd.daemon.notify import Notifier
from remixd.files.atomic import TEMP_PREFIX
from remixd.files.names import ERROR_SUFFIX, SHORTENED, named_by_error_file
from remixd.files.sidecar import ERROR_SCHEMA, RESULT_SCHEMA
from remixd.journal.rebuild import FailedInput, Rebuilt, ResultSidecar
from remixd.journal.records import Payment
from remixd.journal.sqlite import SqliteJournal
from remixd.logs import get_logger

log = get_logger(__name__)

Progress = Callable[[str], None]  # told how far the rebuild is, often: it decides what to pass on
EVERY_FILES = 256  # files read between two words of progress: well under a second on the slowest disk
READ_BYTES = 1 << 16  # a sidecar is a few kilobytes: one read takes it whole
EXTEND_PACES = 6  # each word of progress gives the start this many paces more before systemd may kill it


class StartProgress:
    """systemd hears from a start the rebuild holds back (README "The sidecars are a second journal"): a
    million sidecars take minutes, and a start silent for TimeoutStartSec (90 s by default) is killed and
    restarted into the same rebuild, again and again. Every `pace_s` (the main loop's pace: watchdog pings at
    most WatchdogSec/4 apart) it sends STATUS= with what was read, EXTEND_TIMEOUT_USEC= and WATCHDOG=1."""

    def __init__(self, notifier: Notifier, clock: Clock, pace_s: float) -> None:
        self._notifier = notifier
        self._clock = clock
        self._pace_s = pace_s
        self._next = -math.inf  # the first word goes at once (a new journal with nothing to read says none)

    def __call__(self, status: str) -> None:
        now = self._clock.monotonic()
        if now >= self._next:
            self._next = now + self._pace_s
            self._notifier.starting(status, EXTEND_PACES * self._pace_s)


UNREADABLE_SHOWN = 10  # unreadable files named in the log line; the rest are counted


@dataclass
class Reading:
    """What a walk of the output folders found so far (the sidecars themselves go on to the journal)."""

    read: int = 0  # *.json files opened
    sidecars: int = 0  # of them, remixd's result sidecars
    unreadable: int = 0
    shown: list[str] = field(default_factory=list)  # the first UNREADABLE_SHOWN of the unreadable

    def cannot_read(self, path: str) -> None:
        self.unreadable += 1
        if len(self.shown) < UNREADABLE_SHOWN:
            self.shown.append(path)


def rebuild_from_sidecars(
    journal: SqliteJournal, inboxes: Sequence[InboxConfig], progress: Progress | None = None
) -> Rebuilt:
    """Called only while the journal `is_new()`; says what it found and wrote back, and `progress` how far
    it is while it runs."""
    tell = progress or (lambda status: None)
    keeping = {str(inbox.path) for inbox in inboxes if inbox.after == "keep"}
    reading = Reading()
    sidecars = read_sidecars(_outermost(inbox.output for inbox in inboxes), tell, reading, keeping)
    failed = read_failed_inputs(_outermost(inbox.failed_dir for inbox in inboxes), reading)

    def written(jobs: int) -> None:
        tell(f"rebuilding from sidecars: {reading.read:,} read, {jobs:,} jobs written")

    rebuilt = journal.rebuild(sidecars, failed, written)
    if reading.sidecars or reading.unreadable or rebuilt.failed:
        log.warning(
            "remixd.recover.rebuilt",
            sidecars=reading.sidecars,
            inputs=rebuilt.inputs,
            jobs=rebuilt.jobs,
            spend_usd=rebuilt.usd,
            failed=rebuilt.failed,
            incomplete=rebuilt.incomplete,
            unreadable=reading.unreadable,
            unreadable_files=reading.shown,
            hint="the journal was new: what the sidecars in the output folders say was done is not sent again;"
            " failed inputs wait for `remixd retry` again",
        )
    return rebuilt


def _outermost(folders: Iterable[Path]) -> list[str]:
    """Each folder once, and none inside another of them: its files are found by the outer one's walk."""
    kept: list[str] = []
    for folder in sorted({str(folder) for folder in folders}):
        if not any(folder.startswith(outer + os.sep) for outer in kept):
            kept.append(folder)
    return kept


def read_sidecars(
    folders: Iterable[str], progress: Progress, reading: Reading, keeping: Collection[str] = ()
) -> Iterator[ResultSidecar]:
    """The result sidecars under `folders`, one at a time as they are read; `reading` counts them, and the
    files that could not be read. One of an inbox in `keeping` (`after: keep`) names its input's size and
    mtime as claimed, when the sidecar has them."""
    for path in _json_files(folders):
        reading.read += 1
        if reading.read % EVERY_FILES == 0:
            progress(f"rebuilding from sidecars: {reading.read:,} read")
        try:
            found = _result_sidecar(_load(path), path, keeping)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            reading.cannot_read(path)
            continue
        if found is not None:
            reading.sidecars += 1
            yield found


def read_failed_inputs(folders: Iterable[str], reading: Reading) -> Iterator[FailedInput]:
    """The failed inputs their `NAME.error.json` files tell of, one at a time; `reading` counts the error files
    that could not be read."""
    for path in _json_files(folders):
        if not path.endswith(ERROR_SUFFIX):
            continue
        try:
            document = _load(path)
            if not isinstance(document, dict) or document.get("schema") != ERROR_SCHEMA:
                continue  # not remixd's
            failed = _failed_input(document, path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            reading.cannot_read(path)
            continue
        yield failed


def _load(path: str) -> Any:
    """The JSON document at `path`, read with one open and as few reads as its size needs: open() and pathlib
    took a third of the time for 100,000 files (bench, figure 10)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, READ_BYTES)
        if len(data) == READ_BYTES:  # a larger document than remixd writes: the rest of it
            chunks = [data]
            while chunk := os.read(fd, READ_BYTES):
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return json.loads(data)


def _failed_input(document: dict[str, Any], error_file: str) -> FailedInput:
    """The input beside its error file: its name without `.error.json`, or the one whose name was shortened
    to the error file's (files.names.error_file_name). One gone from the failed folder stays counted, with
    nothing to retry."""
    source = document["source"]
    copy = error_file[: -len(ERROR_SUFFIX)]
    found = _stat(copy)
    if found is None and SHORTENED in Path(copy).name:  # rare: a name that long is looked for in its folder
        beside = Path(error_file)
        try:
            named = named_by_error_file(beside.name, (entry.name for entry in beside.parent.iterdir()))
        except OSError:
            named = None
        if named is not None:
            copy = str(beside.with_name(named))
            found = _stat(copy)
    return FailedInput(
        inbox=str(source["inbox"]),
        relpath=str(source["relpath"]),
        sha256=source["sha256"] if isinstance(source["sha256"], str) else None,
        size=found.st_size if found else int(source["bytes"] or 0),
        mtime_ns=found.st_mtime_ns if found else 0,
        document=document,
        failed_at=datetime.fromisoformat(str(document["failed_at"])),
        failed_copy=copy if found else None,
        payments=_payments(document, "payments"),
    )


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)  # noqa: PTH116 — as for the sidecars
    except OSError:
        return None


def _payments(document: dict[str, Any], key: str = "earlier_payments") -> tuple[Payment, ...]:
    """The payments an error file (`payments`) or a sidecar (`earlier_payments`) names for nothing written."""
    sandbox = bool(document.get("sandbox"))
    return tuple(Payment.from_json(paid, sandbox=sandbox) for paid in document.get(key) or ())


def _kept(source: dict[str, Any]) -> tuple[int, int] | None:
    """The kept input's (size, mtime_ns) at its claim; None from a sidecar older than `source.mtime_ns`."""
    size, mtime_ns = source.get("bytes"), source.get("mtime_ns")
    return (size, mtime_ns) if isinstance(size, int) and isinstance(mtime_ns, int) else None


def _result_sidecar(document: Any, path: str, keeping: Collection[str]) -> ResultSidecar | None:
    """What a result sidecar tells of its job and its place in it; None for any other JSON document."""
    if not isinstance(document, dict) or document.get("schema") != RESULT_SCHEMA:
        return None
    source, rule, image, result = document["source"], document["rule"], document["image"], document["result"]
    if not isinstance(source["sha256"], str):
        return None  # the source could not be read: nothing to find it by
    inbox, reroll = str(source["inbox"]), document.get("reroll")
    return ResultSidecar(
        inbox=inbox,
        relpath=str(source["relpath"]),
        sha256=source["sha256"],
        rule=str(rule["name"]),
        fingerprint=str(rule["fingerprint"]),
        submitted_at=str(document["timings"]["submitted_at"]),
        reroll=None if reroll is None else int(reroll["id"]),
        place=int(result["index"]),
        images=int(result["count"]),
        file=path if image is None else path[: path.rindex(os.sep) + 1] + str(image["file"]),
        cost_usd=float(document["cost_usd"]),
        sandbox=bool(document.get("sandbox")),
        possible_payments=int(document.get("possible_payments") or 0),
        kept=_kept(source) if inbox in keeping and reroll is None else None,
        earlier=_payments(document),
    )


def _json_files(folders: Iterable[str]) -> Iterator[str]:
    """Every *.json under `folders`, with scandir (100,000 sidecars are read in seconds: bench, figure 10), one
    folder's entries at a time: a folder of a million is never listed into memory."""
    stack = list(folders)
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.name.endswith(".json") and not entry.name.startswith(TEMP_PREFIX):
                        yield entry.path
        except OSError:
            continue
