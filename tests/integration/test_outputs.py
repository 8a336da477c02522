"""What a result file carries and how it is written, through the whole pipeline against the sandbox."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

from remixd.daemon.service import Service
from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, exiftool, make_image, make_service, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def _run_once(config: Path) -> Service:
    service = make_service(config, "once", ENV)
    service.run()
    return service


def test_every_result_says_what_made_it_and_the_sidecar_hashes_the_file_as_written(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    source = make_image(tmp_path / "inbox/beach.jpg")
    source_sha256 = hashlib.sha256(source.read_bytes()).hexdigest()

    assert _run_once(config).outcomes["done"] == 1

    image = tmp_path / "outbox/beach.poster.1.png"
    document = json.loads((tmp_path / "outbox/beach.poster.1.json").read_text())
    assert document["image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert document["image"]["bytes"] == image.stat().st_size
    assert document["output"] == {"format": "png", "steps": [], "metadata_embedded": True}
    tags = exiftool(image)
    assert "ExifTool:Warning" not in tags
    assert tags["XMP-dc:Description"] == document["result"]["prompt"]
    assert tags["XMP-remixd:SourceSHA256"] == source_sha256
    assert (tags["XMP-remixd:Rule"], tags["XMP-remixd:Model"]) == ("poster", "V_2")
    assert tags["XMP-remixd:Seed"] == document["result"]["seed"]
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("trainedAlgorithmicMedia")
    embedded = json.loads(tags["PNG:Remixd"])
    # The copy inside leaves out only what cannot be known inside the file: the file's own name, hash, size
    # and when it was written.
    assert "image" not in embedded and "completed_at" not in embedded["timings"]
    assert embedded["api"] == document["api"] and embedded["source"] == document["source"]


def test_a_rule_asks_for_smaller_jpegs_and_keeps_the_download(tmp_path: Path, sandbox: SandboxServer) -> None:
    square = {
        **POSTER,
        "name": "square",
        "request": {**POSTER["request"], "aspect_ratio": "ASPECT_1_1"},
        "outputs": {"format": "jpeg", "quality": 80, "max_side": 128, "keep_download": True},
    }
    config = write_config(tmp_path, sandbox.base_url, rules=[square], extra={"outputs": {"quality": 50}})
    make_image(tmp_path / "inbox/shop item.png", size=(80, 80))

    assert _run_once(config).outcomes["done"] == 1

    outbox = tmp_path / "outbox"
    image, kept = outbox / "shop item.square.1.jpg", outbox / "shop item.square.1.download.png"
    assert sorted(path.name for path in outbox.iterdir()) == sorted([image.name, kept.name, "shop item.square.1.json"])
    document = json.loads((outbox / "shop item.square.1.json").read_text())
    with Image.open(image) as written, Image.open(kept) as downloaded:
        assert written.format == "JPEG" and max(written.size) == 128
        assert downloaded.format == "PNG" and max(downloaded.size) > 128
        steps = [f"resized {downloaded.width}x{downloaded.height} -> 128x128", "png -> jpeg quality 80"]
    assert document["output"]["steps"] == steps
    assert document["output"]["download"]["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    assert document["image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert (document["image"]["width"], document["image"]["height"]) == (128, 128)
    tags = exiftool(image)
    assert tags["XMP-remixd:Rule"] == "square" and tags["XMP-dc:Description"] == document["result"]["prompt"]


def test_embed_metadata_off_writes_the_download_as_it_came(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"outputs": {"embed_metadata": False}})
    make_image(tmp_path / "inbox/plain.jpg")

    assert _run_once(config).outcomes["done"] == 1

    tags = exiftool(tmp_path / "outbox/plain.poster.1.png")
    assert not [name for name in tags if name.startswith("XMP")]
    assert json.loads((tmp_path / "outbox/plain.poster.1.json").read_text())["output"]["metadata_embedded"] is False


def test_an_output_name_template_places_results_and_their_sidecars(tmp_path: Path, sandbox: SandboxServer) -> None:
    poster = {**POSTER, "request": {**POSTER["request"], "num_images": 2}}
    config = write_config(
        tmp_path,
        sandbox.base_url,
        rules=[poster],
        inbox={"recursive": True, "output_name": "{rule}/{date}/{relparent}/{stem}-{seed}-{n}.{ext}"},
    )
    make_image(tmp_path / "inbox/shop/mug.jpg")

    assert _run_once(config).outcomes["done"] == 1

    written = sorted(path.relative_to(tmp_path / "outbox").as_posix() for path in (tmp_path / "outbox").rglob("*.*"))
    documents = [json.loads((tmp_path / "outbox" / name).read_text()) for name in written if name.endswith(".json")]
    day = documents[0]["timings"]["submitted_at"][:10]
    expected = []
    for document in documents:
        stem = f"poster/{day}/shop/mug-{document['result']['seed']}-{document['result']['index']}"
        expected += [f"{stem}.json", f"{stem}.png"]
        assert document["image"]["file"] == f"{stem.rsplit('/', 1)[1]}.png"
    assert written == sorted(expected) and len(written) == 4
