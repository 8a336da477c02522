"""A downloaded result in the format the user asked for (README, "Output format").

`outputs.format`, `quality` and `max_side` apply after the download, with Pillow; a result already in the
asked format and size is kept byte for byte. What was done is returned as words for the sidecar, so a
person can tell a converted result from the API's own file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image

OutputFormat = Literal["original", "png", "jpeg", "webp"]
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class Encoded:
    data: bytes
    extension: str  # jpg | png | webp
    width: int
    height: int
    steps: tuple[str, ...]  # what was done to the download, e.g. ("resized 1024x1024 -> 512x512", "png -> jpeg")


def facts(data: bytes) -> tuple[str, int, int]:
    """(extension, width, height) of an image the client already checked decodes."""
    with Image.open(io.BytesIO(data)) as image:
        return EXTENSIONS.get(image.format or "", "png"), image.width, image.height


def encode(data: bytes, output_format: OutputFormat, quality: int, max_side: int | None) -> Encoded:
    """`data` converted to `output_format` and shrunk so its longer side is at most `max_side`.

    Raises OSError (Pillow's UnidentifiedImageError is one) when the download does not decode."""
    extension, width, height = facts(data)
    target = extension if output_format == "original" else {"jpeg": "jpg"}.get(output_format, output_format)
    shrink = max_side is not None and max(width, height) > max_side
    if target == extension and not shrink:
        return Encoded(data, extension, width, height, ())
    steps: list[str] = []
    with Image.open(io.BytesIO(data)) as opened:
        image: Image.Image = opened.copy()
    if shrink and max_side is not None:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        steps.append(f"resized {width}x{height} -> {size[0]}x{size[1]}")
    name, was = _format_name(target), _format_name(extension)
    settings = "" if name == "png" else f" quality {quality}"
    if target != extension:
        steps.append(f"{was} -> {name}{settings}")
    elif name != "png":  # shrinking a JPEG or WebP encodes it again, at `quality`
        steps.append(f"re-encoded as {name}{settings}")
    if name == "jpeg" and image.mode != "RGB":
        # JPEG has no alpha: flatten onto white, as viewers show a transparent PNG.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    buffer = io.BytesIO()
    options: dict[str, object] = {} if name == "png" else {"quality": quality}
    image.save(buffer, format=_PILLOW_FORMATS[name], **options)
    return Encoded(buffer.getvalue(), target, image.width, image.height, tuple(steps))


def _format_name(extension: str) -> str:
    return "jpeg" if extension == "jpg" else extension
