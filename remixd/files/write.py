"""Writing one job's results: each download converted as `outputs` asks, with its metadata embedded; then free
names for them, and each image (and the download beside it when it is kept) with its sidecar last, so a sidecar
on disk means the result is complete (README, "What lands on disk").

One call is one step for the caller's output retry: a full disk is waited out once, and a retry finds its own
names, and what it already wrote, again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remixd.errors import OutputError
from remixd.files import embed, encode, names
from remixd.files.atomic import atomic_write, sha256_hex
from remixd.files.sidecar import ResultPaths, Source, write_result


@dataclass(frozen=True)
class Final:
    encoded: encode.Encoded  # what is written
    download: bytes  # what the API sent
    sha256: str  # of `encoded.data`


def encode_result(
    download: bytes,
    document: dict[str, Any],
    story: embed.Story,
    *,
    output_format: encode.OutputFormat,
    quality: int,
    max_side: int | None,
    embed_metadata: bool,
) -> Final:
    """The bytes to write for one download: converted as `outputs` asks, with the metadata inside; raises
    OutputError for a download that cannot be written so.

    What is embedded leaves out the facts of the written file (its name, hash and size, and when it was
    written), so the same answer always gives the same bytes: a result written before a crash is then
    recognised as this job's by its hash."""
    try:
        encoded = encode.encode(download, output_format, quality, max_side)
        document["output"] = {
            "format": encoded.extension,
            "steps": list(encoded.steps),
            "metadata_embedded": embed_metadata,
        }
        if embed_metadata:
            timings = {key: value for key, value in document["timings"].items() if key != "completed_at"}
            embedded = {**{key: value for key, value in document.items() if key != "image"}, "timings": timings}
            encoded = dataclasses.replace(encoded, data=embed.embed(encoded.data, encoded.extension, story, embedded))
    except (OSError, ValueError) as error:  # a download Pillow cannot re-encode, or a malformed one
        raise OutputError(
            f"cannot write the result as {output_format}: {error}",
            "set outputs.format: original (or embed_metadata: false) for this rule; "
            "`remixd retry` sends it again (and pays again)",
        ) from None
    return Final(encoded, download, sha256_hex(encoded.data))


def write_results(
    output_dir: Path,
    source: Source,
    *,
    rule: str,
    fingerprint: str,
    finals: Sequence[Final | None],
    documents: Sequence[dict[str, Any]],
    template: str,
    values: Sequence[Mapping[str, str]],
    reroll: int | None,
    keep_download: bool,
) -> list[ResultPaths]:
    """Names, then each image and its sidecar; `finals[K-1]` is None for an image the safety check withheld
    (its sidecar alone is written). Where each result went."""
    paths = names.result_paths(
        output_dir,
        source,
        rule,
        fingerprint,
        extensions=[None if final is None else final.encoded.extension for final in finals],
        # An image without its sidecar is ours if it is what we write, or the download as it came
        # (what remixd wrote before it embedded metadata, or with embed_metadata off).
        image_sha256s=[
            None if final is None else frozenset({final.sha256, sha256_hex(final.download)}) for final in finals
        ],
        template=template,
        values=values,
        reroll=reroll,
    )
    for final, document, place in zip(finals, documents, paths, strict=True):
        if final is not None and place.image is not None:
            _describe_written(final, document, place.image, keep_download)
        if place.shortened_from is not None:  # README "Output names": a name too long to exist is shortened
            document.setdefault("output", {})["shortened_from"] = place.shortened_from
        write_result(place, None if final is None else final.encoded.data, document)
    return paths


def _describe_written(final: Final, document: dict[str, Any], image: Path, keep_download: bool) -> None:
    """The sidecar's `image` (the file as written), and the download beside it when asked to keep it."""
    encoded = final.encoded
    document["image"] = {
        "file": image.name, "sha256": final.sha256, "bytes": len(encoded.data),
        "width": encoded.width, "height": encoded.height,
    }  # fmt: skip
    if keep_download and final.download != encoded.data:
        extension = encode.facts(final.download)[0]
        kept = image.with_name(f"{names.name_stem(image.name)}{names.DOWNLOAD_INFIX}.{extension}")
        atomic_write(kept, final.download)
        document["output"]["download"] = {
            "file": kept.name,
            "sha256": sha256_hex(final.download),
            "bytes": len(final.download),
        }
