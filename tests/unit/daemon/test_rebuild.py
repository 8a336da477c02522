"""A new journal learns from the sidecars what was done and paid, so nothing is bought again."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from remixd.config.load import load_config
from remixd.config.model import InboxConfig
from remixd.daemon.notify import Notifier
from remixd.daemon.operator import retry_failed
from remixd.daemon.rebuild import EVERY_FILES, StartProgress, rebuild_from_sidecars
from remixd.errors import InputError
from remixd.files.atomic import NAME_MAX
from remixd.files.dispose import dispose_failed
from remixd.files.sidecar import ImageInfo, ResultPaths, Source, error_document, sidecar, write_result
from remixd.journal import rebuild as journal_rebuild
from remixd.journal.readonly import read_journal
from remixd.journal.records import Spend
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock, make_image, write_config

SENT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def inbox(tmp_path: Path) -> InboxConfig:
    return load_config(write_config(tmp_path, None)).inboxes[0]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(tmp_path / "state/journal.sqlite3", FakeClock(SENT))
    yield opened
    opened.close()


def result(
    inbox: InboxConfig,
    stem: str,
    *,
    index: int = 1,
    count: int = 1,
    sha256: str = "a" * 64,
    cost_usd: float = 0.08,
    withheld: bool = False,
    extra: dict[str, Any] | None = None,
    possible_payments: int = 0,
    mtime_ns: int | None = None,
) -> Path:
    """A result and its sidecar as remixd writes them, for source `stem`.jpg under rule poster."""
    document = sidecar(
        source=Source(str(inbox.path), f"{stem}.jpg", sha256, 1234, None, mtime_ns),
        rule="poster",
        fingerprint="f" * 64,
        endpoint="https://api.ideogram.ai/remix",
        request={"prompt": stem},
        created="2026-03-01T09:30:01+00:00",
        route="V_2",
        generation_id=None,
        cost_source="table",
        index=index,
        count=count,
        item={"seed": 1},
        image=None if withheld else ImageInfo(f"{stem}.poster.{index}.png", "b" * 64, 3, 1, 1),
        cost_usd=round(cost_usd / count, 6),
        possible_payments=possible_payments,
        detected_at=SENT,
        submitted_at=SENT,
        completed_at=SENT,
    )
    document.update(extra or {})
    image = None if withheld else inbox.output / f"{stem}.poster.{index}.png"
    write_result(
        ResultPaths(index, image, inbox.output / f"{stem}.poster.{index}.json"), None if withheld else b"png", document
    )
    return image or inbox.output / f"{stem}.poster.{index}.json"


def test_a_new_journal_finds_the_sidecars_results_as_duplicates_and_counts_their_spend(
    inbox: InboxConfig, journal: SqliteJournal, tmp_path: Path
) -> None:
    journal_path = tmp_path / "state/journal.sqlite3"
    first = result(inbox, "beach", index=1, count=2, cost_usd=0.16)
    second = result(inbox, "beach", index=2, count=2, cost_usd=0.16, withheld=True)
    result(inbox, "dune", sha256="c" * 64)
    assert journal.is_new()

    with capture_logs() as logs:
        rebuilt = rebuild_from_sidecars(journal, [inbox])

    assert (rebuilt.inputs, rebuilt.jobs, rebuilt.usd) == (2, 2, 0.24)
    earlier = journal.find_duplicate("a" * 64, "poster", "f" * 64)
    assert earlier is not None and earlier.files == (str(first), str(second))
    assert journal.find_duplicate("c" * 64, "poster", "f" * 64) is not None
    assert journal.find_duplicate("d" * 64, "poster", "f" * 64) is None
    spent = journal.spent(date(2026, 3, 1))
    assert (spent.images, spent.usd) == (3, 0.24)  # today's budget counts what was already paid
    assert journal.counts()["done"] == 2
    assert not journal.is_new()
    with read_journal(journal_path, date(2026, 3, 1)) as view:  # `remixd plan` hashes a file to find them
        assert view.may_be_duplicate(1234) and view.written("a" * 64, "poster", "f" * 64)
    [said] = [entry for entry in logs if entry["event"] == "remixd.recover.rebuilt"]
    assert (said["sidecars"], said["inputs"], said["spend_usd"], said["incomplete"]) == (3, 2, 0.24, 0)


def test_a_reroll_and_a_possible_payment_are_paid_again_in_the_ledger_not_new_results(
    inbox: InboxConfig, journal: SqliteJournal
) -> None:
    result(inbox, "beach", possible_payments=1)
    reroll = {"reroll": {"id": 7, "of_input": 1, "seed": 9}}
    result(inbox, "beach-again", extra=reroll)  # a reroll's sidecar names the same source
    rebuilt = rebuild_from_sidecars(journal, [inbox])
    assert rebuilt.jobs == 2
    spent = journal.spent(date(2026, 3, 1))
    assert (spent.images, spent.usd, spent.unknown) == (3, 0.24, 1)
    assert journal.possible_payments().unknown == 1


def test_memory_stays_flat_in_the_number_of_sidecars(
    inbox: InboxConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million sidecars held as documents took gigabytes: they are staged in the journal a batch at a time."""
    monkeypatch.setattr(journal_rebuild, "BATCH", 50)
    template = json.loads(result(inbox, "beach").with_suffix(".json").read_text())
    peaks = []
    for count in (200, 1_200):
        for number in range(count):
            document = {**template, "source": {**template["source"], "sha256": f"{number:064x}"}}
            (inbox.output / f"photo-{number:05d}.poster.1.json").write_text(json.dumps(document))
        journal = SqliteJournal(tmp_path / f"state-{count}/journal.sqlite3", FakeClock(SENT))
        tracemalloc.start()
        try:
            assert rebuild_from_sidecars(journal, [inbox]).jobs == count + 1  # and the template
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
            journal.close()
    assert peaks[1] < peaks[0] + 100_000  # 1,000 more sidecars, as documents, are megabytes


