"""`remixd status`'s read of a config without pydantic (config.state_quick), held to the models' whole check
(config.state): the same keys and defaults, and never an answer the models would not give."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from remixd.config import state, state_quick
from remixd.config.state_model import BudgetSchema, DocumentSchema, InboxSchema, JournalSchema
from remixd.config.state_values import StateConfig
from remixd.errors import ConfigError
from tests.helpers import POSTER

SECTIONS: tuple[tuple[tuple[str | int, ...], Any, type[BaseModel]], ...] = (
    ((), state_quick.DOCUMENT, DocumentSchema),
    (("budget",), state_quick.BUDGET, BudgetSchema),
    (("journal",), state_quick.JOURNAL, JournalSchema),
    (("inboxes", 0), state_quick.INBOX, InboxSchema),
)
CANDIDATES: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 3, 2.5, 0.0, -0.5, float("inf"), float("nan"), "", "x", "./folder", "4:3", "2",
    "move", "keep", "auto", "poll", "off", "optional", "required", [], ["a"], [1], [None], {}, {"a": 1}, 10**20,
)  # fmt: skip
BASE: dict[str, Any] = {
    "api": {"sandbox": True},
    "state_dir": "./state",
    "budget": {"max_images_per_day": 5, "max_usd_per_day": 2},
    "journal": {"keep_days": 30, "min_free_mb": 0},
    "inboxes": [{"path": "./inbox", "output": "./outbox", "failed_dir": "./failed", "settle_s": 1}],
    "rules": [POSTER],
}


def both(path: Path) -> tuple[StateConfig | None, StateConfig | None]:
    """(the quick read, the models' whole check: None where it found a problem)."""
    try:
        whole = state.load_state(path)
    except ConfigError:
        whole = None
    return state_quick.quick_state(path), whole


def written(root: Path, document: Any) -> Path:
    path = root / "remixd.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("where", "keys", "model"), SECTIONS, ids=lambda value: getattr(value, "__name__", None))
def test_each_section_has_the_models_keys_defaults_and_required_ones(
    where: tuple[str | int, ...], keys: Any, model: type[BaseModel]
) -> None:
    del where
    assert sorted(keys) == sorted(field.alias or name for name, field in model.model_fields.items())
    for name, field in model.model_fields.items():
        default = keys[field.alias or name][1]
        assert (default is state_quick.REQUIRED) == field.is_required(), name
        if not field.is_required():
            assert default == field.default, name


def test_a_plain_config_is_read_without_the_models_and_comes_to_what_they_say(tmp_path: Path) -> None:
    path = written(tmp_path, BASE)
    quick, whole = both(path)
    assert quick is not None and quick == whole
    assert quick.budget.max_usd_per_day == 2.0 and type(quick.budget.max_usd_per_day) is float


def test_the_example_config_is_read_without_the_models(tmp_path: Path) -> None:
    example = (Path(__file__).parents[3] / "config.example.yaml").read_text(encoding="utf-8")
    (tmp_path / "remixd.yaml").write_text(example, encoding="utf-8")
    quick, whole = both(tmp_path / "remixd.yaml")
    assert quick is not None and quick == whole


@pytest.mark.parametrize(("where", "keys", "model"), SECTIONS, ids=lambda value: getattr(value, "__name__", None))
def test_no_value_of_any_key_is_taken_that_the_models_refuse_or_read_otherwise(
    tmp_path: Path, where: tuple[str | int, ...], keys: Any, model: type[BaseModel]
) -> None:
    del model
    quick_reads = 0
    for key in [*keys, "unknown_key"]:
        for value in (*CANDIDATES, "<absent>"):
            document = copy.deepcopy(BASE)
            section: Any = document
            for part in where:
                section = section[part]
            if value == "<absent>":
                section.pop(key, None)
            else:
                section[key] = value
            quick, whole = both(written(tmp_path, document))
            assert quick is None or quick == whole, (where, key, value)
            quick_reads += quick is not None
    assert quick_reads > len(keys)  # the quick read is what status uses, not a path never taken


@pytest.mark.parametrize(
    ("yaml_text", "read_quickly"),
    [
        ("companions: off", True),  # YAML 1.1's false: the model reads it as "off", and so does this
        ("settle_s: 4:3", False),  # YAML 1.1's base 60, kept as text: a problem
        ("path: ./a\n    path: ./b", False),  # a duplicate key: the reader's problem
        ("done_dir: yes", False),  # a boolean where a folder goes
        ("output_name: !!python/name:os.system", False),  # a tag YAML cannot read safely
    ],
)
def test_yaml_oddities_in_an_inbox_answer_as_the_models_do(tmp_path: Path, yaml_text: str, read_quickly: bool) -> None:
    text = (
        "state_dir: ./state\n"
        "inboxes:\n"
        f"  - {yaml_text}\n"
        "    output: ./outbox\n"
        "    failed_dir: ./failed\n"
        + ("" if yaml_text.startswith("path:") else "    path: ./inbox\n")
        + "rules:\n  - {name: poster, match: ['*.jpg'], request: {prompt: p}}\n"
    )
    path = tmp_path / "remixd.yaml"
    path.write_text(text, encoding="utf-8")
    quick, whole = both(path)
    assert (quick is not None) == read_quickly and (quick is None or quick == whole)


def test_status_on_a_valid_config_imports_no_pydantic(tmp_path: Path) -> None:
    path = written(tmp_path, BASE)
    script = (
        "import sys; from remixd.config.state_quick import load_state; load_state(__import__('pathlib').Path("
        "sys.argv[1])); print(sorted(name for name in sys.modules if name.split('.')[0] == 'pydantic'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_problem_is_found_and_worded_by_the_models(tmp_path: Path) -> None:
    document = copy.deepcopy(BASE)
    document["journal"]["keep_days"] = 0
    with pytest.raises(ConfigError) as raised:
        state_quick.load_state(written(tmp_path, document))
    assert [problem.key_path for problem in raised.value.problems] == ["journal.keep_days"]
