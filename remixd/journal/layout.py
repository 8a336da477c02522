"""The journal's tables in their compact form (README "A year of journal"): times as integer microseconds since
1970 UTC, hashes (a source's sha256, a request's fingerprint) as their 32 bytes.

A year of journal keeps about 900,000 inputs whole (those within keep_days): a time as ISO text took 32 bytes
and a hash as hex 64, in the row and again in each index on it, nearly 300 bytes an input. SQLite converts a
number stored in a TEXT column back to text, so the four tables that hold times are made again with integer
columns and their rows copied across, converted, ids and all: the search index, keyed by input id, stays as it
is. Their indexes and triggers go with the old tables and are made again after.
"""

from __future__ import annotations

from remixd.journal import search

# Jobs on their way (sent, accepted, answered): the one condition `jobs_busy` indexes. A query by state uses
# that index only when it says this condition word for word.
BUSY_JOBS = "state IN ('submitting', 'generating', 'answered')"

# Rows per state, kept by triggers, so `remixd status` does not count millions of rows. A compacted row keeps
# its place: journal.compact adds back what its DELETE took away.
TALLY_TRIGGERS = (
    """CREATE TRIGGER inputs_tally_insert AFTER INSERT ON inputs BEGIN
        INSERT INTO tallies VALUES ('inputs', NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER inputs_tally_update AFTER UPDATE OF state ON inputs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE tallies SET count = count - 1 WHERE kind = 'inputs' AND state = OLD.state;
        INSERT INTO tallies VALUES ('inputs', NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER inputs_tally_delete AFTER DELETE ON inputs BEGIN
        UPDATE tallies SET count = count - 1 WHERE kind = 'inputs' AND state = OLD.state; END""",
    """CREATE TRIGGER jobs_tally_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO tallies VALUES ('jobs', NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER jobs_tally_update AFTER UPDATE OF state ON jobs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE tallies SET count = count - 1 WHERE kind = 'jobs' AND state = OLD.state;
        INSERT INTO tallies VALUES ('jobs', NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER jobs_tally_delete AFTER DELETE ON jobs BEGIN
        UPDATE tallies SET count = count - 1 WHERE kind = 'jobs' AND state = OLD.state; END""",
)


