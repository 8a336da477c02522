"""Input file -> bytes ready to upload: Ideogram takes JPEG, PNG or WebP up to 10 MB, so everything else is
checked here, before any money is spent.

A file that needs no change is sent byte for byte (no re-encode, no generation loss). Anything else is
converted and the conversion is recorded, so the sidecar can say what was actually sent.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from remixd.errors import InputError
from remixd.work.convert import SENT_AS_IS, colour_space, downscale, downscale_factor, encode, normalise, shrink

JPEG_END_OF_IMAGE = b"\xff\xd9"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # the reference's "max size 10MB" for /remix and v3 remix
# Pillow's own decompression-bomb limit (twice Image.MAX_IMAGE_PIXELS, about 179 MP): what is beyond it is
# refused politely; what is below it but over UPLOAD_MAX_PIXELS (beyond anything Ideogram renders) is downscaled.
MAX_PIXELS = 2 * 89_478_485
UPLOAD_MAX_PIXELS = 64_000_000
MAX_SOURCE_BYTES = 256 * 1024 * 1024  # read before decoding, so a huge file cannot exhaust memory
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
SUPPORTED_HINT = "remixd sends JPEG, PNG and WebP, and converts GIF, BMP, TIFF, AVIF and HEIC"
# A copy that stalls is waited for over two settle windows before it gets here (README "Odd and hostile inputs").
_DAMAGED_HINT = (
    "re-export or re-copy the file and drop it in again; if it was still being copied, it had not changed for "
    "twice settle_s: raise settle_s for copies that pause longer"
)
_HEIC_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs")


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    filename: str
    content_type: str
    source_sha256: str
    source_bytes: int
    width: int
    height: int
    conversion: str | None  # None when the original bytes are sent; else e.g. "exif-rotated; bmp->png"


def prepare(
    path: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, *, max_pixels: int = MAX_PIXELS
) -> PreparedImage:
    """Read `path` once, check it is a whole image, and return what to upload. Raises InputError."""
    data, sha256 = _read(path)
    name = path.name
    if not data:
        raise InputError(
            f"{name} is empty (0 bytes)",
            "if it was still being copied, drop it again once the copy has finished",
        )
    formats = _allowed_formats(data, name)
    image = _open(data, name, formats, max_pixels)
    original = image.size
    factor = downscale_factor(original, UPLOAD_MAX_PIXELS)
    try:
        image.verify()  # checks what decoding alone does not (PNG chunk CRCs)
        image = _quiet_open(data, formats)
        if image.format in ("JPEG", "MPO"):
            if factor > 1:  # decode a big photo scaled down already (DCT scaling): a fraction of the memory
                image.draft(image.mode, (original[0] // factor, original[1] // factor))
            # Decoding a 2 MB JPEG is most of what a file costs remixd (bench figure 5), and a copy cut short
            # (the damage that happens here) is told by its missing end-of-image marker. Only a file without
            # it at the end (cut short, or a camera's trailer after it) pays for a decode, at 1/8 scale:
            # that still entropy-decodes every block, so truncation fails it all the same.
            if not data.rstrip(b"\0").endswith(JPEG_END_OF_IMAGE):
                check = _quiet_open(data, formats)
                check.draft(check.mode, (max(1, check.width // 8), max(1, check.height // 8)))
                check.load()
        else:
            image.load()  # decodes the first frame: a truncated file fails here
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(
            f"{name} is damaged or incomplete ({image.format} image: {error})",
            _DAMAGED_HINT,
        ) from error
    source_format = "JPEG" if image.format == "MPO" else str(image.format)  # camera JPEGs open as MPO
    steps: list[str] = []
    converted = normalise(image, source_format, data, steps)
    stem = _safe_stem(path)
    sent: Image.Image = image if converted is None else converted
    if factor > 1:
        sent = downscale(sent, original, UPLOAD_MAX_PIXELS, steps)
    if converted is None and factor == 1 and len(data) <= max_upload_bytes:
        payload, target = data, source_format  # the original bytes, untouched
    else:
        target = source_format if source_format in SENT_AS_IS else "PNG"  # lossless; shrink() may pick JPEG
        icc_profile = image.info.get("icc_profile") if colour_space(sent) == colour_space(image) else None
        payload = encode(sent, target, icc_profile)
        if len(payload) > max_upload_bytes:
            sent, payload, target = shrink(sent, max_upload_bytes, steps, name)
    return PreparedImage(
        data=payload,
        filename=stem + EXTENSIONS[target],
        content_type=CONTENT_TYPES[target],
        source_sha256=sha256,
        source_bytes=len(data),
        width=sent.width,
        height=sent.height,
        conversion="; ".join(steps) or None,
    )


def _read(path: Path) -> tuple[bytes, str]:
    """Read the file once, hashing while reading, so the hash is of exactly the bytes examined.

    Only a regular file is read, and only the one named: O_NOFOLLOW refuses a symbolic link even if one was
    swapped in after the worker looked, and O_NONBLOCK with the fstat check means a fifo (whose open would
    wait for a writer forever) or a device never holds a worker.
    """
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    total = 0
    too_big = InputError(
        f"{path.name} is over {MAX_SOURCE_BYTES // (1024 * 1024)} MiB",
        "export a smaller image; Ideogram accepts at most 10 MB anyway",
    )
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(
                f"{path.name} is a symbolic link",
                "remixd never follows links out of an inbox; copy the file itself into the inbox",
            ) from None
        reason = error.strerror or str(error)
        raise InputError(f"cannot read {path.name}: {reason}", "check the file's permissions") from error
    with os.fdopen(descriptor, "rb") as stream:
        try:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError(
                    f"{path.name} is not a regular file (it is a {_file_kind(info.st_mode)})",
                    "remixd only reads ordinary files; drop the image file itself into the inbox",
                )
            if info.st_size > MAX_SOURCE_BYTES:
                raise too_big  # before reading a byte of it
            while chunk := stream.read(1024 * 1024):
                total += len(chunk)
                if total > MAX_SOURCE_BYTES:
                    raise too_big  # it grew while being read
                digest.update(chunk)
                chunks.append(chunk)
        except OSError as error:
            reason = error.strerror or str(error)
            raise InputError(f"cannot read {path.name}: {reason}", "check the file and its disk") from error
    return b"".join(chunks), digest.hexdigest()


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    )
    return next((kind for test, kind in kinds if test(mode)), "special file")


def _allowed_formats(data: bytes, name: str) -> tuple[str, ...]:
    """Only these Pillow plugins may parse the file (no EPS/Ghostscript, no PDF, no exotic decoders).

    JPEG covers MPO: the JPEG plugin itself answers with an MPO image for multi-picture camera files.
    """
    Image.init()  # Image.open(formats=...) looks plugins up in the registry; make sure it is complete
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
    if _is_heic(data):
        try:
            # imported only when a HEIC file turns up: it loads libheif, and an install that lacks it
            # (a distribution package without the wheel) still gets a clear answer below
            import pillow_heif
        except ImportError:
            raise InputError(
                f"{name} is a HEIC image and HEIC needs pillow-heif",
                "pip install pillow-heif (then restart remixd), or export the photo as JPEG",
            ) from None
        pillow_heif.register_heif_opener()
        formats += ("HEIF",)
    return formats


def _is_heic(data: bytes) -> bool:
    """An ISO-BMFF `ftyp` box naming a HEVC image brand, as major brand or as a compatible one: phones
    write `mif1` as the major brand with `heic` among the compatible brands just as often as `heic` itself.
    AVIF files carry `mif1` too but no HEVC brand; Pillow reads those itself."""
    if data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    size = min(size if size >= 16 else 16, 256, len(data))  # noqa: PLR2004  # 16: the box's fixed fields
    brands = [data[8:12]] + [data[offset : offset + 4] for offset in range(16, size - 3, 4)]
    return any(brand in _HEIC_BRANDS for brand in brands)


def _quiet_open(data: bytes, formats: tuple[str, ...]) -> Image.Image:
    """Image.open without Pillow's warning at half its bomb limit: remixd checks the pixel count itself (a
    100 MP phone photo is fine). Warning filters are process-wide: should this block interleave with another
    thread's, what outlives it is this one "ignore", of this one warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=formats)


