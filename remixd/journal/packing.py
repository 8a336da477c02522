"""A finished job's request, answer and files, packed (README "A year of journal").

A year of journal keeps about 900,000 finished jobs whole (those within keep_days), and their request, answer
and files as JSON were 270 of each job's 411 bytes. Once an input is disposed of its jobs never change again:
their three documents are packed into one `jobs.packed` value, as one sorted JSON array deflated against a
preset dictionary of the shapes remixd writes (the keys of a slimmed request and answer, the words they use),
and `request`, `response` and `files` are left NULL. A short document compresses well only against such a
dictionary; a prompt sent and the prompt Ideogram returned for it, mostly the same words, are packed together.

The first byte names the dictionary: one packed under it is read with it forever, so a new dictionary gets a
new number and this one stays. SQL reads a packed job through the journal's own function `unpacked(packed, n)`
(n: 0 the request, 1 the answer, 2 the files), which every connection that reads or writes the jobs registers
(`register`): the search's view and triggers read the prompts through it.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
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
_DICTIONARIES = {1: DICTIONARY_1}
_CURRENT = 1
_WINDOW = -15  # raw deflate: no header or checksum of its own (SQLite checks its pages)


def pack_job(request: Any, response: Any, files: Sequence[str]) -> bytes:
    """The three documents of a finished job as one packed value."""
    packer = zlib.compressobj(9, zlib.DEFLATED, _WINDOW, 9, zlib.Z_DEFAULT_STRATEGY, _DICTIONARIES[_CURRENT])
    text = dump_json([request, response, list(files)]).encode()
    return bytes([_CURRENT]) + packer.compress(text) + packer.flush()


def unpack_job(packed: bytes) -> tuple[Any, Any, list[str]]:
    """(request, answer, files) of a packed job."""
    unpacker = zlib.decompressobj(_WINDOW, _DICTIONARIES[packed[0]])
    request, response, files = load_json((unpacker.decompress(packed[1:]) + unpacker.flush()).decode())
    return request, response, files


def job_documents(row: sqlite3.Row) -> tuple[Any, Any, list[str]]:
    """(request, answer, files) of a job's row, packed or not."""
    if row["packed"] is not None:
        return unpack_job(row["packed"])
    return load_json(row["request"]), load_json(row["response"]), load_json(row["files"])


def _unpacked(packed: bytes | None, part: int) -> str | None:
    return None if packed is None else dump_json(unpack_job(packed)[part])


def _pack_texts(request: str, response: str | None, files: str) -> bytes:
    return pack_job(load_json(request), load_json(response), load_json(files))


def register(connection: sqlite3.Connection) -> None:
    """The journal's SQL functions a connection needs to read and write the jobs (the search's view)."""
    connection.create_function("unpacked", 2, _unpacked, deterministic=True)


def register_migrating(connection: sqlite3.Connection) -> None:
    """... and what journal.layout's PACKED_MIGRATION needs: `pack_texts(request, response, files)`, of their
    JSON texts."""
    connection.create_function("pack_texts", 3, _pack_texts, deterministic=True)
