"""A companion's request fields pass the config's own checks for the rule's route, located in its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixd.config.companion import overridden
from remixd.errors import InputError
from remixd.ideogram.requests import RemixRequest

V3 = RemixRequest.model_validate({"prompt": "a {stem}", "model": "V_3", "rendering_speed": "TURBO"})


def test_fields_go_on_top_of_the_rule_and_json_works_too(tmp_path: Path) -> None:
    request = overridden(V3, tmp_path / "a.json", '{"seed": 5, "num_images": 2}')
    assert (request.seed, request.num_images, request.prompt, request.model) == (5, 2, "a {stem}", "V_3")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("seed: 1\nseeds: 2\n", ":2: seeds: unknown key 'seeds'"),
        ("seed: 1\naspect_ratio: 7x1\n", ":2: aspect_ratio: '7x1' is not an aspect ratio of model V_3"),
        ("prompt: 'a {colour} mug'\n", ":1: prompt: unknown placeholder '{colour}'"),
        ("- seed: 1\n", ":1: a companion holds request fields"),
        ("seed: [1\n", "YAML syntax error"),
        ("seed: \ufffd\n", "is not UTF-8 text"),
    ],
)
def test_a_bad_companion_is_refused_with_its_file_line_key_and_fix(tmp_path: Path, text: str, found: str) -> None:
    path = tmp_path / "mug.yaml"
    with pytest.raises(InputError) as raised:
        overridden(V3, path, text)
    assert str(path) in raised.value.message and found in raised.value.message
    assert raised.value.hint and raised.value.hint not in raised.value.message  # the fix, said once