def _open(data: bytes, name: str, formats: tuple[str, ...], max_pixels: int) -> Image.Image:
    try:
        image = _quiet_open(data, formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refused before we could see the size; read it from the header alone for a useful message.
        raise _too_many_pixels(name, _header_size(data, formats), max_pixels) from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not an image remixd can read ({_sniff(data)})", SUPPORTED_HINT) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(f"{name} is damaged or incomplete: {error}", _DAMAGED_HINT) from error
    if image.width * image.height > max_pixels:
        raise _too_many_pixels(name, image.size, max_pixels)
    return image


def _too_many_pixels(name: str, size: tuple[int, int] | None, max_pixels: int) -> InputError:
    limit = f"the most remixd accepts is {max_pixels / 1_000_000:.0f} MP"
    if size is None:
        return InputError(f"{name} has too many pixels; {limit}", "downscale it before dropping it in")
    width, height = size
    megapixels = width * height // 1_000_000
    return InputError(f"{name} is {width}x{height} ({megapixels} MP); {limit}", "downscale it before dropping it in")


def _header_size(data: bytes, formats: tuple[str, ...]) -> tuple[int, int] | None:
    """The size the header claims, via the plugin registry (plugins parse headers; only Image.open checks)."""
    Image.init()
    for format_name in formats:
        factory, accept = Image.OPEN.get(format_name, (None, None))
        if factory is None or (accept is not None and accept(data[:16]) is not True):
            continue
        try:
            return factory(io.BytesIO(data), "").size
        except (SyntaxError, OSError, ValueError, IndexError, TypeError):
            continue
    return None


def _safe_stem(path: Path) -> str:
    """A multipart filename every gateway parses: ASCII letters, digits, dot, dash and underscore."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._")
    return stem[:100] or "image"


def _sniff(data: bytes) -> str:
    """Name what the bytes look like, so "not an image" says what it is instead."""
    head = data[:512]
    signatures = (
        (b"%PDF", "it is a PDF document"),
        (b"PK\x03\x04", "it is a ZIP archive or an Office document"),
        (b"\x1f\x8b", "it is gzip-compressed data"),
        (b"8BPS", "it is a Photoshop document; export it as PNG or JPEG"),
        (b"GIF8", "it looks like a GIF but cannot be decoded"),
        (b"\x89PNG", "it looks like a PNG but cannot be decoded"),
        (b"\xff\xd8\xff", "it looks like a JPEG but cannot be decoded"),
    )
    for magic, description in signatures:
        if head.startswith(magic):
            return description
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        return f"it is an ISO media file (brand '{brand}'), e.g. a video"
    if head.startswith(b"RIFF") and head[8:12] != b"WEBP":
        return f"it is a RIFF {head[8:12].decode('ascii', 'replace')} file (audio or video)"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        description = "it is an HTML page, perhaps a failed download"
    elif b"<svg" in stripped[:256]:
        description = "it is an SVG drawing; export it as PNG"
    elif b"\x00" in head:
        description = "unrecognised binary data"
    else:
        try:  # incremental, so a character cut at byte 512 does not count against it
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            description = "it is text"
        except UnicodeDecodeError:
            description = "unrecognised binary data"
    return description
