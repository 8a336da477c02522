"""`{caption}`: the caption a photographer or a DAM already wrote into the image (README, "Prompt placeholders").

Looked for in the order tools write it: XMP `dc:description`, IPTC `Caption-Abstract`, EXIF `ImageDescription`.
Only the header and metadata are read, never the pixels.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import unescape

from PIL import Image, ImageFile, IptcImagePlugin, UnidentifiedImageError

EXIF_IMAGE_DESCRIPTION = 0x010E
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
