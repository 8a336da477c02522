"""Output name templates are checked when the config is loaded, so a name that could collide costs nothing."""

from __future__ import annotations

import pytest

from remixd import output_name


def messages(template: str, *, several_images: bool = False, several_rules: bool = False) -> list[str]:
    found = output_name.problems(template, several_images=several_images, several_rules=several_rules)
    return [f"{message} — {fix}" for message, fix in found]


def test_the_default_and_a_typical_own_template_are_fine() -> None:
    assert messages(output_name.DEFAULT, several_images=True, several_rules=True) == []
    assert messages("{rule}/{date}/{stem}-{seed}-{n}.{ext}", several_images=True, several_rules=True) == []


@pytest.mark.parametrize(
    ("template", "options", "expected"),
    [
        ("{stem}.{rul}.{n}.{ext}", {}, "unknown token '{rul}' — did you mean '{rule}'?"),
        ("{stem}.{n:02d}.{ext}", {}, "'{n}' has a format or conversion"),
        ("{stem}.{n}.png", {}, "the name must end with .{ext}"),
        ("{stem}.{ext}.{ext}", {}, "the name must end with .{ext}, once"),
        ("../{stem}.{n}.{ext}", {}, "climbs out of the output folder"),
        ("/srv/{stem}.{n}.{ext}", {}, "climbs out of the output folder"),
        ("{stem}.{rule}.{ext}", {"several_images": True}, "results of one request would all get the same name"),
        ("{stem}.{n}.{ext}", {"several_rules": True}, "results of two rules for one input would get the same"),
        ("{stem.{ext}", {}, "the name template is malformed"),
    ],
)
def test_problems_are_found_before_anything_is_paid(template: str, options: dict[str, bool], expected: str) -> None:
    found = messages(template, **options)
    assert len(found) == 1 and expected in found[0], found


def test_one_image_per_rule_and_one_rule_per_input_need_neither_n_nor_rule() -> None:
    assert messages("{relparent}/{stem}.{ext}") == []
