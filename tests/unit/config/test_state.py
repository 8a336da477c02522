"""The part of the config `remixd status` reads: what a whole load reads there, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixd.config.load import load_config
from remixd.config.state import load_state
from remixd.errors import ConfigError
from tests.helpers import POSTER, write_config


def test_the_state_part_is_what_the_whole_load_says_of_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, None, extra={"budget": {"max_images_per_day": 5}, "journal": {"min_free_mb": 10}, "state_dir": "s"}
    )
    whole, state = load_config(path), load_state(path)
    assert (state.source, state.state_dir, state.budget, state.journal) == (
        whole.source, whole.state_dir, whole.budget, whole.journal,
    )  # fmt: skip
    assert state.state_dir == tmp_path / "s" and state.journal.min_free_mb == 10
    assert state.failed_dirs == tuple((inbox.path, inbox.failed_dir) for inbox in whole.inboxes)


def test_a_broken_rule_or_api_section_does_not_stop_the_state_part(tmp_path: Path) -> None:
    rule = {**POSTER, "request": {**POSTER["request"], "num_images": 99}}
    path = write_config(tmp_path, None, rules=[rule], api={"timeout_s": -1})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert {problem.key_path for problem in raised.value.problems} == {"rules[0].request.num_images", "api.timeout_s"}
    assert load_state(path).state_dir == tmp_path / "state"


def test_every_problem_of_the_sections_status_reads_comes_at_once_as_the_whole_load_words_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        None,
        inbox={"settle_s": "soon"},
        extra={"budget": {"max_images_per_day": -1}, "journal": {"keep_days": 0}, "budgte": {}},
    )
    with pytest.raises(ConfigError) as state:
        load_state(path)
    with pytest.raises(ConfigError) as whole:
        load_config(path)
    keys = ["inboxes[0].settle_s", "budget.max_images_per_day", "journal.keep_days", "budgte"]
    assert sorted(problem.key_path for problem in state.value.problems) == sorted(keys)
    assert all(problem.line and problem.file == str(path) for problem in state.value.problems)
    assert set(state.value.problems) <= set(whole.value.problems)  # the same words, file and line
