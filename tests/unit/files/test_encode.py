"""Output formats: converted with Pillow after the download, or kept byte for byte when nothing is asked."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from remixd.files.encode import encode
from tests.helpers import image_bytes


def test_original_at_its_size_is_the_download_itself() -> None:
    data = image_bytes((64, 48), fmt="PNG")
    encoded = encode(data, "original", 90, max_side=64)
    assert (encoded.data, encoded.extension, encoded.steps) == (data, "png", ())


@pytest.mark.parametrize(("asked", "extension", "pillow"), [("jpeg", "jpg", "JPEG"), ("webp", "webp", "WEBP")])
def test_a_png_becomes_the_asked_format_at_the_asked_quality(asked: str, extension: str, pillow: str) -> None:
    data = image_bytes((64, 48), fmt="PNG")
    low, high = encode(data, asked, 10, None), encode(data, asked, 95, None)  # type: ignore[arg-type]
    assert (high.extension, high.steps) == (extension, (f"png -> {asked} quality 95",))
    assert len(low.data) < len(high.data)
    with Image.open(io.BytesIO(high.data)) as image:
        assert (image.format, image.size) == (pillow, (64, 48))


def test_max_side_shrinks_the_longer_side_and_keeps_the_shape() -> None:
    encoded = encode(image_bytes((400, 100), fmt="PNG"), "original", 90, max_side=100)
    assert (encoded.extension, encoded.width, encoded.height) == ("png", 100, 25)
    assert encoded.steps == ("resized 400x100 -> 100x25",)
    with Image.open(io.BytesIO(encoded.data)) as image:
        assert image.size == (100, 25)


def test_transparency_becomes_white_in_a_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(buffer, format="PNG")
    encoded = encode(buffer.getvalue(), "jpeg", 95, None)
    with Image.open(io.BytesIO(encoded.data)) as image:
        assert image.mode == "RGB"
        red, green, blue = image.convert("RGB").getpixel((4, 4))  # type: ignore[misc]
        assert min(red, green, blue) > 245


def test_a_download_that_does_not_decode_raises_oserror() -> None:
    with pytest.raises(OSError, match="cannot identify"):
        encode(b"not an image", "jpeg", 90, None)
