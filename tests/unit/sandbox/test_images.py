"""The sandbox's pictures: the stamp marks them as fake without hiding what the settings did to the input."""

from __future__ import annotations

import io

from PIL import Image, ImageStat

from remixd.sandbox import images


def half_white_half_black(size: tuple[int, int]) -> Image.Image:
    source = Image.new("RGB", size, (0, 0, 0))
    source.paste((255, 255, 255), (0, 0, size[0] // 2, size[1]))
    return source


def brightness(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    return float(ImageStat.Stat(image.crop(box).convert("L")).mean[0])


def test_the_stamp_is_a_thin_strip_the_picture_shows_through() -> None:
    png = images.render(
        half_white_half_black((1024, 1024)),
        width=1024,
        height=1024,
        seed=7,
        image_weight=100,
        scale=1.0,
        label="S",  # short: the boxes below stay clear of the text
    )
    result = Image.open(io.BytesIO(png)).convert("RGB")
    assert result.size == (1024, 1024)
    strip = 1024 // 16  # the strip may take at most a sixteenth of the height
    above = (10, 1024 - 3 * strip, 500, 1024 - 2 * strip)  # the picture, untouched
    # in the strip, right of the label's text: the white half still reads white-ish, the black half black
    white_in_strip = (400, 1024 - strip + 2, 500, 1024 - 4)
    black_in_strip = (600, 1024 - strip + 2, 1010, 1024 - 4)
    assert brightness(result, white_in_strip) > 0.4 * brightness(result, above)
    assert brightness(result, white_in_strip) > brightness(result, black_in_strip) + 60
