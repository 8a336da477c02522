"""`outputs:` at the top level, per inbox and per rule: each level sets only what it names."""

from __future__ import annotations

from pathlib import Path

from remixd.config.load import load_config
from tests.unit.config.test_config import MINIMAL, one_problem, problems, write

LAYERED = """\
outputs:
  format: webp
  quality: 70
inboxes:
  - path: ./inbox
    output: ./outbox
    done_dir: ./done
    failed_dir: ./failed
    outputs: {max_side: 1024}
rules:
  - name: poster
    match: ["*.jpg"]
    request: {prompt: "A beach"}
  - name: print
    match: ["*.png"]
    request: {prompt: "A print"}
    outputs: {format: png, embed_metadata: false}
"""


def test_each_level_sets_only_the_keys_it_names(tmp_path: Path) -> None:
    inbox = load_config(write(tmp_path, LAYERED)).inboxes[0]
    poster, printed = inbox.outputs_for("poster"), inbox.outputs_for("print")
    assert (poster.format, poster.quality, poster.max_side, poster.embed_metadata) == ("webp", 70, 1024, True)
    assert (printed.format, printed.quality, printed.max_side, printed.embed_metadata) == ("png", 70, 1024, False)


def test_without_outputs_results_are_written_as_downloaded_with_metadata(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL)).inboxes[0].outputs_for("poster")
    assert (settings.format, settings.embed_metadata, settings.max_side, settings.keep_download) == (
        "original", True, None, False
    )  # fmt: skip


def test_bad_outputs_are_located_at_every_level(tmp_path: Path) -> None:
    text = LAYERED.replace("quality: 70", "quality: 170").replace("{max_side: 1024}", "{max_sid: 1024}")
    text = text.replace("format: png,", "format: gif,")
    found = problems(write(tmp_path, text))
    assert len(found) == 3, found
    assert found[0].startswith(f"{tmp_path / 'config.yaml'}:3: outputs.quality:")
    assert ":9: inboxes[0].outputs.max_sid:" in found[1] and "did you mean 'max_side'" in found[1]
    assert ":17: rules[1].outputs.format:" in found[2]


def test_outputs_must_be_a_mapping(tmp_path: Path) -> None:
    assert "outputs: input should be a valid dictionary" in one_problem(write(tmp_path, "outputs: jpeg\n" + MINIMAL))


def test_an_output_name_that_could_collide_is_refused_at_its_line(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "    failed_dir: ./failed\n", '    failed_dir: ./failed\n    output_name: "{stem}.{rul}.{ext}"\n'
    ).replace('prompt: "A beach, {stem}"', 'prompt: "A beach, {stem}"\n      num_images: 2')
    found = problems(write(tmp_path, text))
    assert [problem.split(": ", 2)[1] for problem in found] == ["inboxes[0].output_name"] * 2
    assert ":6:" in found[0] and "unknown token '{rul}'" in found[0] and "did you mean '{rule}'" in found[0]
    assert "results of one request would all get the same name" in found[1]


def test_output_name_defaults_to_the_names_remixd_always_gave(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).inboxes[0].output_name == "{relparent}/{stem}.{rule}.{n}.{ext}"