def _micros(column: str) -> str:
    """SQL for an ISO time stamp of the text layout (`2025-03-01T12:00:00.250000+00:00`) as microseconds."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CASE WHEN substr({column}, 20, 1) = '.' THEN CAST(substr({column}, 21, 6) AS INTEGER) ELSE 0 END END"
    )


# `pack_hash` is the journal's own SQL function during migrations (journal.database): hex to 32 bytes.
_INPUTS = f"""INSERT INTO inputs_compact SELECT id, inbox, relpath, size, mtime_ns, pack_hash(sha256), state,
    {_micros("detected_at")}, {_micros("claimed_at")}, {_micros("finished_at")}, error, disposal, disposed_to,
    companions FROM inputs"""  # noqa: S608 — literal fragments only
_JOBS = f"""INSERT INTO jobs_compact SELECT id, input_id, rule, pack_hash(fingerprint), endpoint, request, images,
    cost_usd, state, attempts, last_error, response, files, {_micros("created_at")}, {_micros("submitted_at")},
    {_micros("answered_at")}, {_micros("completed_at")}, duplicate_of, sandbox, generation_id,
    {_micros("generation_at")}, generation_seed, cost_source, withheld FROM jobs"""  # noqa: S608 — as above
_SPEND = f"""INSERT INTO spend_compact SELECT id, job_id, day, {_micros("at")}, images, usd, status
    FROM spend"""  # noqa: S608 — as above
_REROLLS = f"""INSERT INTO rerolls_compact SELECT id, inbox, relpath, pack_hash(sha256), seed, of_input,
    {_micros("requested_at")}, input_id FROM rerolls"""  # noqa: S608 — as above

MIGRATION: tuple[str, ...] = (
    *(f"DROP TRIGGER {name}" for name in search.TRIGGER_NAMES),
    *(f"DROP TRIGGER {name}" for name in ("inputs_tally_insert", "inputs_tally_update", "inputs_tally_delete")),
    *(f"DROP TRIGGER {name}" for name in ("jobs_tally_insert", "jobs_tally_update", "jobs_tally_delete")),
    "DROP VIEW search_text",  # a view of a table being made again stops ALTER TABLE RENAME
    """CREATE TABLE inputs_compact (
        id INTEGER PRIMARY KEY, inbox TEXT NOT NULL, relpath TEXT NOT NULL, size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, sha256 BLOB, state TEXT NOT NULL, detected_at INTEGER NOT NULL,
        claimed_at INTEGER NOT NULL, finished_at INTEGER, error TEXT, disposal TEXT, disposed_to TEXT,
        companions TEXT)""",
    """CREATE TABLE jobs_compact (
        id INTEGER PRIMARY KEY, input_id INTEGER NOT NULL REFERENCES inputs (id), rule TEXT NOT NULL,
        fingerprint BLOB NOT NULL, endpoint TEXT NOT NULL, request TEXT NOT NULL, images INTEGER NOT NULL,
        cost_usd REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        response TEXT, files TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL, submitted_at INTEGER,
        answered_at INTEGER, completed_at INTEGER, duplicate_of INTEGER REFERENCES jobs (id),
        sandbox INTEGER NOT NULL DEFAULT 0, generation_id TEXT, generation_at INTEGER, generation_seed INTEGER,
        cost_source TEXT NOT NULL DEFAULT 'table', withheld INTEGER NOT NULL DEFAULT 0,
        UNIQUE (input_id, rule))""",
    """CREATE TABLE spend_compact (
        id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL REFERENCES jobs (id), day TEXT NOT NULL,
        at INTEGER NOT NULL, images INTEGER NOT NULL, usd REAL NOT NULL, status TEXT NOT NULL DEFAULT 'billed')""",
    """CREATE TABLE rerolls_compact (
        id INTEGER PRIMARY KEY, inbox TEXT NOT NULL, relpath TEXT NOT NULL, sha256 BLOB NOT NULL,
        seed INTEGER NOT NULL, of_input INTEGER NOT NULL REFERENCES inputs (id), requested_at INTEGER NOT NULL,
        input_id INTEGER REFERENCES inputs (id))""",
    _INPUTS,
    _JOBS,
    _SPEND,
    _REROLLS,
    "DROP TABLE rerolls",
    "DROP TABLE spend",
    "DROP TABLE jobs",
    "DROP TABLE inputs",
    "ALTER TABLE inputs_compact RENAME TO inputs",
    "ALTER TABLE jobs_compact RENAME TO jobs",
    "ALTER TABLE spend_compact RENAME TO spend",
    "ALTER TABLE rerolls_compact RENAME TO rerolls",
    # The database itself refuses a second active claim, whatever the code above it does.
    """CREATE UNIQUE INDEX inputs_active ON inputs (inbox, relpath)
        WHERE state = 'claimed' OR disposal = 'pending'""",
    "CREATE INDEX inputs_path ON inputs (inbox, relpath, size, mtime_ns)",
    "CREATE INDEX inputs_sha256 ON inputs (sha256)",
    "CREATE INDEX inputs_inbox_state ON inputs (inbox, state)",
    "CREATE INDEX inputs_state_id ON inputs (state, id)",
    "CREATE INDEX inputs_failed ON inputs (finished_at) WHERE state = 'failed'",
    "CREATE INDEX jobs_rule_input ON jobs (rule, input_id)",
    f"CREATE INDEX jobs_busy ON jobs (state) WHERE {BUSY_JOBS}",
    "CREATE INDEX jobs_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL",
    "CREATE INDEX jobs_withheld ON jobs (completed_at) WHERE withheld > 0",
    "CREATE INDEX spend_day ON spend (day)",
    "CREATE INDEX spend_job ON spend (job_id, status)",
    "CREATE INDEX spend_sent ON spend (job_id) WHERE status = 'sent'",
    "CREATE INDEX rerolls_pending ON rerolls (inbox, relpath, sha256) WHERE input_id IS NULL",
    *TALLY_TRIGGERS,
    search.VIEW,
    *search.TRIGGERS,
)

# A compacted result (journal.compact) keeps its files as their folder, named once in `result_folders`, and
# their names in it: a year's 2.75 million results mostly share a few thousand folders. Its key is 12 bytes,
# the first 12 of the 16 it had. `result_folder` and `result_names` are the journal's own SQL functions
# during migrations (journal.database).
RESULTS_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE result_folders (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE)",
    # OR IGNORE also skips the results named in no folder (NULL).
    "INSERT OR IGNORE INTO result_folders (path) SELECT result_folder(files) FROM results ORDER BY key",
    """CREATE TABLE results_compact (key BLOB PRIMARY KEY, job_id INTEGER NOT NULL,
        folder INTEGER REFERENCES result_folders (id), files TEXT NOT NULL) WITHOUT ROWID""",
    """INSERT OR IGNORE INTO results_compact SELECT substr(key, 1, 12), job_id,
        (SELECT id FROM result_folders WHERE path = result_folder(files)), result_names(files)
        FROM results ORDER BY key""",
    "DROP TABLE results",
    "ALTER TABLE results_compact RENAME TO results",
)

# Which file a claim was, by (st_dev, st_ino) where the platform gives them: a claimed input renamed in its
# inbox is told from another file of the same size and mtime (a copy made with `cp -p`) that came later.
IDENTITY_MIGRATION = ("ALTER TABLE inputs ADD COLUMN device INTEGER", "ALTER TABLE inputs ADD COLUMN inode INTEGER")


# Jobs that `journal.compact.slim_finished` has packed: finished, of an input disposed of.
_PACKABLE = """state IN ('written', 'duplicate') AND input_id IN
    (SELECT id FROM inputs WHERE disposal IN ('moved', 'deleted', 'kept'))"""
_COPY = f"""INSERT INTO jobs_packed SELECT id, input_id, rule, fingerprint, endpoint,
    CASE WHEN {_PACKABLE} THEN NULL ELSE request END, images, cost_usd, state, attempts, last_error,
    CASE WHEN {_PACKABLE} THEN NULL ELSE response END, CASE WHEN {_PACKABLE} THEN NULL ELSE files END,
    created_at, submitted_at, answered_at, completed_at, duplicate_of, sandbox, generation_id, generation_at,
    generation_seed, cost_source, withheld, CASE WHEN {_PACKABLE} THEN pack_texts(request, response, files) END
    FROM jobs"""  # noqa: S608 — literal fragments only

# A finished job's request, answer and files packed into one value (journal.packing): the jobs table made again
# with `packed` (and `request`, `files` that may be NULL), its rows copied across, ids and all, the disposed
# inputs' jobs packed (`pack_texts`: the journal's own SQL function during migrations), as MIGRATION made it.
PACKED_MIGRATION: tuple[str, ...] = (
    *(f"DROP TRIGGER {name}" for name in search.TRIGGER_NAMES),
    *(f"DROP TRIGGER {name}" for name in ("jobs_tally_insert", "jobs_tally_update", "jobs_tally_delete")),
    "DROP VIEW search_text",
    """CREATE TABLE jobs_packed (
        id INTEGER PRIMARY KEY, input_id INTEGER NOT NULL REFERENCES inputs (id), rule TEXT NOT NULL,
        fingerprint BLOB NOT NULL, endpoint TEXT NOT NULL, request TEXT, images INTEGER NOT NULL,
        cost_usd REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
        response TEXT, files TEXT DEFAULT '[]', created_at INTEGER NOT NULL, submitted_at INTEGER,
        answered_at INTEGER, completed_at INTEGER, duplicate_of INTEGER REFERENCES jobs (id),
        sandbox INTEGER NOT NULL DEFAULT 0, generation_id TEXT, generation_at INTEGER, generation_seed INTEGER,
        cost_source TEXT NOT NULL DEFAULT 'table', withheld INTEGER NOT NULL DEFAULT 0, packed BLOB,
        UNIQUE (input_id, rule), CHECK ((packed IS NULL) = (request IS NOT NULL AND files IS NOT NULL)))""",
    _COPY,
    "DROP TABLE jobs",
    "ALTER TABLE jobs_packed RENAME TO jobs",
    "CREATE INDEX jobs_rule_input ON jobs (rule, input_id)",
    f"CREATE INDEX jobs_busy ON jobs (state) WHERE {BUSY_JOBS}",
    "CREATE INDEX jobs_duplicate_of ON jobs (duplicate_of) WHERE duplicate_of IS NOT NULL",
    "CREATE INDEX jobs_withheld ON jobs (completed_at) WHERE withheld > 0",
    *(trigger for trigger in TALLY_TRIGGERS if " ON jobs " in trigger),
    search.PACKED_VIEW,
    *search.TRIGGERS,
)

# A source's inputs by the first 8 bytes of its hash: an index entry of 8 bytes instead of 32, the whole hash
# checked on the row (3.65 million hashes share a prefix with a chance of 2^-23). A query by hash uses
# `inputs_sha256` only when it says BY_SHA256 word for word, with the hash given twice.
BY_SHA256 = "substr(sha256, 1, 8) = substr(?, 1, 8) AND sha256 = ?"
INDEXES_MIGRATION: tuple[str, ...] = (
    "DROP INDEX inputs_sha256",
    "CREATE INDEX inputs_sha256 ON inputs (substr(sha256, 1, 8))",
    # The claim check finds a path's few rows by (inbox, relpath) and reads their size and mtime from them.
    "DROP INDEX inputs_path",
    "CREATE INDEX inputs_path ON inputs (inbox, relpath)",
)

# A job's request fingerprint by its number in `fingerprints`: a rule's requests share a few fingerprints (one
# per version of the rule and its destination), so a job's 32 bytes become one or two, 28 MB of the bench's year.
# A job's record reads the hash back through FINGERPRINT_HASH; a query by fingerprint says BY_FINGERPRINT.
FINGERPRINT_HASH = "(SELECT hash FROM fingerprints WHERE fingerprints.id = jobs.fingerprint) AS fingerprint_hash"
BY_FINGERPRINT = "fingerprint = (SELECT id FROM fingerprints WHERE hash = ?)"
FINGERPRINTS_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE fingerprints (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE)",
    "INSERT INTO fingerprints (hash) SELECT DISTINCT fingerprint FROM jobs",
    "UPDATE jobs SET fingerprint = (SELECT id FROM fingerprints WHERE hash = jobs.fingerprint)",
)

# Every rule name the journal has seen, for the gallery's rule filter: kept by a trigger as jobs are planned. Read
# from the jobs (SELECT DISTINCT rule), every page of the review page read the whole index of jobs by input:
# 54 ms at 100,000 inputs, half a second for a year of journal.
RULE_NAMES_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE rule_names (name TEXT PRIMARY KEY) WITHOUT ROWID",
    "INSERT OR IGNORE INTO rule_names SELECT DISTINCT rule FROM jobs",
    """CREATE TRIGGER rule_names_seen AFTER INSERT ON jobs BEGIN
        INSERT OR IGNORE INTO rule_names VALUES (new.rule); END""",
)

# A moved input's destination as the folder it went to, by its number in `result_folders` (`disposed_in`), when
# its path stayed the same below it (done/ + relpath, as most do): 46 bytes of each finished input's row, in the
# bench's year. Any other destination stays whole in `disposed_to`, which wins when both are there.
_BELOW = """disposed_to IS NOT NULL AND length(disposed_to) > length(relpath) + 1
    AND substr(disposed_to, -length(relpath) - 1) = '/' || relpath"""
_FOLDER = "substr(disposed_to, 1, length(disposed_to) - length(relpath) - 1)"
DISPOSED_MIGRATION: tuple[str, ...] = (
    "ALTER TABLE inputs ADD COLUMN disposed_in INTEGER REFERENCES result_folders (id)",
    f"INSERT OR IGNORE INTO result_folders (path) SELECT DISTINCT {_FOLDER} FROM inputs WHERE {_BELOW}",  # noqa: S608
    f"""UPDATE inputs SET disposed_in = (SELECT id FROM result_folders WHERE path = {_FOLDER}), disposed_to = NULL
        WHERE {_BELOW}""",  # noqa: S608 — literal fragments only
)
# An input's `disposed_to` as its record has it; DISPOSED_TO: the condition that it is `?1`.
DISPOSED_FOLDER = "(SELECT path FROM result_folders WHERE result_folders.id = disposed_in) AS disposed_folder"
DISPOSED_TO = """(disposed_to = ?1 OR (disposed_to IS NULL AND disposed_in IS NOT NULL
    AND (SELECT path FROM result_folders WHERE result_folders.id = disposed_in) || '/' || relpath = ?1))"""

# Inputs not done (claimed, failed, vanished, retried: a few of a year's millions): the one condition the index by
# state holds, so a year's done inputs cost it nothing. A query by one of these states uses `inputs_state_id` only
# when it says this condition word for word; one by done or duplicate walks the table by id, where nearly every
# row is one. The review page's counts per inbox are kept by triggers, as `tallies` keeps them for the whole
# journal: they were counted from an index of every input by (inbox, state), 30 MB in the bench's year.
NOT_DONE = "state NOT IN ('done', 'duplicate')"


# Inputs whose path a claim may still meet in their inbox: all but the done ones moved or deleted, which left it.
# The index of paths holds only these (a year's done inputs moved away cost it nothing: 42 MB of the bench's
# year), so a query by path uses it only when it says PATH_HELD word for word; one that looks for a moved or
# deleted done input by its place in the inbox (`remixd reroll` naming it there) reads the table.
def path_held(row: str = "") -> str:
    """PATH_HELD said of the inputs row named `row` (`row.`: a query that reads inputs twice)."""
    return f"({row}{NOT_DONE} OR {row}disposal NOT IN ('moved', 'deleted'))"


PATH_HELD = path_held()
PATHS_HELD_MIGRATION: tuple[str, ...] = (
    "DROP INDEX inputs_path",
    f"CREATE INDEX inputs_path ON inputs (relpath) WHERE {PATH_HELD}",
)
INBOX_TALLY_TRIGGERS = (
    """CREATE TRIGGER inbox_tally_insert AFTER INSERT ON inputs BEGIN
        INSERT INTO inbox_tallies VALUES (NEW.inbox, NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER inbox_tally_update AFTER UPDATE OF state ON inputs WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE inbox_tallies SET count = count - 1 WHERE inbox = OLD.inbox AND state = OLD.state;
        INSERT INTO inbox_tallies VALUES (NEW.inbox, NEW.state, 1) ON CONFLICT DO UPDATE SET count = count + 1; END""",
    """CREATE TRIGGER inbox_tally_delete AFTER DELETE ON inputs BEGIN
        UPDATE inbox_tallies SET count = count - 1 WHERE inbox = OLD.inbox AND state = OLD.state; END""",
)
STATE_AND_PATH_MIGRATION: tuple[str, ...] = (
    "DROP INDEX inputs_inbox_state",
    "DROP INDEX inputs_state_id",
    f"CREATE INDEX inputs_state_id ON inputs (state, id) WHERE {NOT_DONE}",
    # A path's few rows by relpath alone, their inbox checked on the row (a relpath is rarely in two inboxes):
    # the inbox's text was 16 of each entry's 64 bytes, 14 MB in the bench's year.
    "DROP INDEX inputs_path",
    "CREATE INDEX inputs_path ON inputs (relpath)",
    # The inputs in the journal (a compacted one leaves its inbox's counts, as it left the index) per inbox and state.
    """CREATE TABLE inbox_tallies (inbox TEXT NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (inbox, state)) WITHOUT ROWID""",
    "INSERT INTO inbox_tallies SELECT inbox, state, count(*) FROM inputs GROUP BY inbox, state",
    *INBOX_TALLY_TRIGGERS,
)

# A compacted result by its place, its folder and the way its names end, named once in `result_places`; each
# keeps its stem only (journal.compact.result_tails). `job_id` goes: a log line was its only reader.
# `result_stem` and `result_ending` are the journal's own SQL functions during migrations (journal.compact).
_RULES = "(SELECT json_group_array(name) FROM rule_names)"
PLACES_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE result_places (id INTEGER PRIMARY KEY, folder INTEGER NOT NULL REFERENCES result_folders (id),
        tails TEXT NOT NULL, UNIQUE (folder, tails))""",
    f"""INSERT OR IGNORE INTO result_places (folder, tails)
        SELECT DISTINCT folder, result_ending(files, {_RULES}) FROM results WHERE folder IS NOT NULL""",  # noqa: S608
    """CREATE TABLE results_placed (key BLOB PRIMARY KEY, place INTEGER REFERENCES result_places (id),
        names TEXT NOT NULL) WITHOUT ROWID""",
    f"""INSERT INTO results_placed SELECT key,
        (SELECT id FROM result_places p WHERE p.folder = r.folder AND p.tails = result_ending(r.files, {_RULES})),
        CASE WHEN folder IS NULL THEN files ELSE result_stem(files, {_RULES}) END
        FROM results r ORDER BY key""",  # noqa: S608 — literal fragments only
    "DROP TABLE results",
    "ALTER TABLE results_placed RENAME TO results",
)

SHORT_KEYS_MIGRATION = (  # compacted results under 10-byte keys (compact.result_key); a pair made one keeps one
    """CREATE TABLE results_short (key BLOB PRIMARY KEY, place INTEGER REFERENCES result_places (id),
        names TEXT NOT NULL) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO results_short SELECT substr(key, 1, 10), place, names FROM results ORDER BY key",
    "DROP TABLE results",
    "ALTER TABLE results_short RENAME TO results",
)
