"""`remixd check` messages fix what they name: each says what YAML read, where it belongs, and what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixd.config.load import load_config
from tests.unit.config.test_config import MINIMAL, one_problem, problems, write

RULE_FIELD = MINIMAL.replace('    match: ["*.jpg"]\n', '    match: ["*.jpg"]\n    seed: 7\n')


def test_a_request_field_written_under_the_rule_is_sent_under_request(tmp_path: Path) -> None:
    path = write(tmp_path, RULE_FIELD)
    assert one_problem(path) == (
        f"{path}:9: rules[0].seed: unknown key 'seed' — move it under `request:` "
        "(Ideogram's fields go in the rule's request, e.g. request: {seed: …})"
    )


def test_match_under_an_inbox_points_at_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path, MINIMAL.replace("    failed_dir: ./failed\n", '    failed_dir: ./failed\n    match: ["*.png"]\n')
    )
    found = one_problem(path)
    assert found.startswith(f"{path}:6: inboxes[0].match: unknown key 'match' — globs belong to a rule")
    assert "this inbox's rules:" in found


@pytest.mark.parametrize(("written", "model", "sent"), [("4:3", "V_2", "ASPECT_4_3"), ("16:9", "V_3", "16x9")])
def test_a_colon_aspect_ratio_is_the_ratio_not_a_base_60_number(
    tmp_path: Path, written: str, model: str, sent: str
) -> None:
    config = load_config(write(tmp_path, MINIMAL + f"      model: {model}\n      aspect_ratio: {written}\n"))
    assert config.rules[0].request.aspect_ratio == sent


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("rendering_speed", "turbo", "did you mean 'TURBO'?"),
        ("style_preset", "watercolor", "did you mean 'WATERCOLOR'?"),
        ("magic_prompt", "auto", "did you mean 'AUTO'?"),
    ],
)
def test_a_lower_case_enum_value_gets_its_spelling(tmp_path: Path, field: str, value: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL + f"      model: V_3\n      {field}: {value}\n")
    assert f"'{value}' is not a" in one_problem(path)
    assert f" — {expected} use one of" in one_problem(path)


def test_an_unquoted_brace_prompt_says_to_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('prompt: "A beach, {stem}"', "prompt: {stem}"))
    assert one_problem(path) == (
        f"{path}:10: rules[0].request.prompt: a value starting with {{ must be quoted: YAML read it as a mapping"
        ' — write it in quotes, e.g. prompt: "{stem} on a beach"'
    )
    path = write(tmp_path, MINIMAL.replace('prompt: "A beach, {stem}"', "prompt: {stem} on a beach"))
    found = one_problem(path)
    assert found.startswith(f"{path}:10: YAML syntax error")
    assert found.endswith(' — a value starting with { must be quoted: write prompt: "{stem} …" with the quotes')


def test_a_tab_says_yaml_does_not_allow_tabs(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    failed_dir:", "\tfailed_dir:"))
    assert one_problem(path).endswith(" — YAML does not allow tabs; indent with spaces")


@pytest.mark.parametrize("written", ["OFF", "On", "yes"])
def test_an_unquoted_on_off_is_shown_as_written_with_the_quotes_to_add(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, MINIMAL + f"      magic_prompt_option: {written}\n")
    found = one_problem(path)
    assert f"YAML reads an unquoted {written} as the boolean" in found
    assert found.endswith(f" — write it in quotes: '{written}'")


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("api:\n  max_in_flight_images: 0\n", "write a number at least 1"),
        ("api:\n  max_in_flight_images: 65\n", "write a number at most 64"),
        ("api:\n  timeout_s: -1\n", "write a number greater than 0"),
        ("budget:\n  max_usd_per_day: -1\n", "write a number at least 0"),
        (
            "api:\n  api_key_env: MY KEY\n",
            "write the name of the variable, e.g. IDEOGRAM_API_KEY (never the key itself)",
        ),
        ("metrics:\n  listen: everywhere\n", "write host:port, e.g. 127.0.0.1:9464"),
        ("shutdown_grace_s: 0\n", "write a number greater than 0"),
    ],
)
def test_every_range_and_pattern_error_says_how_to_fix_it(tmp_path: Path, text: str, fix: str) -> None:
    assert one_problem(write(tmp_path, MINIMAL + text)).endswith(f" — {fix}")


def test_range_and_pattern_errors_in_rules_say_how_to_fix_them(tmp_path: Path) -> None:
    text = MINIMAL.replace("name: poster", "name: Poster") + (
        "      model: V_3\n      image_weight: 500\n      seed: -1\n      num_images: 9\n      style_codes: ['zz']\n"
    )
    found = problems(write(tmp_path, text))
    assert len(found) == 5, found
    assert all(" — " in problem for problem in found), found
    assert found[0].endswith(" — use lower-case letters, digits, '-' and '_', e.g. 'poster'")
    assert found[-1].endswith(" — write an 8-digit hex code, e.g. 'AB12CD34'")
