"""Does a quiet file look whole? A few bytes from its head and its tail, never a decode.

A copy that stalls (a network share pausing, a phone's upload waiting for signal) leaves a file that is
quiet for `settle_s` and cut short. Readiness asks this before handing a file on, so such a file gets a
second settle window instead of being failed as damaged (README "Odd and hostile inputs"). Only formats
whose end can be told cheaply are judged; anything else counts as whole, and the worker's full check decides.
"""

from __future__ import annotations

import os
from pathlib import Path

_HEAD = 32
_JPEG, _PNG, _GIF = b"\xff\xd8", b"\x89PNG\r\n\x1a\n", (b"GIF87a", b"GIF89a")
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every whole PNG
_MAX_BOXES = 64  # an ISO-BMFF (HEIC, AVIF) file has a handful of top-level boxes; more is not worth walking


def looks_complete(path: Path) -> bool:
    """False when the file is a JPEG, PNG, GIF, WebP, BMP, HEIC or AVIF whose end is missing; else True."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return True  # a link, a vanished file: not this check's business
    try:
        size = os.fstat(descriptor).st_size
        head = os.pread(descriptor, _HEAD, 0)
        tail = os.pread(descriptor, 16, max(0, size - 16))
        return _whole(descriptor, head, tail.rstrip(b"\0") if head.startswith(_JPEG) else tail, size)
    except OSError:
        return True
    finally:
        os.close(descriptor)


def _whole(descriptor: int, head: bytes, tail: bytes, size: int) -> bool:
    # JPEG: the end-of-image marker (a camera's trailer after it is told as cut short: one more window);
    # PNG: the IEND chunk; GIF: its trailer byte.
    for magic, end in ((_JPEG, b"\xff\xd9"), (_PNG, _PNG_END), *((gif, b"\x3b") for gif in _GIF)):
        if head.startswith(magic):
            return tail.endswith(end)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return int.from_bytes(head[4:8], "little") + 8 <= size
    if head[:2] == b"BM" and len(head) >= 6:  # noqa: PLR2004  # the header's file size field
        return int.from_bytes(head[2:6], "little") <= size
    if head[4:8] == b"ftyp":
        return _boxes_fit(descriptor, size)
    return True


def _boxes_fit(descriptor: int, size: int) -> bool:
    """ISO-BMFF: every top-level box's declared size must fit in the file."""
    offset = 0
    for _ in range(_MAX_BOXES):
        if offset >= size:
            return offset == size
        header = os.pread(descriptor, 16, offset)
        if len(header) < 8:  # noqa: PLR2004  # a box header is 8 bytes
            return False
        length = int.from_bytes(header[:4], "big")
        if length == 1:
            length = int.from_bytes(header[8:16], "big")  # a 64-bit size follows the type
        elif length == 0:
            return True  # "to the end of the file"
        if length < 8:  # noqa: PLR2004  # a box is at least its 8-byte header
            return True  # malformed: let the worker's decoder say what is wrong
        offset += length
    return True
