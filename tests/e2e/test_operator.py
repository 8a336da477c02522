"""Operator commands say what happened: retry refuses what it cannot do, status shows what is left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, make_image, remixd, write_config

pytestmark = pytest.mark.e2e
ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def failed_once(tmp_path: Path, failed: Path | None = None) -> Path:
    (tmp_path / "inbox").mkdir(parents=True, exist_ok=True)
    (tmp_path / "inbox/broken.jpg").write_text("not a photo", encoding="utf-8")
    path = write_config(tmp_path, None, inbox=None if failed is None else {"failed_dir": str(failed)})
    assert remixd("once", "-c", str(path), "--log-format", "json", env=ENV).returncode == 1
    assert ((failed or tmp_path / "failed") / "broken.jpg").is_file()
    return path


def test_retry_of_a_path_that_is_not_a_failed_input_says_so_and_exits_1(tmp_path: Path) -> None:
    config = failed_once(tmp_path)
    stray = tmp_path / "inbox/never-seen.jpg"
    result = remixd("retry", "-c", str(config), str(stray))
    assert result.returncode == 1
    assert f"remixd: {stray} is not a failed input" in result.stderr
    assert (tmp_path / "failed/broken.jpg").is_file()  # the failed one was not named: it stays
    assert remixd("retry", "-c", str(config), str(tmp_path / "failed/broken.jpg")).returncode == 0
    assert (tmp_path / "inbox/broken.jpg").is_file()


def test_retry_across_file_systems_leaves_one_file_and_no_copy(tmp_path: Path) -> None:
    elsewhere = Path("/dev/shm") / f"remixd-failed-{os.getpid()}-{tmp_path.name}"
    if not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm) for the failed folder")
    try:
        config = failed_once(tmp_path, elsewhere)
        result = remixd("retry", "-c", str(config))
        assert result.returncode == 0, result.stderr
        assert sorted(path.name for path in (tmp_path / "inbox").iterdir()) == ["broken.jpg"]  # no temp copy
        assert sorted(path.name for path in elsewhere.iterdir()) == []
    finally:
        for path in elsewhere.glob("*"):
            path.unlink()
        elsewhere.rmdir()


def test_status_shows_the_caps_a_spent_budget_without_a_daemon_and_where_failures_are(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    make_image(tmp_path / "inbox/a.jpg", color=(1, 2, 3))
    make_image(tmp_path / "inbox/b.jpg", color=(4, 5, 6))
    config = write_config(
        tmp_path, sandbox.base_url, extra={"budget": {"max_images_per_day": 1}}, api={"max_in_flight_images": 1}
    )
    (tmp_path / "inbox/broken.jpg").write_text("not a photo", encoding="utf-8")
    remixd("once", "-c", str(config), "--log-format", "json", env=ENV)
    text = remixd("status", "-c", str(config)).stdout  # no daemon runs now
    assert "budget today (UTC): 1 of 1 images (0 left)" in text
    assert "PAUSED: the daily budget of 1 images is spent; submissions resume at " in text
    assert f"    in {tmp_path}/failed/broken.jpg" in text
    report = json.loads(remixd("status", "-c", str(config), "--json").stdout)
    assert report["budget"]["images_left"] == 0 and report["budget"]["max_usd_per_day"] is None
    assert report["recent_failures"][0]["file"] == str(tmp_path / "failed/broken.jpg")


# What `remixd status` never needs: structlog (asyncio with it), Pillow, logging, the request model and the
# rules' checks, the sidecar rebuild, the daemon's retry loop.
NOT_FOR_STATUS = (
    "PIL", "asyncio", "logging", "remixd.config.load", "remixd.config.model", "remixd.config.rule_build",
    "remixd.ideogram.requests", "remixd.journal.rebuild", "remixd.work.retry", "structlog",
)  # fmt: skip


def test_status_starts_light_and_quiet(tmp_path: Path) -> None:
    # README "Benchmarks": status answers in under 200 ms; importing what it does not use (above), pydantic
    # and the building of the sections' models were most of it: a valid config is read without them
    # (config.state_quick). The config's warnings are for the commands that act on it.
    failed_once(tmp_path)
    config = write_config(tmp_path, "http://127.0.0.1:9")  # no key for it in the environment: a warning
    script = (
        "import sys; from remixd.cli import main; code = main(['status', '-c', sys.argv[1]]); "
        f"print(sorted(name for name in {NOT_FOR_STATUS!r} if name in sys.modules)); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('pydantic', 'pydantic_core'))); "
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    *report, imported, validators = result.stdout.splitlines()
    assert (imported, validators) == ("[]", "[]")
    assert "broken.jpg" in "\n".join(report)
    assert result.stderr == ""  # no key for this config: `check` and `run` say so, not status
    assert "api: no API key" in remixd("check", "-c", str(config), env={"IDEOGRAM_API_KEY": ""}).stderr


def test_status_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    config = failed_once(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # `remixd status | head -1`, with head gone before status writes
    try:
        result = subprocess.run(
            [sys.executable, "-m", "remixd", "status", "-c", str(config)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


def test_inputs_whose_images_were_all_withheld_show_in_status_and_in_the_once_summary(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    rules = [
        {"name": "odd", "match": ["odd*"], "request": {"prompt": "UNSAFE_RESULT {stem}", "num_images": 2}},
        {**POSTER, "request": {**POSTER["request"], "num_images": 2}},
    ]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    make_image(tmp_path / "inbox/odd.jpg", color=(1, 2, 3))
    make_image(tmp_path / "inbox/plain.jpg", color=(4, 5, 6))
    first = remixd("once", "-c", str(config), "--log-format", "json", env=ENV)
    assert first.returncode == 0, first.stderr
    assert "2 done, 0 duplicates, 0 failed, 2 images withheld" in first.stderr  # paid for, nothing to see

    make_image(tmp_path / "inbox/half.jpg", color=(7, 8, 9))
    sandbox.set_faults(unsafe_next=1, unsafe_items=1)  # one of its two images withheld: not "all"
    second = remixd("once", "-c", str(config), "--log-format", "json", env=ENV)
    assert "1 done, 0 duplicates, 0 failed, 1 image withheld" in second.stderr  # this run's only

    text = remixd("status", "-c", str(config)).stdout
    assert "withheld by Ideogram's safety check: 1 input(s) got no image" in text
    assert "odd.jpg [odd]: 2 image(s) withheld" in text
    assert "half.jpg" not in text and "plain.jpg" not in text
    report = json.loads(remixd("status", "-c", str(config), "--json").stdout)["withheld"]
    assert report["inputs"] == 1
    assert [(found["relpath"], found["images"]) for found in report["recent"]] == [("odd.jpg", 2)]
