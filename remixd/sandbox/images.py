"""The sandbox's image maker: the input, cropped to the answer's aspect ratio and visibly marked as fake.

Output is the declared resolution (``output_scale`` below 1 shrinks it, keeping the exact ratio, for tests and
the bench that ask for it), tinted by a colour derived from the seed (stronger for a lower image_weight) and
stamped "SANDBOX" with the model and seed in a thin see-through strip and frame, so nobody mistakes it for
Ideogram's work and the picture still shows what the settings did.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from collections.abc import Callable
from typing import TypeVar

from PIL import Image, ImageDraw, ImageFont, ImageOps

SNIFFED_FORMATS = ("jpeg", "png", "webp")
_WEBP_HEADER_BYTES = 12
_T = TypeVar("_T")


class ImageProblem(ValueError):
    """The upload is not an image the API accepts; the message is for the 400 detail."""


def sniff(data: bytes) -> str | None:
    """The format by magic bytes, as the reference prescribes (JPEG, PNG, WebP only)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= _WEBP_HEADER_BYTES and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode(data: bytes, max_pixels: int, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode fully (so a truncated file is a 400 now, not a crash during the work). Returns RGB."""
    kind = sniff(data)
    if kind is None:
        raise ImageProblem("only JPEG, WebP and PNG formats are supported")
    with warnings.catch_warnings():
        # The pixel cap below is ours; Pillow's bomb warning would be an error under pytest's filter.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = _pillow(lambda: Image.open(io.BytesIO(data), formats=[kind.upper()]))
        width, height = image.size
        if width < 1 or height < 1 or width * height > max_pixels:
            raise ImageProblem(f"image is {width}x{height}; at most {max_pixels} pixels are accepted")
        if draft_size is not None and kind == "jpeg":
            image.draft("RGB", draft_size)  # decode a big JPEG at a reduced scale: much faster
        return _pillow(lambda: ImageOps.exif_transpose(image).convert("RGB"))


def _pillow(step: Callable[[], _T]) -> _T:
    try:
        return step()
    except Exception as error:  # Pillow raises many types for corrupt data; all mean "bad upload"
        raise ImageProblem(f"the image could not be decoded ({type(error).__name__})") from error


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Scale (width, height) down, keeping width:height exact by scaling the reduced ratio by an integer."""
    divisor = math.gcd(width, height)
    ratio_w, ratio_h = width // divisor, height // divisor
    multiple = max(1, round(width * scale / ratio_w))
    return ratio_w * multiple, ratio_h * multiple


def seed_colour(seed: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"remixd-sandbox-seed:{seed}".encode()).digest()
    return digest[0], digest[1], digest[2]


def render(
    source: Image.Image, *, width: int, height: int, seed: int, image_weight: int, scale: float, label: str
) -> bytes:
    """One output PNG for the declared ``width`` x ``height``."""
    out_w, out_h = output_size(width, height, scale)
    # Center crop to the exact ratio, then resize: the API's "cropped to the chosen aspect ratio".
    fitted = ImageOps.fit(source, (out_w, out_h), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))
    # image_weight 100 keeps most of the input, 1 is almost all tint: lower weight = stronger alteration.
    strength = 0.15 + 0.7 * (100 - image_weight) / 99
    tint = Image.new("RGB", (out_w, out_h), seed_colour(seed))
    altered = Image.blend(fitted, tint, strength)
    _stamp(altered, label)
    buffer = io.BytesIO()
    altered.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


STAMP_SHARE = 16  # the strip is 1/16 of the height: the label reads at a glance, the picture stays visible
STAMP_OPACITY = 0.45  # how dark the strip is behind the label: the picture shows through it


def _stamp(image: Image.Image, label: str) -> None:
    width, height = image.size
    band = max(10, height // STAMP_SHARE)
    strip = image.crop((0, height - band, width, height))
    image.paste(Image.blend(strip, Image.new("RGB", strip.size, (0, 0, 0)), STAMP_OPACITY), (0, height - band))
    draw = ImageDraw.Draw(image)
    size = max(6, int(band * 0.7))
    font = ImageFont.load_default(size=size)
    room = width * 0.94
    length = draw.textlength(label, font=font)
    if length > room:  # shrink to fit narrow outputs (1x3 at a small scale)
        size = max(6, int(size * room / length))
        font = ImageFont.load_default(size=size)
    draw.text((width * 0.03, height - band + (band - size) / 2), label, fill=(255, 255, 0), font=font)
    # A thin frame so even a tiny thumbnail shows it is not a real result.
    draw.rectangle((0, 0, width - 1, height - 1), outline=(255, 255, 0), width=max(1, width // 200))
