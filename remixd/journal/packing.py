"""A finished job's row, packed (README "A year of journal").

A year of journal keeps about 900,000 finished jobs whole (those within keep_days), and their request, answer
and files as JSON were 270 of each job's 411 bytes. Once an input is disposed of its jobs never change again:
their three documents are packed into one `jobs.packed` value, as one sorted JSON array deflated against a
preset dictionary of the shapes remixd writes (the keys of a slimmed request and answer, the words they use),
and `request`, `response` and `files` are left NULL. A short document compresses well only against such a
dictionary; a prompt sent and the prompt Ideogram returned for it, mostly the same words, are packed together.

The first byte names the dictionary: one packed under it is read with it forever, so a new dictionary gets a
new number and the older ones stay.

- 1: [request, answer, files].
- 2: a packed job's row was still 242 bytes in the bench's year of journal, 188 with this. The columns no SQL
  reads of a packed job (MOVED: its endpoint, price, attempts, last error, times, generation) are packed too.
  Its times are microseconds before its `completed_at`, which stays a column (the index of withheld images is
  by it); they and the other integers are varints (0 for NULL, else zigzag + 1) between the first byte and the
  deflated part, as a digit deflated costs a byte in a value this short, and a varint 7 bits of the number.
  The deflated array is [request, answer, names, endpoint, cost_usd, last_error, generation_id]: the files are
  named in a folder, the first one's (`jobs.files_in`, its number in `result_folders`, which readers name with
  FILES_FOLDER), each there by its bare name, any other whole: the output folder was 20 of the 127 bytes packed.
  The moved columns are left holding what costs no bytes (LEFT) rather than NULL: SQLite stores '' and the
  integer 0 (a REAL column's 0.0 too) in none, as it does NULL, so `endpoint`, `cost_usd`, `attempts` and
  `created_at` keep their NOT NULL and the table needs no rebuild, with its 900,000 rows, triggers, view and
  indexes. A SQL that read one of them would read '' or 0 for a packed job: MOVED holds only columns that no
  SQL reads (`grep` the journal's before adding one), and records read them through `job_columns`.

SQL reads a packed job through the journal's own function `unpacked(packed, n)` (n: 0 the request, 1 the
answer), which every connection that reads or writes the jobs registers (`register`): the search's view and
triggers read the prompts through it.
"""

from __future__ import annotations

import posixpath
import sqlite3
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remixd.journal.schema import dump_json, load_json

DICTIONARY_1 = (
    b'"is_image_safe": false, "is_image_safe": true, "style_type": "AUTO", "magic_prompt": "ON", '
    b'"V_1", "V_1_TURBO", "V_2A", "V_2A_TURBO", "V_2_TURBO", "V_3", "error": null, '
    b'.webp", ".jpeg", ".jpg", ".json", "1024x768", "768x1024", "1024x1024", "seed": '
    b', "resolution": "1024x1024", "seed": }, {"prompt": "'
    b'[{"model": "V_2", "prompt": "'
    b'"}, {"data": [{"prompt": "'
    b'"}, null, ["/'
    b'.png"]]'
)
# The words of a v2 job (its route and model, a 2K resolution, its generation's id last), then dictionary 1's,
# then the end of a legacy job's array: the nearest words cost the fewest bits.
DICTIONARY_2 = (
    b'"/v2/image/remix/ideogram-3-custom-model", "/v2/image/remix/ideogram-3-character", '
    b'"/v2/image/remix/auto", "/v2/image/remix/ideogram-3", "/v1/ideogram-v3/remix", '
    b'{"model": "ideogram-3", "prompt": "'
    b'"2048x2048", "resolution": "2048x2048", "seed": '
    b'[{"model": "ideogram-4", "prompt": "'
    b'"], "/v2/image/remix/ideogram-4", 0.06, null, "'
    + DICTIONARY_1[: DICTIONARY_1.index(b'"}, null, ["/')]
    + b'"}]}, ["'
    b'.png"], "/remix", 0.08, null, null]'
)
_DICTIONARIES = {1: DICTIONARY_1, 2: DICTIONARY_2}
_CURRENT = 2
_MORE, _BITS = 0x80, 0x7F  # of a varint's byte: another follows; the number's 7 bits
_WINDOW = -15  # raw deflate: no header or checksum of its own (SQLite checks its pages)

# A packed job's columns that no SQL reads, in the order packed: the integers as varints, the rest in the
# deflated array after the request, answer and files.
_INTEGERS = ("attempts", "created_at", "submitted_at", "answered_at", "generation_at", "generation_seed")
_TIMES = frozenset({"created_at", "submitted_at", "answered_at", "generation_at"})
_DOCUMENTS = ("endpoint", "cost_usd", "last_error", "generation_id")
MOVED = _INTEGERS + _DOCUMENTS
# ... and what the row keeps of them: no bytes stored (see the docstring).
LEFT: Mapping[str, object] = {
    "endpoint": "", "cost_usd": 0, "attempts": 0, "last_error": None, "created_at": 0, "submitted_at": None,
    "answered_at": None, "generation_id": None, "generation_at": None, "generation_seed": None,
}  # fmt: skip
# A job's folder of files, for `SELECT jobs.*, <this> FROM jobs`.
FILES_FOLDER = "(SELECT path FROM result_folders WHERE result_folders.id = jobs.files_in) AS files_folder"


