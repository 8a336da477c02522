"""The review page's reads: keyset pages newest first, filters, the search by words, the overview's counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from remixd.errors import ErrorRecord
from remixd.journal.browse import GalleryQuery, JournalReader, reader
from remixd.journal.records import JobSpec
from remixd.journal.schema import MIGRATIONS
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(path, FakeClock(START))
    yield opened
    opened.close()


def add(
    journal: SqliteJournal,
    relpath: str,
    *,
    rule: str = "poster",
    prompt: str = "a beach",
    returned: str | None = None,
    state: str = "done",
    inbox: str = "/srv/inbox",
) -> int:
    input_id = journal.claim(inbox, relpath, 10, 1)
    assert input_id is not None
    if state == "claimed":
        return input_id
    [job] = journal.add_jobs(
        input_id, [JobSpec(rule, "f-" + relpath, "https://api/remix", {"prompt": prompt}, 1, 0.08)]
    )
    journal.start_submit(job.id)
    if state == "done":
        answer = {"created": "now", "data": [{"url": "https://x/1", "prompt": returned or prompt, "seed": 3}]}
        journal.record_answer(job.id, answer)
        journal.record_written(job.id, [f"/srv/outbox/{relpath}.{rule}.1.png"])
        journal.finish_input(input_id, "done")
    else:
        journal.record_job_failure(job.id, ErrorRecord("api_rejected", "no", http_status=422), final=True)
        journal.finish_input(input_id, "failed", {"error": {"kind": "api_rejected", "message": "no"}})
    journal.set_disposed(input_id, "moved", f"/srv/{state}/{relpath}")
    return input_id


def names(page_reader: JournalReader, **query: object) -> list[str]:
    return [record.relpath for record in page_reader.gallery(GalleryQuery(**query)).inputs]  # type: ignore[arg-type]


def test_pages_go_newest_first_and_back_by_id(journal: SqliteJournal, path: Path) -> None:
    ids = [add(journal, f"p{number:02d}.jpg") for number in range(60)]
    with reader(path) as browse:
        first = browse.gallery(GalleryQuery(limit=24))
        assert [r.id for r in first.inputs] == ids[::-1][:24]
        assert first.newer is None and first.older == ids[36]
        second = browse.gallery(GalleryQuery(limit=24, before=first.older))
        assert [r.id for r in second.inputs] == ids[::-1][24:48]
        last = browse.gallery(GalleryQuery(limit=24, before=second.older))
        assert [r.id for r in last.inputs] == ids[::-1][48:] and last.older is None
        back = browse.gallery(GalleryQuery(limit=24, after=last.newer))
        assert [r.id for r in back.inputs] == [r.id for r in second.inputs]
        assert back.newer == second.inputs[0].id and back.older == second.inputs[-1].id
        assert all(len(record.jobs) == 1 for record in second.inputs)


def test_filters_by_inbox_rule_and_state(journal: SqliteJournal, path: Path) -> None:
    add(journal, "a.jpg", rule="poster")
    add(journal, "b.jpg", rule="square")
    add(journal, "c.jpg", rule="square", state="failed")
    add(journal, "d.jpg", inbox="/srv/other")
    add(journal, "e.jpg", state="claimed")
    with reader(path) as browse:
        assert names(browse, rule="square") == ["c.jpg", "b.jpg"]
        assert names(browse, state="failed") == ["c.jpg"]
        assert names(browse, state="claimed") == ["e.jpg"]
        assert names(browse, inbox="/srv/other") == ["d.jpg"]
        assert names(browse, rule="square", state="done") == ["b.jpg"]
        assert browse.rules() == ["poster", "square"]


def test_search_finds_file_names_prompts_sent_and_returned_and_rules(journal: SqliteJournal, path: Path) -> None:
    add(journal, "Holiday/Beach Day.jpg", prompt="plain", rule="poster")
    add(journal, "two.jpg", prompt="A NEON street", rule="poster")
    add(journal, "three.jpg", prompt="short", returned="short, with golden light and magic", rule="poster")
    add(journal, "four.jpg", prompt="x", rule="watercolour")
    add(journal, "100%_done.jpg", prompt="x", rule="poster")
    with reader(path) as browse:
        assert names(browse, text="beach day") == ["Holiday/Beach Day.jpg"]  # any case, across the folder
        assert names(browse, text="day, beach!") == ["Holiday/Beach Day.jpg"]  # words in any order
        assert names(browse, text="neon") == ["two.jpg"]
        assert names(browse, text="golden light") == ["three.jpg"]  # only in Ideogram's answer
        assert names(browse, text="watercol") == ["four.jpg"]  # the start of a word
        assert names(browse, text="GOLD LI") == ["three.jpg"]
        assert names(browse, text="100%_do") == ["100%_done.jpg"]  # wildcards are plain characters
        assert names(browse, text="olden") == []  # inside a word
        assert names(browse, text="o.") == ["two.jpg"]  # too short for the index: file names still searched
        assert names(browse, text="%%%") == []  # no word to ask the index for: file names and rules, no error
        assert names(browse, text='"quoted"') == []
        assert names(browse, text="nothing like it") == []


def test_search_words_are_cut_as_the_index_cuts_them(journal: SqliteJournal, path: Path) -> None:
    """Letters and digits of any script make words; a search of any text asks the index without an error."""
    add(journal, "IMG_0042 café.jpg", prompt="Ölgemälde, 東京 at night", rule="poster")
    with reader(path) as browse:
        for text in ("0042", "img_00", "CAFÉ", "ölgemälde", "東京 at", "at night"):
            assert names(browse, text=text) == ["IMG_0042 café.jpg"], text
        for text in ('a"b', "*", "x AND y", "NEAR(a b)", "gemälde"):  # the index's own syntax is plain words
            assert names(browse, text=text) == [], text


def test_an_older_journal_is_indexed_for_search_when_it_is_opened(path: Path) -> None:
    with sqlite3.connect(path) as db:  # a journal written before the search index existed
        for statement in (*MIGRATIONS[0], "CREATE TABLE schema_version (version INTEGER NOT NULL)"):
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.execute(
            "INSERT INTO inputs VALUES (1, '/srv/inbox', 'old photo.jpg', 1, 1, NULL, 'done', ?, ?, ?, NULL, 'moved', "
            "NULL)",
            (START.isoformat(),) * 3,
        )
        db.execute(
            """INSERT INTO jobs (id, input_id, rule, fingerprint, endpoint, request, images, cost_usd, state, response,
               created_at) VALUES (1, 1, 'poster', 'f', 'e', '{"prompt": "sent"}', 1, 0.08, 'written',
               '{"data": [{"prompt": "returned sunset"}]}', ?)""",
            (START.isoformat(),),
        )
    db.close()
    SqliteJournal(path).close()
    with reader(path) as browse:
        assert (
            names(browse, text="old photo")
            == names(browse, text="sunset")
            == names(browse, text="poster")
            == ["old photo.jpg"]
        )


def test_the_overview_counts_per_inbox_what_is_in_flight_failed_and_spent(journal: SqliteJournal, path: Path) -> None:
    add(journal, "a.jpg")
    add(journal, "b.jpg", state="failed")
    add(journal, "c.jpg", state="claimed")
    waiting = journal.claim("/srv/other", "d.jpg", 1, 1)
    assert waiting is not None
    [job] = journal.add_jobs(waiting, [JobSpec("poster", "f", "e", {"prompt": "p"}, 2, 0.16)])
    journal.start_submit(job.id)
    polled = journal.claim("/srv/other", "g.jpg", 1, 1)
    assert polled is not None
    [generation] = journal.add_jobs(polled, [JobSpec("product", "g", "e", {"prompt": "p"}, 1, 0.06)])
    journal.start_submit(generation.id)
    journal.record_generation(generation.id, "gen-1", 7, images=1)
    with reader(path) as browse:
        version = browse.data_version()
        counts = browse.overview(since=START - timedelta(days=1), today=START.date())
        assert browse.data_version() == version  # reading changes nothing
        add(journal, "e.jpg")
        assert browse.data_version() != version  # the daemon's commit is seen
        later = browse.overview(since=START + timedelta(seconds=1), today=date(2026, 3, 2))
    assert counts.inboxes["/srv/inbox"]["done"] == 1 and counts.inboxes["/srv/inbox"]["claimed"] == 1
    assert counts.inboxes["/srv/other"]["claimed"] == 2
    assert (counts.submitting, counts.generating, counts.failed_since) == (1, 1, 1)
    # Every request sent counts, answered or not (README, "Every request counts"): the answered one, the
    # rejected one whose answer withdrew nothing here, the one in flight and the accepted generation.
    assert (counts.spent.images, counts.spent.usd) == (5, 0.38)
    assert counts.sandbox.images == 0
    assert (later.failed_since, later.spent.images) == (0, 0)


def test_a_reader_cannot_write(journal: SqliteJournal, path: Path) -> None:
    add(journal, "a.jpg")
    browse = JournalReader(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            browse._db.execute("DELETE FROM inputs")
    finally:
        browse.close()


def test_a_page_of_a_search_walks_the_index_newest_first_and_stops_at_its_last_input(
    journal: SqliteJournal, path: Path
) -> None:
    """A common word is held by most of a year's inputs: a page reads its 25 from the index, newest first, and
    never sorts or collects every input holding the word."""
    for number in range(30):
        add(journal, f"beach-{number:02d}.jpg", prompt="a beach", rule="poster")
    with reader(path) as browse:
        traced: list[str] = []
        browse._db.set_trace_callback(traced.append)
        first = browse.gallery(GalleryQuery(text="beach", limit=25, inbox="/srv/inbox"))
        second = browse.gallery(GalleryQuery(text="beach", limit=25, before=first.older))
        browse._db.set_trace_callback(None)
        plans = [" | ".join(row[3] for row in browse._db.execute("EXPLAIN QUERY PLAN " + sql))
                 for sql in traced if "MATCH" in sql]  # fmt: skip
    assert [record.relpath for record in first.inputs] == [f"beach-{n:02d}.jpg" for n in range(29, 4, -1)]
    assert [record.relpath for record in second.inputs] == [f"beach-{n:02d}.jpg" for n in range(4, -1, -1)]
    assert len(plans) == 2
    for plan in plans:
        assert plan.startswith("SCAN inputs_search VIRTUAL TABLE") and "TEMP B-TREE" not in plan, plan
        assert "LIST SUBQUERY" not in plan, plan
