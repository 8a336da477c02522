"""How the journal is stored: the SQLite schema, and how values are kept in its rows (journal.rows reads them back).

Times are stored as integer microseconds since 1970 UTC, hashes as their 32 bytes (journal.layout) and mappings
as sorted JSON, so rows read back to the same frozen records whatever process wrote them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from remixd.journal import layout, search
from remixd.journal.layout import BUSY_JOBS, TALLY_TRIGGERS

# What the gallery's search finds of a job: its rule, the prompt sent and the prompts returned.
_RETURNED_TEXT = """coalesce((SELECT ' ' || group_concat(json_extract(d.value, '$.prompt'), ' ')
    FROM json_each({job}.response, '$.data') d), '')"""
_JOB_TEXT = "' ' || {job}.rule || ' ' || coalesce(json_extract({job}.request, '$.prompt'), '') || " + _RETURNED_TEXT

# The search text's statements, put together from the literal fragments above (no value reaches them).
_BACKFILL = (
    "INSERT INTO inputs_search (rowid, text) SELECT i.id, i.relpath || coalesce((SELECT group_concat("  # noqa: S608
    + _JOB_TEXT.format(job="j")
    + ", '') FROM jobs j WHERE j.input_id = i.id), '') FROM inputs i"
)
_ON_JOB = (
    "CREATE TRIGGER inputs_search_job AFTER INSERT ON jobs BEGIN UPDATE inputs_search SET text = text || "  # noqa: S608
    + _JOB_TEXT.format(job="new")
    + " WHERE rowid = new.input_id; END"
)
_ON_ANSWER = (
    "CREATE TRIGGER inputs_search_answer AFTER UPDATE OF response ON jobs"  # noqa: S608
    " WHEN new.response IS NOT NULL AND new.response IS NOT old.response"
    " BEGIN UPDATE inputs_search SET text = text || "
    + _RETURNED_TEXT.format(job="new")
    + " WHERE rowid = new.input_id; END"
)

# Images of an answer (`{answer}`: its JSON) withheld by the safety check: an item without `is_image_safe`
# counts as withheld when it has no URL, as the client reads it (ideogram/responses.py).
WITHHELD_COUNT = """(SELECT count(*) FROM json_each({answer}, '$.data') d
    WHERE coalesce(json_extract(d.value, '$.is_image_safe'), coalesce(json_extract(d.value, '$.url'), '') != '') = 0)"""
_ON_ANSWERED = (
    "CREATE TRIGGER inputs_search_answer AFTER UPDATE OF answered_at ON jobs"  # noqa: S608
    " WHEN new.response IS NOT NULL BEGIN UPDATE inputs_search SET text = text || "
    + _RETURNED_TEXT.format(job="new")
    + " WHERE rowid = new.input_id; END"
)

# One tuple of statements per schema version; a new version appends a tuple (never edits an old one).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE inputs (
        id INTEGER PRIMARY KEY, inbox TEXT NOT NULL, relpath TEXT NOT NULL, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, sha256 TEXT, state TEXT NOT NULL, detected_at TEXT NOT NULL,
        claimed_at TEXT NOT NULL, finished_at TEXT, error TEXT, disposal TEXT, disposed_to TEXT)""",
        # The database itself refuses a second active claim, whatever the code above it does.
        """CREATE UNIQUE INDEX inputs_active ON inputs (inbox, relpath)
        WHERE state = 'claimed' OR disposal = 'pending'""",
        "CREATE INDEX inputs_path ON inputs (inbox, relpath, size, mtime_ns)",
        "CREATE INDEX inputs_sha256 ON inputs (sha256)",
        "CREATE INDEX inputs_state ON inputs (state, disposal)",
        """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY, input_id INTEGER NOT NULL REFERENCES inputs (id), rule TEXT NOT NULL,
        fingerprint TEXT NOT NULL, endpoint TEXT NOT NULL, request TEXT NOT NULL, images INTEGER NOT NULL,
        cost_usd REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        response TEXT, files TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, submitted_at TEXT,
        answered_at TEXT, completed_at TEXT, duplicate_of INTEGER REFERENCES jobs (id),
        UNIQUE (input_id, rule))""",
        "CREATE INDEX jobs_duplicates ON jobs (rule, fingerprint, state)",
        # A ledger rather than a sum over jobs: a job answered twice (resubmitted after its URLs expired) was
        # billed twice, and the day it was billed must not change when the job is later updated.
        """CREATE TABLE spend (
        id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs (id), day TEXT NOT NULL,
        at TEXT NOT NULL, images INTEGER NOT NULL, usd REAL NOT NULL)""",
        "CREATE INDEX spend_day ON spend (day)",
    ),
    # Jobs sent to the built-in sandbox: never billed, so never counted against budget.* (README "The sandbox").
    ("ALTER TABLE jobs ADD COLUMN sandbox INTEGER NOT NULL DEFAULT 0",),
    (
        # An async v2 submission's generation: its id is committed before anything else happens, so after a
        # crash the job is polled, never sent again (README, "Async generations").
        "ALTER TABLE jobs ADD COLUMN generation_id TEXT",
        "ALTER TABLE jobs ADD COLUMN generation_at TEXT",
        "ALTER TABLE jobs ADD COLUMN generation_seed INTEGER",
    ),
    (
        # `remixd reroll`: a done input asked for again on purpose, with the seed to send. The input that
        # claims the file back takes it (input_id), in the same transaction that finds it.
        """CREATE TABLE rerolls (
        id INTEGER PRIMARY KEY, inbox TEXT NOT NULL, relpath TEXT NOT NULL, sha256 TEXT NOT NULL,
        seed INTEGER NOT NULL, of_input INTEGER NOT NULL REFERENCES inputs (id), requested_at TEXT NOT NULL,
        input_id INTEGER REFERENCES inputs (id))""",
        "CREATE INDEX rerolls_pending ON rerolls (inbox, relpath, sha256) WHERE input_id IS NULL",
    ),
    (
        # Every request is a possible payment from the moment it is sent (README, "Every request counts"):
        # its spend row is written then, as `sent`, and becomes `billed` when the API answers; an answer that
        # says nothing ran (429, 5xx, a 4xx rejection) withdraws it. A row still `sent` is a request whose
        # outcome nobody knows (a crash, a timeout, a reset): counted against the budget as paid.
        "ALTER TABLE spend ADD COLUMN status TEXT NOT NULL DEFAULT 'billed'",
        "CREATE INDEX spend_job ON spend (job_id, status)",
        # Jobs a crash caught in flight under an earlier schema: their requests were sent, never answered.
        """INSERT INTO spend (job_id, day, at, images, usd, status)
        SELECT id, substr(submitted_at, 1, 10), submitted_at, images, cost_usd, 'sent' FROM jobs
        WHERE state = 'submitting' AND submitted_at IS NOT NULL""",
    ),
    (
        # What a finished input older than journal.keep_days is compacted to (journal.compact): per result,
        # what the duplicate check needs (README "A year of journal"). `key` is result_key(); `job_id` the
        # job that wrote `files` (its row is gone).
        "CREATE TABLE results (key BLOB PRIMARY KEY, job_id INTEGER NOT NULL, files TEXT NOT NULL) WITHOUT ROWID",
        # A kept input, unchanged, is never claimed again: its path outlives its row.
        """CREATE TABLE kept (inbox TEXT NOT NULL, relpath TEXT NOT NULL, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, PRIMARY KEY (inbox, relpath)) WITHOUT ROWID""",
        # Deleting a job looks up the rows that refer to it (foreign keys; spend_job serves the spend rows):
        # without it, each lookup reads the whole table, and compacting a day of a year-old journal takes
        # hours instead of seconds.
        "CREATE INDEX jobs_duplicate_of ON jobs (duplicate_of)",
        # The spend ledger of compacted jobs, summed per day, apart for the sandbox (never billed) and for
        # requests never answered (possible payments, `requests` of them): the days' totals stay as they were.
        """CREATE TABLE spend_days (day TEXT NOT NULL, sandbox INTEGER NOT NULL, status TEXT NOT NULL,
        requests INTEGER NOT NULL, images INTEGER NOT NULL, usd REAL NOT NULL,
        PRIMARY KEY (day, sandbox, status)) WITHOUT ROWID""",
        # Rows per state, kept by triggers (layout.TALLY_TRIGGERS).
        """CREATE TABLE tallies (kind TEXT NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (kind, state)) WITHOUT ROWID""",
        "INSERT INTO tallies SELECT 'inputs', state, count(*) FROM inputs GROUP BY state",
        "INSERT INTO tallies SELECT 'jobs', state, count(*) FROM jobs GROUP BY state",
        *TALLY_TRIGGERS,
    ),
    # A companion (STEM.txt, STEM.yaml, STEM.json: README "Companions") is read when its image is claimed, in
    # the claim's transaction: a companion changed or added later never changes what that claim sends.
    ("ALTER TABLE inputs ADD COLUMN companions TEXT",),
    # The review page's gallery pages newest first (by id) within an inbox, a state or a rule, and counts
    # per inbox from an index alone: a page stays fast with 100,000 inputs (bench/review.py measures it).
    (
        "CREATE INDEX inputs_inbox_state ON inputs (inbox, state)",
        "CREATE INDEX inputs_state_id ON inputs (state, id)",
        "CREATE INDEX jobs_rule_input ON jobs (rule, input_id)",
        "CREATE INDEX jobs_state ON jobs (state)",
        # The gallery's search (file name, rule, prompt sent, prompt returned) as a trigram index kept by
        # triggers, so no writer has to know of it: a search that matches nothing reads the index, not
        # 100,000 rows of JSON.
        "CREATE VIRTUAL TABLE inputs_search USING fts5(text, tokenize = 'trigram')",
        _BACKFILL,
        """CREATE TRIGGER inputs_search_input AFTER INSERT ON inputs BEGIN
            INSERT INTO inputs_search (rowid, text) VALUES (new.id, new.relpath); END""",
        _ON_JOB,
        _ON_ANSWER,
        # A compacted input (journal.keep_days) leaves the search with its row.
        """CREATE TRIGGER inputs_search_gone AFTER DELETE ON inputs BEGIN
            DELETE FROM inputs_search WHERE rowid = old.id; END""",
    ),
    # Where a job's cost_usd came from (README "Prices"): the account's own dry_run quote, the generation's
    # usage, or the route table; jobs planned before it were priced from the table.
    ("ALTER TABLE jobs ADD COLUMN cost_source TEXT NOT NULL DEFAULT 'table'",),
    # The sizes of written results' sources, kept when each is written: `remixd plan` hashes only a file of a
    # size that can be a duplicate, and looks it up here instead of holding a year of sizes. -1: results
    # compacted before sizes were kept, whose sizes nobody knows (then every file is hashed).
    (
        "CREATE TABLE result_sizes (size INTEGER PRIMARY KEY)",
        """INSERT OR IGNORE INTO result_sizes SELECT inputs.size FROM jobs JOIN inputs ON inputs.id = jobs.input_id
        WHERE jobs.state = 'written'""",
        "INSERT OR IGNORE INTO result_sizes SELECT -1 WHERE EXISTS (SELECT 1 FROM results)",
    ),
    # A year of journal, smaller and quicker to ask (README "A year of journal").
    (
        # Images withheld per job, counted once when the answer is kept: `remixd status` read every answer's
        # JSON to find the rare withheld ones (seconds on a year of journal); now a partial index holds them.
        "ALTER TABLE jobs ADD COLUMN withheld INTEGER NOT NULL DEFAULT 0",
        "UPDATE jobs SET withheld = "  # noqa: S608 — literal fragments only
        + WITHHELD_COUNT.format(answer="response")
        + " WHERE response IS NOT NULL",
        "CREATE INDEX jobs_withheld ON jobs (completed_at) WHERE withheld > 0",
        # Requests never answered either way, for `remixd status`'s possible payments: few, found at once.
        "CREATE INDEX spend_sent ON spend (job_id) WHERE status = 'sent'",
        # The search index without positions: a third of the size. A search is a LIKE the trigram index
        # answers (phrase queries need positions); journal.browse checks the literal text after it.
        "DROP TABLE inputs_search",
        "CREATE VIRTUAL TABLE inputs_search USING fts5(text, tokenize = 'trigram', detail = 'none')",
        _BACKFILL,
        # A finished input's answers are slimmed (journal.compact.slim_finished): that update must
        # not add its returned prompts to the search again, so the search follows the answer's time instead.
        "DROP TRIGGER inputs_search_answer",
        _ON_ANSWERED,
    ),
    # `remixd status`'s recent failures, newest first, read from the end of an index: it sorted every failed
    # input of the year (7,300 in the bench's year of journal: a tenth of status's time) to show ten.
    ("CREATE INDEX inputs_failed ON inputs (finished_at) WHERE state = 'failed'",),
    # A year of journal's indexes (README "A year of journal"): only what a query needs (EXPLAIN QUERY PLAN).
    (
        # The duplicate check finds the source's inputs by hash, then their jobs by (rule, input).
        "DROP INDEX jobs_duplicates",
        # Only jobs on their way are looked up by state; the finished ones are counted in `tallies`.
        "DROP INDEX jobs_state",
        f"CREATE INDEX jobs_busy ON jobs (state) WHERE {BUSY_JOBS}",
        # inputs_state_id serves every lookup by state.
        "DROP INDEX inputs_state",
        # Compaction asks whether a newer duplicate points at a job: only duplicates point.
        "DROP INDEX jobs_duplicate_of",
        "CREATE INDEX jobs_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL",
    ),
    # The search index without its own copy of the text (journal.search).
    search.MIGRATION,
    # Times as integers, hashes as bytes, compacted results' files by folder, claims' files (journal.layout).
    layout.MIGRATION,
    layout.RESULTS_MIGRATION,
    layout.IDENTITY_MIGRATION,
    # A finished job's request, answer and files packed into one value (journal.packing).
    layout.PACKED_MIGRATION,
    # The inputs' indexes by hash and by path, smaller (journal.layout).
    layout.INDEXES_MIGRATION,
    # A moved input's destination by its folder's number (journal.layout).
    layout.DISPOSED_MIGRATION,
    # Jobs by (rule, input) had an index of their own beside the table's own by (input, rule), 20 MB in the
    # bench's year: the duplicate check, the gallery's rule filter and its search by rule name find the jobs of
    # an input by the latter just as well, and the rule names are read from it whole either way.
    ("DROP INDEX jobs_rule_input",),
    # Inputs by state only where not done, the review page's counts per inbox kept by triggers, and paths by
    # relpath alone (journal.layout).
    layout.STATE_AND_PATH_MIGRATION,
    # The gallery's search by words, not trigrams: a fifth of the size (journal.search).
    search.WORDS_MIGRATION,
    # Jobs' fingerprints by number (journal.layout).
    layout.FINGERPRINTS_MIGRATION,
    # The index of paths without the done inputs that left their inbox (journal.layout).
    layout.PATHS_HELD_MIGRATION,
    # The rule names seen, kept apart for the review page's filter (journal.layout).
    layout.RULE_NAMES_MIGRATION,
    # Compacted results by their place, folder and ending, each keeping its stem (journal.layout).
    layout.PLACES_MIGRATION,
    # A packed job's files by their folder's number, in `result_folders` (journal.packing, dictionary 2).
    ("ALTER TABLE jobs ADD COLUMN files_in INTEGER REFERENCES result_folders (id)",),
    # Compacted results under 10-byte keys (journal.layout).
    layout.SHORT_KEYS_MIGRATION,
)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_HEX_HASH = re.compile("[0-9a-f]{64}")


def stamp(moment: datetime) -> int:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the journal keeps aware UTC times")
    return (moment - EPOCH) // _MICROSECOND  # exact: no float on the way


def parse_moment_or_none(value: int | None) -> datetime | None:
    return None if value is None else parse_moment(value)


def parse_moment(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def pack_hash(text: str | None) -> bytes | str | None:
    """A sha256 as hex (a source's, a request's fingerprint) as its 32 bytes; anything else as it is."""
    return bytes.fromhex(text) if text is not None and _HEX_HASH.fullmatch(text) else text


def unpack_hash(value: bytes | str | None) -> str | None:
    return value.hex() if isinstance(value, bytes) else value


def dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
