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
from datetime import datetime
from pathlib import Path
from typing import Any

from remixd.clock import Clock
from remixd.config.model import InboxConfig
from remixd.daemon.notify import Notifier
from remixd.files.atomic import TEMP_PREFIX
from remixd.files.names import ERROR_SUFFIX
from remixd.files.sidecar import ERROR_SCHEMA, RESULT_SCHEMA
from remixd.journal.rebuild import FailedInput, FinishedJob, Rebuilt
from remixd.journal.sqlite import SqliteJournal
from remixd.logs import get_logger

log = get_logger(__name__)

GroupKey = tuple[str, str, str, str, str, str, int | None]  # inbox, relpath, sha256, rule, fingerprint, sent, reroll
Progress = Callable[[str], None]  # told how far the rebuild is, often: it decides what to pass on
EVERY_FILES = 256  # files read between two words of progress: well under a second on the slowest disk
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


def rebuild_from_sidecars(
    journal: SqliteJournal, inboxes: Sequence[InboxConfig], progress: Progress | None = None
) -> Rebuilt:
    """Called only while the journal `is_new()`; says what it found and wrote back, and `progress` how far
    it is while it runs."""
    tell = progress or (lambda status: None)
    folders = sorted({inbox.output for inbox in inboxes})
    keeping = {str(inbox.path) for inbox in inboxes if inbox.after == "keep"}
    jobs, sidecars, unreadable, incomplete = read_finished_jobs(folders, tell, keeping)
    failed, unreadable_errors = read_failed_inputs(sorted({inbox.failed_dir for inbox in inboxes}))
    unreadable += unreadable_errors
    said = f"rebuilding from sidecars: {sidecars + len(unreadable):,} read"
    rebuilt = journal.rebuild(jobs, failed, lambda written: tell(f"{said}, {written:,} of {len(jobs):,} jobs written"))
    if sidecars or unreadable or failed:
        log.warning(
            "remixd.recover.rebuilt",
            sidecars=sidecars,
            inputs=rebuilt.inputs,
            jobs=rebuilt.jobs,
            spend_usd=rebuilt.usd,
            failed=rebuilt.failed,
            incomplete=incomplete,
            unreadable=unreadable,
            hint="the journal was new: what the sidecars in the output folders say was done is not sent again;"
            " failed inputs wait for `remixd retry` again",
        )
    return rebuilt


def read_finished_jobs(
    folders: Iterable[Path], progress: Progress, keeping: Collection[str] = ()
) -> tuple[list[FinishedJob], int, list[str], int]:
    """(the jobs, sidecars read, sidecars that could not be read, jobs with fewer sidecars than results).
    A job of an inbox in `keeping` (`after: keep`) names its input's size and mtime as claimed, when its
    sidecar has them."""
    groups: dict[GroupKey, list[tuple[int, str, dict[str, Any]]]] = {}
    seen: set[str] = set()
    sidecars, unreadable = 0, []
    for path in (path for folder in folders for path in _json_files(folder)):
        if path in seen:  # one output folder inside another
            continue
        seen.add(path)
        if len(seen) % EVERY_FILES == 0:
            progress(f"rebuilding from sidecars: {len(seen):,} read")
        try:
            with open(path, "rb") as opened:  # noqa: PTH123 — pathlib took a third of the time for 100,000 files
                document = json.load(opened)
            key, index, file = _describe(document, path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            unreadable.append(path)
            continue
        if key is None:
            continue  # not a result sidecar
        sidecars += 1
        groups.setdefault(key, []).append((index, file, document))
    jobs, incomplete = [], 0
    for key, results in groups.items():
        results.sort(key=lambda result: result[0])
        first = results[0][2]
        count = int(first["result"]["count"])
        incomplete += len(results) < count
        usd = round(float(first["cost_usd"]) * count, 6)
        inbox, relpath, sha256, rule, fingerprint, sent, reroll = key
        jobs.append(
            FinishedJob(
                inbox=inbox,
                relpath=relpath,
                sha256=sha256,
                rule=rule,
                fingerprint=fingerprint,
                files=tuple(file for _, file, _ in results),
                day=sent[:10],
                sandbox=bool(first.get("sandbox")),
                images=count,
                usd=usd,
                possible_payments=int(first.get("possible_payments") or 0),
                reroll=reroll,
                kept=_kept(first["source"]) if inbox in keeping and reroll is None else None,
            )
        )
    return jobs, sidecars, unreadable, incomplete


def read_failed_inputs(folders: Iterable[Path]) -> tuple[list[FailedInput], list[str]]:
    """(the failed inputs their `NAME.error.json` files tell of, error files that could not be read)."""
    failed, unreadable, seen = [], [], set()
    for path in (path for folder in folders for path in _json_files(folder)):
        if not path.endswith(ERROR_SUFFIX) or path in seen:
            continue
        seen.add(path)
        try:
            with open(path, "rb") as opened:  # noqa: PTH123 — as for the sidecars
                document = json.load(opened)
            if not isinstance(document, dict) or document.get("schema") != ERROR_SCHEMA:
                continue  # not remixd's
            failed.append(_failed_input(document, path[: -len(ERROR_SUFFIX)]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            unreadable.append(path)
    return failed, unreadable


def _failed_input(document: dict[str, Any], copy: str) -> FailedInput:
    """The input beside its error file; a name cut to fit (files.names.error_file_name) finds no copy, and
    stays counted but not retried."""
    source = document["source"]
    try:
        found = os.stat(copy)  # noqa: PTH116 — as for the sidecars
    except OSError:
        found = None
    return FailedInput(
        inbox=str(source["inbox"]),
        relpath=str(source["relpath"]),
        sha256=source["sha256"] if isinstance(source["sha256"], str) else None,
        size=found.st_size if found else int(source["bytes"] or 0),
        mtime_ns=found.st_mtime_ns if found else 0,
        document=document,
        failed_at=datetime.fromisoformat(str(document["failed_at"])),
        failed_copy=copy if found else None,
    )


def _kept(source: dict[str, Any]) -> tuple[int, int] | None:
    """The kept input's (size, mtime_ns) at its claim; None from a sidecar older than `source.mtime_ns`."""
    size, mtime_ns = source.get("bytes"), source.get("mtime_ns")
    return (size, mtime_ns) if isinstance(size, int) and isinstance(mtime_ns, int) else None


def _describe(document: Any, path: str) -> tuple[GroupKey | None, int, str]:
    """The job a sidecar belongs to, its result's index and the file the journal names for it."""
    if not isinstance(document, dict) or document.get("schema") != RESULT_SCHEMA:
        return None, 0, path
    source, rule, image = document["source"], document["rule"], document["image"]
    if not isinstance(source["sha256"], str):
        return None, 0, path  # the source could not be read: nothing to find it by
    reroll = document.get("reroll")
    key: GroupKey = (
        str(source["inbox"]),
        str(source["relpath"]),
        source["sha256"],
        str(rule["name"]),
        str(rule["fingerprint"]),
        str(document["timings"]["submitted_at"]),
        None if reroll is None else int(reroll["id"]),
    )
    file = path if image is None else path[: path.rindex(os.sep) + 1] + str(image["file"])
    return key, int(document["result"]["index"]), file


def _json_files(folder: Path) -> Iterator[str]:
    """Every *.json under `folder`, with scandir: 100,000 sidecars are read in seconds (bench, figure 10)."""
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.name.endswith(".json") and not entry.name.startswith(TEMP_PREFIX):
                yield entry.path
