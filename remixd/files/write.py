"""Writing one job's results: free names for them, then each image (and the download beside it when it is kept)
with its sidecar last, so a sidecar on disk means the result is complete (README, "What lands on disk").

One call is one step for the caller's output retry: a full disk is waited out once, and a retry finds its own
names, and what it already wrote, again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remixd.files import encode, names
from remixd.files.atomic import atomic_write, sha256_hex
from remixd.files.sidecar import ResultPaths, Source, write_result


@dataclass(frozen=True)
class Final:
    encoded: encode.Encoded  # what is written
    download: bytes  # what the API sent
    sha256: str  # of `encoded.data`


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
        kept = image.with_name(f"{names.name_stem(image.name)}.download.{extension}")
        atomic_write(kept, final.download)
        document["output"]["download"] = {
            "file": kept.name,
            "sha256": sha256_hex(final.download),
            "bytes": len(final.download),
        }
