"""One downloaded result made ready to write: converted as `outputs` asks, with its metadata embedded (README,
"What lands on disk"); `files.write` names and writes it."""

from __future__ import annotations

import dataclasses
from typing import Any

from remixd.config.model import OutputsConfig
from remixd.errors import JobFailed, OutputError
from remixd.files import embed, encode
from remixd.files.atomic import sha256_hex
from remixd.files.write import Final
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import ResultItem
from remixd.journal.records import JobRecord, Journal


def encoded_result(
    journal: Journal,
    job: JobRecord,
    download: bytes,
    document: dict[str, Any],
    *,
    settings: OutputsConfig,
    story: embed.Story,
) -> Final:
    """The bytes to write for one download: converted as `outputs` asks, with the metadata inside.

    What is embedded leaves out the facts of the written file (its name, hash and size, and when it was
    written), so the same answer always gives the same bytes: a result written before a crash is then
    recognised as this job's by its hash."""
    try:
        encoded = encode.encode(download, settings.format, settings.quality, settings.max_side)
        document["output"] = {
            "format": encoded.extension,
            "steps": list(encoded.steps),
            "metadata_embedded": settings.embed_metadata,
        }
        if settings.embed_metadata:
            timings = {key: value for key, value in document["timings"].items() if key != "completed_at"}
            embedded = {**{key: value for key, value in document.items() if key != "image"}, "timings": timings}
            encoded = dataclasses.replace(encoded, data=embed.embed(encoded.data, encoded.extension, story, embedded))
    except (OSError, ValueError) as error:  # a download Pillow cannot re-encode, or a malformed one
        failed = OutputError(
            f"cannot write the result as {settings.format}: {error}",
            "set outputs.format: original (or embed_metadata: false) for this rule; "
            "`remixd retry` sends it again (and pays again)",
        )
        journal.record_job_failure(job.id, failed.record(), final=True)
        raise JobFailed(failed.record()) from None
    return Final(encoded, download, sha256_hex(encoded.data))


def embed_story(item: ResultItem, created: str, *, request: RemixRequest, source_sha256: str, rule: str) -> embed.Story:
    return embed.Story(
        prompt=item.prompt or request.prompt,
        source_sha256=source_sha256,
        rule=rule,
        model=request.model,
        seed=item.seed,
        created=created,
    )
