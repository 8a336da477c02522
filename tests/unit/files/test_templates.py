"""Output name templates rendered inside the output folder, never overwriting (their checks: remixd.output_name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remixd.errors import OutputError
from remixd.files.names import result_paths
from remixd.files.sidecar import Source
from remixd.output_name import DEFAULT
from tests.helpers import SHA

OTHER_SHA = "fedcba9876543210" * 4


def source(relpath: str = "sub/a.jpg", digest: str = SHA) -> Source:
    return Source(inbox="/srv/inbox", relpath=relpath, sha256=digest, bytes=123)


def test_the_default_gives_the_names_remixd_always_gave(tmp_path: Path) -> None:
    paths = result_paths(tmp_path, source(), "poster", "f1", extensions=["png", "jpg"], template=DEFAULT)
    assert [(p.image, p.sidecar) for p in paths] == [
        (tmp_path / "sub/a.poster.1.png", tmp_path / "sub/a.poster.1.json"),
        (tmp_path / "sub/a.poster.2.jpg", tmp_path / "sub/a.poster.2.json"),
    ]


def test_tokens_fill_folders_and_names(tmp_path: Path) -> None:
    values = [
        {"seed": "42", "date": "2025-03-01", "model": "V_3"},
        {"seed": "43", "date": "2025-03-01", "model": "V_3"},
    ]
    paths = result_paths(
        tmp_path,
        source(),
        "poster",
        "f1",
        extensions=["png", None],
        template="{rule}/{date}/{relparent}/{stem}-{model}-{seed}-{n}of{count}.{ext}",
        values=values,
    )
    assert [(p.image, p.sidecar) for p in paths] == [
        (tmp_path / "poster/2025-03-01/sub/a-V_3-42-1of2.png", tmp_path / "poster/2025-03-01/sub/a-V_3-42-1of2.json"),
        (None, tmp_path / "poster/2025-03-01/sub/a-V_3-43-2of2.json"),
    ]


def _take(paths: list, digest: str) -> None:  # type: ignore[type-arg]
    for place in paths:
        place.image.parent.mkdir(parents=True, exist_ok=True)
        place.image.write_bytes(b"image")
        document = {"source": {"inbox": "/srv/inbox", "relpath": "x", "sha256": digest}, "rule": {"fingerprint": "f"}}
        place.sidecar.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("template", "first", "second"),
    [
        ("{stem}.{ext}", "a.png", f"a-{OTHER_SHA[:8]}.png"),  # the tag follows {stem}
        ("{rule}.{ext}", "poster.png", f"poster-{OTHER_SHA[:8]}.png"),  # without {stem}: before the extension
        ("{stem}/{n}.{ext}", "a/1.png", f"a-{OTHER_SHA[:8]}/1.png"),  # {stem} as a folder
    ],
)
def test_two_inputs_whose_names_collide_never_overwrite(tmp_path: Path, template: str, first: str, second: str) -> None:
    [taken] = result_paths(tmp_path, source("a.jpg"), "poster", "f", extensions=["png"], template=template)
    assert taken.image == tmp_path / first
    _take([taken], SHA)
    [other] = result_paths(tmp_path, source("a.png", OTHER_SHA), "poster", "f", extensions=["png"], template=template)
    assert other.image == tmp_path / second
    assert taken.image.read_bytes() == b"image"


def test_a_name_that_would_climb_out_is_refused_when_rendered(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="not a path inside the output folder"):
        result_paths(tmp_path, source("...jpg"), "poster", "f", extensions=["png"], template="{stem}/{n}.{ext}")
