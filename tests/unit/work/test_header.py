"""`{caption}` from the image's own metadata, written with exiftool the way photographers' tools write it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from remixd.work.header import read_caption
from tests.helpers import make_image


def _tag(path: Path, *assignments: str) -> Path:
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-charset", "iptc=UTF8", *assignments, str(path)],
        check=True,
        timeout=30,
    )
    return path


@pytest.mark.parametrize(
    ("name", "assignments", "expected"),
    [
        ("xmp.jpg", ["-XMP-dc:Description=Red mug & café"], "Red mug & café"),
        ("iptc.jpg", ["-IPTC:Caption-Abstract=Blue lamp"], "Blue lamp"),
        ("exif.jpg", ["-EXIF:ImageDescription=Green chair"], "Green chair"),
        ("xmp.png", ["-XMP-dc:Description=A <b>bold</b> plant"], "A <b>bold</b> plant"),
        ("xmp.webp", ["-XMP-dc:Description=Shelf"], "Shelf"),
        (
            "all.jpg",
            ["-XMP-dc:Description=from XMP", "-IPTC:Caption-Abstract=from IPTC", "-EXIF:ImageDescription=from EXIF"],
            "from XMP",
        ),
        ("two.jpg", ["-IPTC:Caption-Abstract=from IPTC", "-EXIF:ImageDescription=from EXIF"], "from IPTC"),
    ],
)
def test_the_caption_is_found_in_the_order_tools_write_it(
    tmp_path: Path, name: str, assignments: list[str], expected: str
) -> None:
    assert read_caption(_tag(make_image(tmp_path / name), *assignments)) == expected


def test_no_caption_and_no_image_read_as_empty(tmp_path: Path) -> None:
    assert read_caption(make_image(tmp_path / "plain.jpg")) == ""
    (tmp_path / "not.jpg").write_text("not an image")
    assert read_caption(tmp_path / "not.jpg") == ""
