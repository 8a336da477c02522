"""Metadata inside a result, read back by exiftool (the tool people use), not only by the code that wrote it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from remixd.files import embed
from tests.helpers import exiftool

STORY = embed.Story(
    prompt='A "beach" <at> dusk & café\x07',  # XML's special characters, a non-ASCII one and one XML cannot hold
    source_sha256="ab" * 32,
    rule="poster",
    model="V_2",
    seed=12345,
    created="2024-08-27T15:40:31.101790+00:00",
)
SIDECAR = {"schema": "remixd.result/1", "rule": {"name": "poster"}, "note": "café"}


def _image(fmt: str, mode: str = "RGB", **options: object) -> tuple[bytes, Image.Image]:
    image = Image.new(mode, (40, 30), (200, 80, 40, 128)[: len(mode)])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue(), image


@pytest.mark.parametrize(
    ("fmt", "extension", "mode", "options"),
    [
        ("PNG", "png", "RGB", {}),
        ("JPEG", "jpg", "RGB", {"quality": 95}),
        ("WEBP", "webp", "RGB", {"quality": 95}),  # a simple (VP8) WebP becomes an extended one
        ("WEBP", "webp", "RGBA", {"lossless": True}),  # VP8L with alpha: the alpha flag must survive
    ],
)
def test_exiftool_reads_the_story_and_the_pixels_are_untouched(
    tmp_path: Path, fmt: str, extension: str, mode: str, options: dict[str, object]
) -> None:
    data, _ = _image(fmt, mode, **options)
    path = tmp_path / f"result.{extension}"
    path.write_bytes(embed.embed(data, extension, STORY, SIDECAR))

    tags = exiftool(path)

    assert "ExifTool:Warning" not in tags, tags.get("ExifTool:Warning")
    assert tags["XMP-dc:Description"] == 'A "beach" <at> dusk & café'
    assert tags["XMP-xmp:CreatorTool"].startswith("remixd ")
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("/digitalsourcetype/trainedAlgorithmicMedia")
    assert tags["XMP-remixd:SourceSHA256"] == "ab" * 32
    assert (tags["XMP-remixd:Rule"], tags["XMP-remixd:Model"], tags["XMP-remixd:Seed"]) == ("poster", "V_2", 12345)
    with Image.open(io.BytesIO(data)) as before, Image.open(path) as after:
        assert after.mode == before.mode and after.size == before.size
        assert after.tobytes() == before.tobytes()


def test_a_png_carries_the_sidecar_as_compact_json(tmp_path: Path) -> None:
    data, _ = _image("PNG")
    path = tmp_path / "result.png"
    path.write_bytes(embed.embed(data, "png", STORY, SIDECAR))

    assert json.loads(exiftool(path)["PNG:Remixd"]) == SIDECAR
    with Image.open(path) as image:  # Pillow reads the same chunk
        assert json.loads(str(image.info["remixd"])) == SIDECAR


@pytest.mark.parametrize(("fmt", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_embedding_again_replaces_the_packet_instead_of_adding_a_second(
    tmp_path: Path, fmt: str, extension: str
) -> None:
    data, _ = _image(fmt)
    first = embed.embed(data, extension, STORY, SIDECAR)
    second = embed.embed(first, extension, embed.Story(**{**STORY.__dict__, "rule": "square"}), SIDECAR)
    path = tmp_path / f"again.{extension}"
    path.write_bytes(second)

    tags = exiftool(path)

    assert tags["XMP-remixd:Rule"] == "square"
    assert second.count(b"<x:xmpmeta") == 1
    assert len(second) == len(first) + len("square") - len("poster")


@pytest.mark.parametrize("extension", ["png", "jpg", "webp"])
def test_a_file_that_is_not_that_format_is_refused(extension: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        embed.embed(b"<html>an error page</html>", extension, STORY, SIDECAR)


def test_a_cut_png_is_refused() -> None:
    data, _ = _image("PNG")
    with pytest.raises(ValueError, match="cut short"):
        embed.embed(data[:40], "png", STORY, SIDECAR)
