"""Big phone photos: up to Pillow's decompression-bomb limit they are downscaled and sent, beyond it refused.

The images are solid colour, written by hand as PNG rows of zeros or as Pillow JPEGs of one colour: cheap to
make and to compress whatever their pixel count.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from remixd.errors import InputError
from remixd.work.prepare import MAX_PIXELS, UPLOAD_MAX_PIXELS, prepare


def solid_png(path: Path, width: int, height: int) -> Path:
    """A grey PNG of width x height, compressed row by row so that no 150 MB buffer is ever built."""
    compressor, row = zlib.compressobj(1), b"\x00" + b"\x80" * width
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_the_limit_is_pillows_own() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None  # None would switch Pillow's check off
    assert MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS  # about 179 MP; Pillow refuses beyond it anyway


def test_a_150_mp_photo_is_downscaled_before_upload(tmp_path: Path) -> None:
    prepared = prepare(solid_png(tmp_path / "pano.png", 15_000, 10_000))
    assert prepared.width * prepared.height <= UPLOAD_MAX_PIXELS
    assert (prepared.width, prepared.height) == (7_500, 5_000)
    assert prepared.conversion == "over 64 MP: downscaled 15000x10000->7500x5000"
    sent = Image.open(io.BytesIO(prepared.data))
    assert sent.size == (7_500, 5_000)


def test_a_big_jpeg_is_decoded_scaled_down(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (12_000, 8_000), (30, 90, 160)).save(path, quality=50)  # 96 MP, over Pillow's warning
    prepared = prepare(path)
    assert (prepared.width, prepared.height) == (6_000, 4_000)
    assert prepared.conversion == "over 64 MP: downscaled 12000x8000->6000x4000"


def test_only_a_file_beyond_pillows_limit_is_refused(tmp_path: Path) -> None:
    path = solid_png(tmp_path / "huge.png", 17_000, 10_600)  # 180.2 MP
    with pytest.raises(InputError) as caught:
        prepare(path)
    assert caught.value.message == "huge.png is 17000x10600 (180 MP); the most remixd accepts is 179 MP"