@dataclass(frozen=True)
class Packed:
    value: bytes
    folder: str | None  # the folder its files are named in, for `jobs.files_in`


def pack_job(request: Any, response: Any, files: Sequence[str], columns: Mapping[str, Any]) -> Packed:
    """A finished job packed: its request and answer as kept, its files, and its MOVED `columns` as its row
    stores them (times in microseconds, `last_error` as JSON), with `completed_at`."""
    folder, names = _named_in(files)
    since = columns["completed_at"] or 0
    integers = [
        None if columns[name] is None else since - columns[name] if name in _TIMES else columns[name]
        for name in _INTEGERS
    ]
    head = bytes([_CURRENT]) + b"".join(_varint(0 if value is None else _zigzag(value) + 1) for value in integers)
    rest = [columns[name] for name in _DOCUMENTS]
    rest[_DOCUMENTS.index("last_error")] = load_json(columns["last_error"])
    return Packed(head + _deflate(_CURRENT, [request, response, names, *rest]), folder)


def job_columns(row: sqlite3.Row) -> dict[str, Any]:
    """A job's row as it was before it was packed, its request, answer and files as documents. `row`: the
    job's columns with FILES_FOLDER."""
    columns = {key: row[key] for key in row.keys()}  # noqa: SIM118 — a Row iterates over its values
    if row["packed"] is None:
        columns.update(request=load_json(row["request"]), response=load_json(row["response"]))
        columns["files"] = load_json(row["files"])
        return columns
    packed: bytes = row["packed"]
    if packed[0] == 1:
        request, response, columns["files"] = _inflate(packed[0], packed[1:])
        columns.update(request=request, response=response)
        return columns
    at = 1
    since = row["completed_at"] or 0
    for name in _INTEGERS:
        value, at = _read_varint(packed, at)
        number = None if value == 0 else _unzigzag(value - 1)
        columns[name] = since - number if name in _TIMES and number is not None else number
    request, response, names, *rest = _inflate(packed[0], packed[at:])
    columns.update(zip(_DOCUMENTS, rest, strict=True), request=request, response=response)
    columns["last_error"] = None if columns["last_error"] is None else dump_json(columns["last_error"])
    folder = row["files_folder"]
    columns["files"] = [name if "/" in name or folder is None else posixpath.join(folder, name) for name in names]
    return columns


def _named_in(files: Sequence[str]) -> tuple[str | None, list[str]]:
    """The folder the files are named in (the first one's, when every file is absolute) and their names: a file
    in it by its bare name, any other whole (absolute: it holds a `/`). Packed values are read by this forever:
    it is not the compacted results' (journal.compact.result_names), which may change with their table."""
    if not files or not all(posixpath.isabs(name) for name in files):
        return None, list(files)
    folder = posixpath.dirname(files[0])
    return folder, [posixpath.basename(name) if posixpath.dirname(name) == folder else name for name in files]


def _zigzag(number: int) -> int:
    """A signed integer as an unsigned one, small either side of 0 (a clock stepped back makes a time after
    its job's completion)."""
    return number * 2 if number >= 0 else -number * 2 - 1


def _unzigzag(number: int) -> int:
    return number // 2 if number % 2 == 0 else -(number + 1) // 2


def _varint(number: int) -> bytes:
    """7 bits a byte, lowest first; the high bit says another byte follows."""
    out = bytearray()
    while number >= _MORE:
        out.append(number & _BITS | _MORE)
        number >>= 7
    out.append(number)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    number, shift = 0, 0
    while data[at] & _MORE:
        number |= (data[at] & _BITS) << shift
        at, shift = at + 1, shift + 7
    return number | data[at] << shift, at + 1


def _deflate(dictionary: int, document: Any) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, _WINDOW, 9, zlib.Z_DEFAULT_STRATEGY, _DICTIONARIES[dictionary])
    return packer.compress(dump_json(document).encode()) + packer.flush()


def _inflate(dictionary: int, data: bytes) -> Any:
    unpacker = zlib.decompressobj(_WINDOW, _DICTIONARIES[dictionary])
    return load_json((unpacker.decompress(data) + unpacker.flush()).decode())


def _documents(packed: bytes) -> list[Any]:
    """The deflated array of a packed value: [request, answer, ...]."""
    at = 1
    if packed[0] != 1:
        for _ in _INTEGERS:
            at = _read_varint(packed, at)[1]
    return list(_inflate(packed[0], packed[at:]))


def _unpacked(packed: bytes | None, part: int) -> str | None:
    return None if packed is None else dump_json(_documents(packed)[part])


def _pack_texts(request: str, response: str | None, files: str) -> bytes:
    """A job packed as the migration to packed jobs packed it, in dictionary 1, of its JSON texts."""
    return bytes([1]) + _deflate(1, [load_json(request), load_json(response), load_json(files)])


def register(connection: sqlite3.Connection) -> None:
    """The journal's SQL functions a connection needs to read and write the jobs (the search's view)."""
    connection.create_function("unpacked", 2, _unpacked, deterministic=True)


def register_migrating(connection: sqlite3.Connection) -> None:
    """... and what journal.layout's PACKED_MIGRATION needs: `pack_texts(request, response, files)`, of their
    JSON texts."""
    connection.create_function("pack_texts", 3, _pack_texts, deterministic=True)
