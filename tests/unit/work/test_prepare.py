"""prepare(): real files written with Pillow into tmp_path, one per situation a watched folder meets."""

# tests compare with literal sizes; random.Random(7) makes reproducible pixel noise

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from remixd.errors import InputError
from remixd.work.prepare import PreparedImage, prepare


def _photo(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A noisy image: flat colours compress to nothing and would make size tests meaningless."""
    rng = random.Random(7)
    pixels = bytes(rng.randrange(256) for _ in range(size[0] * size[1] * len(mode)))
    return Image.frombytes(mode, size, pixels)


def _save(image: Image.Image, path: Path, image_format: str, **options: object) -> Path:
    image.save(path, format=image_format, **options)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand: Pillow cannot write 16-bit RGB, and a bomb header needs an arbitrary size."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _decode(prepared: PreparedImage) -> Image.Image:
    image = Image.open(io.BytesIO(prepared.data))
    image.load()
    return image


# --- refusals -------------------------------------------------------------------------------------


def test_zero_byte_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError) as caught:
        prepare(path)
    assert "empty.jpg is empty (0 bytes)" in caught.value.message
    assert "copy" in caught.value.hint


def test_text_named_jpg_is_refused_and_named_as_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: eggs, milk\n")
    with pytest.raises(InputError) as caught:
        prepare(path)
    assert "notes.jpg is not an image" in caught.value.message
    assert "text" in caught.value.message
    assert "JPEG, PNG and WebP" in caught.value.hint


@pytest.mark.parametrize(
    ("content", "described"),
    [
        (b"%PDF-1.7\n%binary", "PDF document"),
        (b"<!DOCTYPE html><html><body>403 Forbidden</body></html>", "HTML page"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "ISO media file (brand 'mp42')"),
    ],
)
def test_not_an_image_names_the_detected_type(tmp_path: Path, content: bytes, described: str) -> None:
    path = tmp_path / "thing.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not an image") as caught:
        prepare(path)
    assert described in caught.value.message


def test_heic_without_pillow_heif_says_how_to_get_it(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    try:
        import pillow_heif  # type: ignore[import-not-found, unused-ignore]  # noqa: F401  # typed where installed
    except ImportError:
        pass
    else:
        pytest.skip("pillow-heif is installed here")
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    with pytest.raises(InputError, match="HEIC needs pillow-heif") as caught:
        prepare(path)
    assert "pip install pillow-heif" in caught.value.hint


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    whole = _save(_photo((200, 150)), tmp_path / "whole.jpg", "JPEG", quality=90).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="damaged or incomplete"):
        prepare(path)


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    whole = _save(_photo((200, 150)), tmp_path / "whole.png", "PNG").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(whole[: len(whole) - 200])
    with pytest.raises(InputError, match="damaged or incomplete"):
        prepare(path)


def test_png_claiming_50000_by_50000_is_refused_before_decoding(tmp_path: Path) -> None:
    data = bytearray(_raw_png(1, 1, 8, 2, [b"\x00\x00\x00"]))
    # patch IHDR width/height (bytes 16..24) and its CRC (bytes 29..33) so the header is valid but huge
    data[16:24] = struct.pack(">II", 50_000, 50_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        prepare(path)
    assert "bomb.png is 50000x50000 (2500 MP); the most remixd accepts is 179 MP" in caught.value.message


def test_image_just_over_the_pixel_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (300, 200)), tmp_path / "wide.png", "PNG")
    with pytest.raises(InputError, match=r"wide.png is 300x200 \(0 MP\)"):
        prepare(path, max_pixels=50_000)


# --- sent as they are -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "suffix", "content_type"),
    [("JPEG", ".jpg", "image/jpeg"), ("PNG", ".png", "image/png"), ("WEBP", ".webp", "image/webp")],
)
def test_accepted_formats_pass_through_byte_identical(
    tmp_path: Path, image_format: str, suffix: str, content_type: str
) -> None:
    path = _save(_photo(), tmp_path / f"holiday photo{suffix}", image_format)
    original = path.read_bytes()
    prepared = prepare(path)
    assert prepared.data == original
    assert prepared.conversion is None
    assert prepared.content_type == content_type
    assert prepared.filename == f"holiday_photo{suffix}"
    assert prepared.source_sha256 == hashlib.sha256(original).hexdigest()
    assert prepared.source_bytes == len(original)
    assert (prepared.width, prepared.height) == (64, 48)


def test_misnamed_png_keeps_its_bytes_and_gets_the_right_extension(tmp_path: Path) -> None:
    path = _save(_photo(), tmp_path / "actually.jpg", "PNG")
    prepared = prepare(path)
    assert prepared.data == path.read_bytes()
    assert (prepared.filename, prepared.content_type) == ("actually.png", "image/png")


# --- conversions ----------------------------------------------------------------------------------


def test_exif_orientation_6_is_applied_and_stays_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(_photo((80, 40)), tmp_path / "phone.jpg", "JPEG", exif=exif, quality=90)
    prepared = prepare(path)
    sent = _decode(prepared)
    assert (prepared.width, prepared.height) == (40, 80)
    assert sent.size == (40, 80)
    assert sent.format == "JPEG"
    assert sent.getexif().get(0x0112, 1) == 1  # no orientation left for the API to apply twice
    assert prepared.conversion == "exif-rotated (orientation 6)"
    assert prepared.filename == "phone.jpg"


def test_exif_rotated_png_stays_png(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = _save(_photo((80, 40)), tmp_path / "scan.png", "PNG", exif=exif)
    prepared = prepare(path)
    assert (prepared.content_type, _decode(prepared).size) == ("image/png", (40, 80))


def test_cmyk_jpeg_becomes_rgb_jpeg(tmp_path: Path) -> None:
    path = _save(_photo(mode="CMYK"), tmp_path / "print.jpg", "JPEG")
    prepared = prepare(path)
    sent = _decode(prepared)
    assert (sent.format, sent.mode) == ("JPEG", "RGB")
    assert prepared.conversion == "cmyk->rgb"


def test_sixteen_bit_grey_png_is_scaled_to_eight_bits_not_clamped(tmp_path: Path) -> None:
    path = _save(Image.new("I;16", (8, 8), 40_000), tmp_path / "scan16.png", "PNG")
    prepared = prepare(path)
    sent = _decode(prepared)
    assert prepared.data[24] == 8  # IHDR bit depth
    assert sent.getpixel((0, 0)) == 40_000 // 256  # 156; a plain convert would give 255
    assert prepared.conversion == "16-bit->8-bit"


def test_sixteen_bit_rgb_png_becomes_eight_bit(tmp_path: Path) -> None:
    row = struct.pack(">6H", 65535, 0, 0, 0, 65535, 0)  # red, green at 16 bits per channel
    path = tmp_path / "deep.png"
    path.write_bytes(_raw_png(2, 1, 16, 2, [row]))
    prepared = prepare(path)
    sent = _decode(prepared)
    assert prepared.data[24] == 8
    assert sent.getpixel((0, 0)) == (255, 0, 0)
    assert prepared.conversion == "16-bit->8-bit"


def test_animated_gif_sends_its_first_frame_as_png(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "loop.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = prepare(path)
    sent = _decode(prepared)
    assert (prepared.filename, prepared.content_type) == ("loop.png", "image/png")
    assert getattr(sent, "n_frames", 1) == 1
    assert sent.convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert prepared.conversion == "gif with 3 frames: first frame only; gif->png"


def test_animated_webp_sends_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "loop.webp"
    frames[0].save(path, format="WEBP", save_all=True, append_images=frames[1:], lossless=True)
    prepared = prepare(path)
    sent = _decode(prepared)
    assert prepared.content_type == "image/webp"
    assert getattr(sent, "n_frames", 1) == 1
    assert prepared.conversion == "webp with 2 frames: first frame only"


@pytest.mark.parametrize(
    ("image_format", "suffix", "make"),
    [
        ("GIF", ".gif", lambda: _photo().convert("P")),
        ("BMP", ".bmp", _photo),
        ("TIFF", ".tif", _photo),
        ("AVIF", ".avif", _photo),
    ],
)
def test_other_formats_become_png(
    tmp_path: Path, image_format: str, suffix: str, make: Callable[[], Image.Image]
) -> None:
    if image_format not in Image.registered_extensions().values():
        pytest.skip(f"Pillow here cannot write {image_format}")
    path = _save(make(), tmp_path / f"old{suffix}", image_format)
    prepared = prepare(path)
    sent = _decode(prepared)
    assert (sent.format, prepared.content_type, prepared.filename) == ("PNG", "image/png", "old.png")
    assert sent.size == (64, 48)
    assert prepared.conversion == f"{image_format.lower()}->png"
    assert prepared.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_oversized_photo_is_reencoded_as_jpeg_under_the_cap(tmp_path: Path) -> None:
    path = _save(_photo((300, 300)), tmp_path / "big.png", "PNG")
    assert path.stat().st_size > 200_000
    prepared = prepare(path, max_upload_bytes=150_000)
    assert len(prepared.data) <= 150_000
    assert (prepared.content_type, prepared.filename) == ("image/jpeg", "big.jpg")
    assert _decode(prepared).size == (300, 300)
    assert prepared.conversion is not None
    assert prepared.conversion.startswith("over 0.1 MiB: jpeg q=")


def test_oversized_photo_is_downscaled_when_quality_alone_is_not_enough(tmp_path: Path) -> None:
    path = _save(_photo((600, 500)), tmp_path / "huge.png", "PNG")
    prepared = prepare(path, max_upload_bytes=60_000)
    sent = _decode(prepared)
    assert len(prepared.data) <= 60_000
    assert sent.width < 600
    assert abs(sent.width / sent.height - 600 / 500) < 0.01
    assert prepared.conversion is not None
    assert "downscaled 600x500->" in prepared.conversion


def test_oversized_image_that_cannot_fit_is_refused(tmp_path: Path) -> None:
    path = _save(_photo((300, 300)), tmp_path / "noise.png", "PNG")
    with pytest.raises(InputError, match="does not fit in"):
        prepare(path, max_upload_bytes=1_000)


def test_transparent_image_over_the_cap_is_flattened_onto_white(tmp_path: Path) -> None:
    image = _photo((300, 300)).convert("RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    path = _save(image, tmp_path / "cutout.png", "PNG")
    prepared = prepare(path, max_upload_bytes=200_000)
    assert prepared.content_type == "image/jpeg"
    assert prepared.conversion is not None
    assert "transparency flattened onto white" in prepared.conversion
    red, green, blue = _decode(prepared).getpixel((0, 0))  # type: ignore[misc]
    assert min(red, green, blue) > 200
