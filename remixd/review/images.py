"""Images for the review page, found by journal id: an input (where its disposal put it) or a job's result.

A path in a URL never reaches the file system: the URL carries ids, the journal says which file, and the file
is served only when it lies inside one of the folders the config gives that inbox (a journal row pointing
elsewhere, by a bug or by hand, serves nothing). Thumbnails are made with Pillow once and kept in
state_dir/thumbnails, remade only when the image is newer than its thumbnail.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from remixd.config.model import InboxConfig
from remixd.files.atomic import atomic_write
from remixd.journal.records import InputRecord, JobRecord

THUMBNAIL_SIDE = 360
PREVIEW_SIDE = 4096  # a full-size view of an input the browser cannot show (HEIC, TIFF), as JPEG
BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_PIXELS = 80_000_000  # Pillow's own bomb check stays on below this


@dataclass(frozen=True)
class Served:
    body: bytes
    content_type: str


def input_path(record: InputRecord, inbox: InboxConfig | None) -> Path | None:
    """Where the input is now: its done or failed copy, or the inbox itself while claimed or when kept."""
    if inbox is None:
        return None
    folders = [folder for folder in (inbox.done_dir, inbox.failed_dir) if folder is not None]
    if record.disposal == "moved" and record.disposed_to is not None:
        return _inside(Path(record.disposed_to), folders)
    if record.disposal in (None, "pending", "kept"):
        # While a disposal is pending the file may already be in its new folder: look there too.
        for root in (inbox.path, *(folders if record.disposal == "pending" else ())):
            found = _inside(root / record.relpath, [root])
            if found is not None:
                return found
    return None  # deleted, or vanished before it was finished


def result_path(job: JobRecord, index: int, inbox: InboxConfig | None) -> Path | None:
    """The job's `index`-th result image (1-based); None when withheld (the journal keeps its sidecar)."""
    if inbox is None or not 1 <= index <= len(job.files):
        return None
    name = Path(job.files[index - 1])
    if name.suffix == ".json":
        return None
    return _inside(name, [inbox.output])


def _inside(path: Path, roots: list[Path]) -> Path | None:
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_file() or not any(resolved.is_relative_to(root.resolve()) for root in roots):
        return None
    return resolved


class Thumbnails:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def full(self, source: Path, key: str) -> Served:
        """The file as it is when a browser can show it; otherwise a large JPEG preview, cached."""
        with Image.open(source) as image:
            kind = BROWSER_FORMATS.get(image.format or "")
        if kind is not None:
            return Served(source.read_bytes(), kind)
        return self._cached(source, f"{key}.full.jpg", PREVIEW_SIDE)

    def thumbnail(self, source: Path, key: str) -> Served:
        return self._cached(source, f"{key}.jpg", THUMBNAIL_SIDE)

    def _cached(self, source: Path, name: str, side: int) -> Served:
        cached = self._folder / name
        try:
            if cached.stat().st_mtime_ns >= source.stat().st_mtime_ns:
                return Served(cached.read_bytes(), "image/jpeg")
        except FileNotFoundError:
            pass
        data = _jpeg(source, side)
        atomic_write(cached, data)
        return Served(data, "image/jpeg")


def _jpeg(source: Path, side: int) -> bytes:
    with Image.open(source) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            raise ValueError(f"{source.name} is too large to preview")
        opened.draft("RGB", (side, side))  # JPEG decodes at 1/2, 1/4, 1/8 scale: much less work
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()