def test_unreadable_and_foreign_json_are_counted_apart_and_a_missing_result_is_incomplete(
    inbox: InboxConfig, journal: SqliteJournal
) -> None:
    result(inbox, "beach", index=1, count=2)
    nested = dataclasses.replace(inbox, output=inbox.output / "nested")
    result(nested, "dune", sha256="c" * 64)
    (inbox.output / "cut.poster.1.json").write_text('{"schema": "remixd.result/1", "sour')
    (inbox.output / "notes.json").write_text('{"mine": true}')
    (inbox.output / "list.json").write_text("[1, 2]")
    with capture_logs() as logs:
        rebuilt = rebuild_from_sidecars(journal, [inbox, nested, inbox])  # each sidecar is read once
    assert (rebuilt.jobs, rebuilt.incomplete) == (2, 1)
    [said] = [entry for entry in logs if entry["event"] == "remixd.recover.rebuilt"]
    assert (said["sidecars"], said["unreadable"]) == (2, 1)
    assert said["unreadable_files"] == [str(inbox.output / "cut.poster.1.json")]


def test_a_journal_that_knows_anything_is_not_new(inbox: InboxConfig, journal: SqliteJournal) -> None:
    assert journal.is_new()
    journal.claim(str(inbox.path), "a.jpg", 1, 1)
    assert not journal.is_new()


def test_the_rebuild_says_how_far_it_is_while_it_reads_and_writes(inbox: InboxConfig, journal: SqliteJournal) -> None:
    for number in range(EVERY_FILES + 10):
        result(inbox, f"photo-{number:03d}", sha256=f"{number:064x}")
    said: list[str] = []
    rebuild_from_sidecars(journal, [inbox], said.append)
    assert said[0] == f"rebuilding from sidecars: {EVERY_FILES} read"
    assert said[-1] == "rebuilding from sidecars: 266 read, 266 jobs written"


