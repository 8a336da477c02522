"""The documents beside the results: the `remixd.result/1` sidecar and the `remixd.error/1` error file.

The image is written first and its sidecar last, so a sidecar on disk means the result is complete (README,
"What lands on disk").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import remixd
from remixd.errors import ErrorRecord
from remixd.files.atomic import atomic_write, write_json

RESULT_SCHEMA = "remixd.result/1"


ERROR_SCHEMA = "remixd.error/1"


@dataclass(frozen=True)
class Source:
    """The input as the sidecar and the error file describe it (sha256/bytes unknown if it was unreadable)."""

    inbox: str
    relpath: str
    sha256: str | None
    bytes: int | None
    conversion: str | None = None  # what prepare changed before upload, e.g. "exif-rotated; heic->png"
    mtime_ns: int | None = None  # as claimed: a journal rebuilt from sidecars knows a kept input unchanged

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inbox": self.inbox,
            "relpath": self.relpath,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }
        if self.conversion is not None:
            data["conversion"] = self.conversion
        if self.mtime_ns is not None:
            data["mtime_ns"] = self.mtime_ns
        return data


@dataclass(frozen=True)
class ImageInfo:
    file: str  # the result's file name, without its folder
    sha256: str
    bytes: int
    width: int
    height: int


@dataclass(frozen=True)
class ResultPaths:
    index: int
    image: Path | None  # None: withheld by the safety check, only a sidecar is written
    sidecar: Path
    shortened_from: str | None = None  # the name the template gave (inside the output folder), when too long


def write_result(paths: ResultPaths, image: bytes | None, sidecar_document: Mapping[str, Any]) -> None:
    """The image first, its sidecar last: a sidecar on disk means the result is complete."""
    if (paths.image is None) != (image is None):
        raise ValueError("an image needs an image path, and a withheld image has none")
    if paths.image is not None and image is not None:
        atomic_write(paths.image, image)
    write_json(paths.sidecar, sidecar_document)


def sidecar(
    *,
    source: Source,
    rule: str,
    fingerprint: str,
    endpoint: str,
    request: Mapping[str, Any],
    created: str,
    route: str,
    generation_id: str | None,
    cost_source: str,
    index: int,
    count: int,
    item: Mapping[str, Any],
    image: ImageInfo | None,
    cost_usd: float,
    possible_payments: int,
    detected_at: datetime,
    submitted_at: datetime,
    completed_at: datetime,
    sandbox: bool = False,
    earlier_payments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The contract's `remixd.result/1` document; `item` is the API's result item (its url is not kept).
    `sandbox`: made by the built-in sandbox, a stamped placeholder nobody paid for.
    `possible_payments`: earlier requests for these results that were sent and never answered (a crash
    caught them in flight): each may have been billed on top of `cost_usd`.
    `earlier_payments`: what the input's earlier attempts paid for nothing written (it failed, and `remixd
    retry` removed the error file that named them), only when there were any: the same in each sidecar of the
    input, counted once by a journal rebuilt from the folders."""
    document: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "sandbox": sandbox,
        "remixd_version": remixd.__version__,
        "source": source.to_dict(),
        "rule": {"name": rule, "fingerprint": fingerprint},
        "api": {
            "endpoint": endpoint,
            "request": dict(request),
            "created": created,
            "route": route,
            "generation_id": generation_id,
        },
        "cost_source": cost_source,
        "result": {
            "index": index,
            "count": count,
            "prompt": item.get("prompt"),
            "resolution": item.get("resolution"),
            "seed": item.get("seed"),
            "is_image_safe": bool(item.get("is_image_safe")),
            "style_type": item.get("style_type"),
        },
        "image": None
        if image is None
        else {
            "file": image.file,
            "sha256": image.sha256,
            "bytes": image.bytes,
            "width": image.width,
            "height": image.height,
        },
        "cost_usd": cost_usd,
        "possible_payments": possible_payments,
        "timings": {
            "detected_at": _iso(detected_at),
            "submitted_at": _iso(submitted_at),
            "completed_at": _iso(completed_at),
        },
    }
    if earlier_payments:
        document["earlier_payments"] = list(earlier_payments)
    return document


def error_document(
    *,
    source: Source,
    rule: str | None,
    fingerprint: str | None,
    error: ErrorRecord,
    attempts: int,
    failed_at: datetime,
    sandbox: bool = False,
    payments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The contract's `remixd.error/1` document. `payments`: the requests sent for it that wrote no result,
    billed or possibly (README "The sidecars are a second journal"), so that a journal rebuilt from the
    folders still counts what they cost."""
    return {
        "schema": ERROR_SCHEMA,
        "sandbox": sandbox,
        "source": source.to_dict(),
        "rule": None if rule is None else {"name": rule, "fingerprint": fingerprint},
        "error": error.to_json(),
        "attempts": attempts,
        "failed_at": _iso(failed_at),
        "payments": list(payments),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
