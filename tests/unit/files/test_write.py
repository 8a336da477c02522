"""One job's results as they are written: encoded as `outputs` asks, named, each image with its sidecar last."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from remixd.errors import OutputError
from remixd.files import embed
from remixd.files.atomic import sha256_hex
from remixd.files.sidecar import Source
from remixd.files.write import encode_result, write_results
from remixd.output_name import DEFAULT
from tests.helpers import SHA

STORY = embed.Story(prompt="p", source_sha256=SHA, rule="poster", model="V_2", seed=7, created="2026-03-01T12:00:00")


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def document() -> dict[str, Any]:
    return {"schema": "remixd.result/1", "timings": {"completed_at": "later"}}


def encoded(download: bytes, output_format: Any = "jpeg", **settings: Any) -> Any:
    options = {"quality": 90, "max_side": None, "embed_metadata": False, **settings}
    return encode_result(download, document(), STORY, output_format=output_format, **options)


def test_a_download_that_cannot_be_encoded_is_refused_with_the_way_out() -> None:
    with pytest.raises(OutputError) as refused:
        encoded(b"not an image")
    assert refused.value.message.startswith("cannot write the result as jpeg:")
    assert "outputs.format: original" in refused.value.hint


def test_the_result_as_written_is_described_and_the_download_kept_beside_it(tmp_path: Path) -> None:
    download = png()
    final = encoded(download)
    sidecar: dict[str, Any] = {**document(), "output": {}}
    (place,) = write_results(
        tmp_path,
        Source("/srv/inbox", "sub/a.jpg", SHA, 123),
        rule="poster",
        fingerprint="f1",
        finals=[final],
        documents=[sidecar],
        template=DEFAULT,
        values=[{"relparent": "sub", "rule": "poster"}],
        reroll=None,
        keep_download=True,
    )
    assert place.image == tmp_path / "sub/a.poster.1.jpg" and place.image.read_bytes() == final.encoded.data
    written = json.loads(place.sidecar.read_text())
    assert written["image"]["sha256"] == sha256_hex(final.encoded.data) == final.sha256
    kept = tmp_path / "sub" / written["output"]["download"]["file"]
    assert kept.name == "a.poster.1.download.png" and kept.read_bytes() == download
