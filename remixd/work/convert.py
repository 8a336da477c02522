"""Conversions before upload: what prepare() does to an image Ideogram would not take as it is.

Each conversion appends a short note to `steps`, which becomes the sidecar's `source.conversion`.
"""

from __future__ import annotations

import io
import math
from typing import Any

from PIL import Image, ImageOps

from remixd.errors import InputError

SENT_AS_IS = frozenset({"JPEG", "PNG", "WEBP"})  # what Ideogram accepts, and so what is sent untouched
JPEG_QUALITIES = (90, 85, 80, 70, 60)
DOWNSCALE_STEP = 0.75
MIN_SIDE = 256  # below this a remix is pointless; give up instead of sending a thumbnail
_EXIF_ORIENTATION = 0x0112


def normalise(image: Image.Image, source_format: str, data: bytes, steps: list[str]) -> Image.Image | None:
    """The image to re-encode, or None when the original bytes can go as they are."""
    result: Image.Image | None = None
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        steps.append(f"{source_format.lower()} with {frames} frames: first frame only")
        result = image.copy()  # load() already decoded frame 0; copy() detaches it from the sequence
    if source_format not in SENT_AS_IS:
        steps.append(f"{source_format.lower()}->png")
        result = result or image.copy()
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in range(2, 9):  # 1 is upright; anything outside 1..8 is junk exif_transpose ignores
        steps.append(f"exif-rotated (orientation {orientation})")
        result = ImageOps.exif_transpose(result or image)
    if image.mode == "CMYK":
        steps.append("cmyk->rgb")
        result = (result or image).convert("RGB")
    if _is_sixteen_bit(image, source_format, data):
        steps.append("16-bit->8-bit")
        result = _to_eight_bit(result or image)
    if result is not None and result.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        result = result.convert("RGBA" if _has_alpha(result) else "RGB")
    return result


def _is_sixteen_bit(image: Image.Image, source_format: str, data: bytes) -> bool:
    # Pillow reads 16-bit RGB(A) PNGs as 8-bit modes, so the IHDR bit depth (byte 24) is the only tell.
    if source_format == "PNG" and len(data) > 24 and data[24] == 16:  # noqa: PLR2004  # IHDR bit depth
        return True
    return image.mode == "I" or image.mode.startswith("I;16")


def _to_eight_bit(image: Image.Image) -> Image.Image:
    if image.mode == "I" or image.mode.startswith("I;16"):
        # convert("L") would clamp every value above 255 to white; scale the 16-bit range instead
        return image.convert("I").point(lambda value: value / 256).convert("L")
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def colour_space(image: Image.Image) -> str:
    """An ICC profile only fits images of the colour space it was made for."""
    return {"1": "gray", "L": "gray", "LA": "gray", "I": "gray", "CMYK": "cmyk"}.get(
        image.mode, "gray" if image.mode.startswith("I;16") else "rgb"
    )


def encode(image: Image.Image, target: str, icc_profile: bytes | None, quality: int = 95) -> bytes:
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if target == "JPEG":
        if image.mode not in ("L", "RGB"):
            image = _flatten(image)
            options.pop("icc_profile", None)
        options.update(quality=quality, optimize=True)
    elif target == "WEBP":
        options.update(quality=quality)
    buffer = io.BytesIO()
    image.save(buffer, format=target, **options)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite onto white (what a viewer shows) rather than onto black."""
    if not _has_alpha(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def downscale_factor(size: tuple[int, int], max_pixels: int) -> int:
    """The whole factor that brings `size` within `max_pixels` (1: it is within already)."""
    return max(1, math.ceil(math.sqrt(size[0] * size[1] / max_pixels)))


def downscale(image: Image.Image, original: tuple[int, int], max_pixels: int, steps: list[str]) -> Image.Image:
    """An input with more pixels than Ideogram could use is reduced to fit before it is encoded (a JPEG may
    arrive decoded at a smaller scale already); box-averaging by a whole factor is fast on 179 MP."""
    if image.mode in ("1", "P"):  # averaging palette indices would be noise
        image = image.convert("RGBA" if _has_alpha(image) else "RGB" if image.mode == "P" else "L")
    factor = downscale_factor(image.size, max_pixels)
    result = image.reduce(factor) if factor > 1 else image
    steps.append(
        f"over {max_pixels // 1_000_000} MP: downscaled {original[0]}x{original[1]}->{result.width}x{result.height}"
    )
    return result


def shrink(image: Image.Image, max_bytes: int, steps: list[str], name: str) -> tuple[Image.Image, bytes, str]:
    """JPEG at falling quality first (keeps every pixel), then smaller sizes, until it fits."""
    limit = f"{max_bytes / (1024 * 1024):.1f} MiB"
    if _has_alpha(image):
        steps.append("transparency flattened onto white")
    for quality in JPEG_QUALITIES:
        payload = encode(image, "JPEG", None, quality)
        if len(payload) <= max_bytes:
            steps.append(f"over {limit}: jpeg q={quality}")
            return image, payload, "JPEG"
    original = image.size
    current = image
    while min(current.size) * DOWNSCALE_STEP >= MIN_SIDE:
        size = (round(current.width * DOWNSCALE_STEP), round(current.height * DOWNSCALE_STEP))
        current = image.resize(size, Image.Resampling.LANCZOS)
        payload = encode(current, "JPEG", None, JPEG_QUALITIES[1])
        if len(payload) <= max_bytes:
            steps.append(
                f"over {limit}: jpeg q={JPEG_QUALITIES[1]}, downscaled {original[0]}x{original[1]}->{size[0]}x{size[1]}"
            )
            return current, payload, "JPEG"
    raise InputError(
        f"{name} does not fit in {limit} even as a {current.width}x{current.height} JPEG",
        "export a smaller or simpler image",
    )
