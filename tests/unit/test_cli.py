"""The CLI's commands in process, without a network: exit statuses and what each one leaves on disk."""

from __future__ import annotations

import json
from pathlib import Path

from remixd.cli import ExitStatus
from remixd.journal.sqlite import SqliteJournal
from tests.helpers import POSTER, make_image, run_cli, write_config


def test_check_reports_every_problem_with_its_place_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "remixd.yaml"
    config.write_text("inboxes: []\nrules:\n  - name: x\n    request: {num_images: 99}\n", encoding="utf-8")
    status, output = run_cli("check", "-c", str(config))
    assert status == ExitStatus.CONFIG
    assert f"{config}:" in output and "num_images" in output


def test_check_api_on_a_sandbox_config_tries_no_key_and_touches_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)  # api.sandbox: true
    status, output = run_cli("check", "--api", "-c", str(config))
    assert status == ExitStatus.OK, output
    assert "there is no key to try" in output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inbox", "remixd.yaml"]  # no state, no sandbox


def test_status_before_any_run_says_so_and_creates_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    status, output = run_cli("status", "-c", str(config))
    assert status == ExitStatus.OK
    assert "no journal yet" in output
    assert not (tmp_path / "state").exists()


def test_status_shows_the_journal_of_a_config_with_a_broken_rule_and_refuses_a_broken_budget(tmp_path: Path) -> None:
    # README "Commands": status reads only what it shows; `check` (and run, once) still refuse the whole file.
    rule = {**POSTER, "request": {**POSTER["request"], "num_images": 99}}
    config = write_config(tmp_path, None, rules=[rule])
    SqliteJournal(tmp_path / "state/journal.sqlite3").close()
    status, output = run_cli("status", "-c", str(config))
    assert status == ExitStatus.OK, output
    assert output.startswith("inputs: claimed 0")
    status, output = run_cli("check", "-c", str(config))
    assert status == ExitStatus.CONFIG
    assert "rules[0].request.num_images" in output

    config = write_config(tmp_path, None, extra={"budget": {"max_usd_per_day": "ten"}})
    status, output = run_cli("status", "-c", str(config))
    assert status == ExitStatus.CONFIG  # its caps would be wrong: said as `check` says it, file and line
    assert f"{config}:" in output and "budget.max_usd_per_day" in output and "inputs:" not in output


def test_check_names_the_companions_in_the_inboxes_that_would_fail_their_image(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, inbox={"companions": "optional"})
    inbox = tmp_path / "inbox"
    make_image(inbox / "mug.jpg")
    (inbox / "mug.yaml").write_text("# a seed per picture\nseed: -3\n", encoding="utf-8")
    make_image(inbox / "cup.jpg")
    (inbox / "cup.yml").write_text("seed: 3\n", encoding="utf-8")  # fine
    (inbox / "lonely.json").write_text("{", encoding="utf-8")  # no image: never read, never sent

    status, output = run_cli("check", "-c", str(config))

    assert status == ExitStatus.OK, output  # the config is valid: only that image would fail
    [problem] = [json.loads(line)["problem"] for line in output.splitlines() if "remixd.companion.invalid" in line]
    assert problem.startswith(f"{inbox / 'mug.yaml'}:2: seed: ")  # file:line and the key
    assert problem.endswith(" — write a number at least 0")  # the fix
    assert "cup.yml" not in output and "lonely" not in output
    assert "1 image(s) would fail for their companions" in output
