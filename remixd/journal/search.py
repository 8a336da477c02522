"""The gallery's search (file name, rule, prompt sent, prompts returned): an index of words without its own
copy of the text (README "A year of journal").

The text of an input is the view `search_text`, read from its row and its jobs' rows; the index (FTS5,
contentless) keeps only which words each input holds, a fraction of what it cost with the text stored beside
it. Triggers keep the index in step with the rows, so no writer has to know of it: each change to what the text
is made of takes the input's old text out of the index (a contentless index is told what to forget) before the
change and puts the new text in after it, both read from the view, so what is taken out is exactly what was
put in. A search finds the inputs holding, for each word searched, a word that starts with it, in any order
and any case ("day beach" finds "Beach Day.jpg", "each" does not), from the index alone. An index of every
trigram found text inside words too, at five times the size (127 bytes an input against 25 in the bench's year
of journal: 90 MB of its 900,000 inputs within keep_days), and the text it found had then to be read from the
rows and checked: seconds for a search whose words every input holds, not in its order.
"""

from __future__ import annotations

import re
from typing import Any

SHORTEST = 3  # characters: a shorter search reads file names and rule names (see `condition`)
# A word as the index's tokenizer (unicode61) cuts the text: letters and digits; anything else ends a word.
_WORD = re.compile(r"[^\W_]+")

_TEXT = """SELECT i.id, i.relpath || coalesce((SELECT group_concat(' ' || j.rule || ' '
    || coalesce(json_extract({request}, '$.prompt'), '')
    || coalesce((SELECT ' ' || group_concat(json_extract(d.value, '$.prompt'), ' ')
        FROM json_each({response}, '$.data') d), ''), '')
    FROM jobs j WHERE j.input_id = i.id), '') FROM inputs i"""
_FORGET = (
    "INSERT INTO inputs_search (inputs_search, rowid, text) SELECT 'delete', id, text FROM search_text WHERE id = {}"
)
_INDEX = "INSERT INTO inputs_search (rowid, text) SELECT id, text FROM search_text WHERE id = {}"


def _trigger(name: str, when: str, forget: str | None, index: str | None, condition: str = "") -> str:
    steps = ([_FORGET.format(forget)] if forget else []) + ([_INDEX.format(index)] if index else [])
    return f"CREATE TRIGGER {name} {when}{condition} BEGIN {'; '.join(steps)}; END"


VIEW = "CREATE VIEW search_text (id, text) AS " + _TEXT.format(request="j.request", response="j.response")
# A finished job's request and answer are packed (journal.packing): the view reads them through `unpacked`.
PACKED_VIEW = "CREATE VIEW search_text (id, text) AS " + _TEXT.format(
    request="coalesce(j.request, unpacked(j.packed, 0))", response="coalesce(j.response, unpacked(j.packed, 1))"
)
TRIGGERS: tuple[str, ...] = (
    _trigger("search_input_added", "AFTER INSERT ON inputs", None, "new.id"),
    _trigger("search_input_renamed", "BEFORE UPDATE OF relpath ON inputs", "old.id", None),
    _trigger("search_input_renamed_after", "AFTER UPDATE OF relpath ON inputs", None, "new.id"),
    _trigger("search_input_gone", "BEFORE DELETE ON inputs", "old.id", None),
    # INSERT OR IGNORE of a job already there (a resumed input plans again) changes nothing: nothing to forget.
    _trigger(
        "search_job_added",
        "BEFORE INSERT ON jobs",
        "new.input_id",
        None,
        " WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE input_id = new.input_id AND rule = new.rule)",
    ),
    _trigger("search_job_added_after", "AFTER INSERT ON jobs", None, "new.input_id"),
    # An answer, and the slimming of a disposed input's request and answer (journal.compact.slim_finished).
    _trigger("search_job_changed", "BEFORE UPDATE OF rule, request, response ON jobs", "old.input_id", None),
    _trigger("search_job_changed_after", "AFTER UPDATE OF rule, request, response ON jobs", None, "new.input_id"),
    _trigger("search_job_gone", "BEFORE DELETE ON jobs", "old.input_id", None),
    _trigger("search_job_gone_after", "AFTER DELETE ON jobs", None, "old.input_id"),
)
TRIGGER_NAMES = tuple(trigger.split()[2] for trigger in TRIGGERS)

MIGRATION: tuple[str, ...] = (
    "DROP TRIGGER inputs_search_input",
    "DROP TRIGGER inputs_search_job",
    "DROP TRIGGER inputs_search_answer",
    "DROP TRIGGER inputs_search_gone",
    "DROP TABLE inputs_search",
    VIEW,
    "CREATE VIRTUAL TABLE inputs_search USING fts5(text, tokenize = 'trigram', detail = 'none', content = '',"
    " columnsize = 0)",
    "INSERT INTO inputs_search (rowid, text) SELECT id, text FROM search_text",
    *TRIGGERS,
)


# The index of trigrams made again as one of words: the view and the triggers stay as they are.
WORDS_MIGRATION: tuple[str, ...] = (
    "DROP TABLE inputs_search",
    "CREATE VIRTUAL TABLE inputs_search USING fts5(text, tokenize = 'unicode61', detail = 'none', content = '',"
    " columnsize = 0)",
    "INSERT INTO inputs_search (rowid, text) SELECT id, text FROM search_text",
)


# A page of a search walks the index's inputs newest first and joins each to its row: the page stops at its
# 25th, where a condition `i.id IN (SELECT rowid … MATCH ?)` first made a set of every input holding the words,
# most of a year's for a common word (180-370 ms at 905,600 inputs, about half that walked).
SEARCHED = "inputs_search CROSS JOIN inputs i ON i.id = inputs_search.rowid"
SEARCHED_ID = "inputs_search.rowid"


def match(text: str) -> str | None:
    """The index's query for a search of `text`; None when the text is too short for it, or holds no letter or
    digit (nothing to ask the index for): then `names_condition`."""
    words = _WORD.findall(text)
    if len(text) < SHORTEST or not words:
        return None
    # Every word as the start of one (a quoted string: detail=none answers single terms, not phrases).
    return " AND ".join('"' + word + '"*' for word in sorted(set(words)))


def names_condition(text: str) -> tuple[str, list[Any]]:
    """The gallery's condition on input `i` for a search the index cannot answer, and its parameters: file names
    and rule names only, as asking the index for every word that starts with one letter, or reading every
    input's prompts, would take seconds in a year of journal."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return (
        # The jobs of matching rules once, from the (input, rule) index: a lookup per input took longer than
        # reading every file name.
        r"(i.relpath LIKE ? ESCAPE '\' OR i.id IN (SELECT input_id FROM jobs WHERE rule LIKE ? ESCAPE '\'))",
        [pattern, pattern],
    )
