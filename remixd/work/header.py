"""What is read from an input's header and metadata without decoding its pixels, for the prompt and request.

`{caption}`: the caption a photographer or a DAM already wrote into the image (README, "Prompt placeholders"),
looked for in the order tools write it: XMP `dc:description`, IPTC `Caption-Abstract`, EXIF `ImageDescription`.
`oriented_size`: the size as the image is shown (EXIF orientation applied), for `aspect_ratio: match_input`.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import unescape

from PIL import Image, ImageFile, IptcImagePlugin, UnidentifiedImageError

EXIF_IMAGE_DESCRIPTION = 0x010E
EXIF_ORIENTATION = 0x0112
_QUARTER_TURNS = (5, 6, 7, 8)  # orientations whose upright image is the stored one turned on its side
IPTC_CAPTION = (2, 120)
_XMP_KEYS = ("xmp", "XML:com.adobe.xmp")  # where Pillow keeps XMP: JPEG and WebP, PNG's iTXt
_DESCRIPTION = re.compile(
    r"<dc:description\b[^>]*>\s*<rdf:Alt\b[^>]*>\s*<rdf:li\b[^>]*>(.*?)</rdf:li>", re.DOTALL | re.IGNORECASE
)
_ENTITIES = {"&quot;": '"', "&apos;": "'"}


def read_caption(path: Path) -> str:
    """The image's caption, stripped; "" when it has none or cannot be read (`run` reports a bad image)."""
    try:
        with Image.open(path) as image:
            for found in (_xmp_description(image), _iptc_caption(image), _exif_description(image)):
                if found.strip():
                    return found.strip()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return ""
    return ""


def _xmp_description(image: Image.Image) -> str:
    for key in _XMP_KEYS:
        packet = image.info.get(key)
        if isinstance(packet, bytes):
            packet = packet.decode("utf-8", errors="replace")
        if isinstance(packet, str):
            match = _DESCRIPTION.search(packet)
            if match:
                return unescape(match.group(1), _ENTITIES)
    return ""


def _iptc_caption(image: Image.Image) -> str:
    if not isinstance(image, ImageFile.ImageFile) or image.format not in ("JPEG", "TIFF"):
        return ""  # getiptcinfo reads JPEG's APP13 and TIFF's tag; elsewhere there is no IPTC to read
    info = IptcImagePlugin.getiptcinfo(image) or {}
    value = info.get(IPTC_CAPTION)
    if isinstance(value, list):
        value = value[0] if value else b""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else ""


def _exif_description(image: Image.Image) -> str:
    value = image.getexif().get(EXIF_IMAGE_DESCRIPTION)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def oriented_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as the image is shown; None when it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            turned = image.getexif().get(EXIF_ORIENTATION) in _QUARTER_TURNS
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    return (height, width) if turned else (width, height)