def test_systemd_hears_from_a_long_rebuild_at_the_loops_pace(tmp_path: Path) -> None:
    """A start silent for TimeoutStartSec is killed and restarted into the same rebuild: each word extends it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(5)
        clock = FakeClock()
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "60000000"})
        progress = StartProgress(notifier, clock, 5.0)
        for read in range(0, 3000, 256):  # a slow disk: a second for every 256 files
            progress(f"rebuilding from sidecars: {read} read")
            clock.advance(1.0)
        sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines()))
            except BlockingIOError:
                break
    assert [message["STATUS"] for message in messages] == [
        "rebuilding from sidecars: 0 read",
        "rebuilding from sidecars: 1280 read",
        "rebuilding from sidecars: 2560 read",
    ]
    assert all(message["WATCHDOG"] == "1" for message in messages)
    assert all(message["EXTEND_TIMEOUT_USEC"] == "30000000" for message in messages)


@pytest.mark.parametrize("after", ["keep", "move"])
def test_an_unchanged_kept_input_is_not_claimed_again(tmp_path: Path, journal: SqliteJournal, after: str) -> None:
    """As with the journal that was lost: a kept file seen unchanged is skipped, not hashed into a duplicate."""
    kept = load_config(write_config(tmp_path, None, inbox={"after": after})).inboxes[0]
    result(kept, "beach", mtime_ns=5_000)
    result(kept, "dune", sha256="c" * 64)  # a sidecar from before `source.mtime_ns`: claimed, then a duplicate
    rebuild_from_sidecars(journal, [kept])
    inbox = str(kept.path)
    assert journal.claim(inbox, "dune.jpg", 1234, 5_000) is not None
    if after == "move":  # moved to the done folder: a file under its name now is new, as with the lost journal
        assert journal.claim(inbox, "beach.jpg", 1234, 5_000) is not None
        return
    assert journal.claim(inbox, "beach.jpg", 1234, 5_000) is None
    assert journal.claim(inbox, "beach.jpg", 1234, 6_000) is not None  # changed since: a new input


def test_failed_inputs_come_back_from_their_error_files_for_retry_and_the_counts(
    tmp_path: Path, inbox: InboxConfig, journal: SqliteJournal
) -> None:
    source = make_image(inbox.path / "sub/bad.jpg")
    error = InputError("not an image", hint="replace the file").record()
    document = error_document(
        source=Source(str(inbox.path), "sub/bad.jpg", "b" * 64, 10), rule="poster", fingerprint="f" * 64,
        error=error, attempts=1, failed_at=SENT,
    )  # fmt: skip
    disposed = dispose_failed(source, inbox.failed_dir, "sub/bad.jpg", None, document)
    assert disposed.input == inbox.failed_dir / "sub/bad.jpg"
    gone = inbox.failed_dir / "gone.jpg.error.json"  # its input removed by hand: counted, nothing to retry
    gone.write_text(json.dumps({**document, "source": {**document["source"], "relpath": "gone.jpg"}}))
    (inbox.failed_dir / "cut.jpg.error.json").write_text('{"schema": "remixd.error/1", "sour')

    rebuilt = rebuild_from_sidecars(journal, [inbox])

    assert rebuilt.failed == 2
    assert journal.counts()["failed"] == 2
    [lost, waiting] = sorted(journal.failed_inputs(), key=lambda record: record.relpath)
    assert (waiting.relpath, waiting.disposed_to, waiting.sha256) == ("sub/bad.jpg", str(disposed.input), "b" * 64)
    assert waiting.error == document and waiting.finished_at == SENT
    assert (lost.relpath, lost.disposed_to) == ("gone.jpg", None)
    config = load_config(write_config(tmp_path, None))
    report = retry_failed(config, [inbox.failed_dir / "sub/bad.jpg"])
    assert report.lines[-1] == "1 input(s) put back" and not report.unknown
    assert (inbox.path / "sub/bad.jpg").is_file() and not disposed.error_file.exists()


# A million sidecars at $0.08 summed as floats, one by one, came to $80,000.000001; 300 amounts this large drift
# as far with fewer additions (a float sum of them is $266,988,574.38990122).
LARGE_USD, MANY = 889961.914633, 300
EXACT_TOTAL = 266988574.3899


def staged(number: int, *, day: date | None = None, possible_payments: int = 0) -> journal_rebuild.ResultSidecar:
    """A result sidecar as the rebuild reads it, of its own source, sent on `day` for LARGE_USD."""
    return journal_rebuild.ResultSidecar(
        "/srv/inbox", f"{number}.jpg", f"{number:064x}", "poster", "f" * 64, f"{day or SENT.date()}T09:30:00+00:00",
        None, 1, 1, f"/srv/outbox/{number}.poster.1.png", LARGE_USD, False, possible_payments, None,
    )  # fmt: skip


def test_the_rebuild_sums_money_exactly_however_many_amounts_it_adds(journal: SqliteJournal) -> None:
    rebuilt = journal.rebuild([staged(number) for number in range(MANY)], [], lambda jobs: None)
    assert rebuilt.usd == EXACT_TOTAL
    assert journal.spent(SENT.date()).usd == EXACT_TOTAL


def test_the_ledger_sums_money_exactly_across_days(journal: SqliteJournal) -> None:
    """Each day's spend is one row of `spend_days`; the possible payments of every day are summed from them."""
    days = [SENT.date() - timedelta(days=number) for number in range(MANY)]
    journal.rebuild([staged(n, day=day, possible_payments=1) for n, day in enumerate(days)], [], lambda jobs: None)
    assert journal.possible_payments() == Spend(images=MANY, usd=EXACT_TOTAL, unknown=MANY)


def test_a_failed_input_too_long_for_its_error_files_name_is_found_again_and_retried(
    tmp_path: Path, inbox: InboxConfig, journal: SqliteJournal
) -> None:
    """250 bytes of name leave no room for `.error.json`: the error file's name is shortened as a result's is,
    and a rebuilt journal finds the input by it, for `remixd retry`."""
    names = ["long-" + "x" * 241 + ".jpg", "long-" + "x" * 241 + ".png"]  # 250 bytes each, alike for 246
    error = InputError("not an image", hint="replace the file").record()
    error_files = []
    for name in names:
        document = error_document(
            source=Source(str(inbox.path), name, None, 10), rule="poster", fingerprint="f" * 64, error=error,
            attempts=1, failed_at=SENT,
        )  # fmt: skip
        disposed = dispose_failed(make_image(inbox.path / name), inbox.failed_dir, name, None, document)
        assert disposed.input == inbox.failed_dir / name
        assert re.fullmatch(r"long-x+~[0-9a-f]{8}\.error\.json", disposed.error_file.name)
        assert len(os.fsencode(disposed.error_file.name)) <= NAME_MAX
        error_files.append(disposed.error_file)
    assert len(set(error_files)) == 2 and all(path.is_file() for path in error_files)  # one each, none lost

    assert rebuild_from_sidecars(journal, [inbox]).failed == 2

    assert sorted(str(record.disposed_to) for record in journal.failed_inputs()) == sorted(
        str(inbox.failed_dir / name) for name in names
    )
    report = retry_failed(load_config(write_config(tmp_path, None)))
    assert report.lines[-1] == "2 input(s) put back"
    assert all((inbox.path / name).is_file() for name in names)
    assert not any(path.exists() for path in error_files)
