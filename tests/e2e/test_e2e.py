"""remixd as users run it: a subprocess, files dropped the ways people drop them, signals, and what lands on disk."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from remixd.sandbox.server import SandboxServer
from tests.helpers import SEED_WIRE_FIELDS, TEST_KEY, Daemon, image_bytes, make_image, remixd, wait_for, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon_env() -> dict[str, str]:
    return {"IDEOGRAM_API_KEY": TEST_KEY}


@pytest.fixture
def started(tmp_path: Path, sandbox: SandboxServer, daemon_env: dict[str, str]) -> Daemon:
    config = write_config(tmp_path, sandbox.base_url, inbox={"recursive": True, "settle_s": 0.5})
    make_image(tmp_path / "inbox/before-start.jpg", color=(1, 1, 1))
    daemon = Daemon(config, daemon_env)
    daemon.wait_started()
    return daemon


def test_files_dropped_every_way_people_drop_them(tmp_path: Path, sandbox: SandboxServer, started: Daemon) -> None:
    inbox, staging = tmp_path / "inbox", tmp_path / "staging"
    originals = {
        name: image_bytes(color=(index * 40, 100, 200))
        for index, name in enumerate(["copied.jpg", "moved.jpg", "slow.jpg", "downloaded.jpg", "folder/inside.jpg"])
    }
    for name, data in originals.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)

    shutil.copyfile(staging / "copied.jpg", inbox / "copied.jpg")  # cp
    (staging / "moved.jpg").rename(inbox / "moved.jpg")  # mv within the file system
    data = originals["slow.jpg"]
    with (inbox / "slow.jpg").open("wb") as slow:  # a slow writer: chunks, pauses shorter than settle_s
        for start in range(0, len(data), len(data) // 3 + 1):
            slow.write(data[start : start + len(data) // 3 + 1])
            slow.flush()
            time.sleep(0.15)  # the scenario itself: a writer pausing between chunks
    (inbox / "downloaded.jpg.part").write_bytes(originals["downloaded.jpg"])  # a browser's temp name
    (inbox / "downloaded.jpg.part").rename(inbox / "downloaded.jpg")
    (staging / "folder").rename(inbox / "folder")  # a whole folder moved in (recursive inbox)

    expected = ["before-start", "copied", "moved", "slow", "downloaded", "folder/inside"]
    for stem in expected:
        wait_for((tmp_path / f"outbox/{stem}.poster.1.json").exists, message=stem)
    wait_for(lambda: not any(p.is_file() for p in inbox.rglob("*")), message="the inbox to empty")

    assert started.stop() == 0
    sent = {r.sha256 for r in sandbox.received if r.path == "/remix"}
    assert len([r for r in sandbox.received if r.path == "/remix"]) == len(expected)  # each exactly once
    for name, data in originals.items():
        assert hashlib.sha256(data).hexdigest() in sent, f"{name} was not sent whole"
        assert (tmp_path / "done" / name).read_bytes() == data
    assert not [p for p in tmp_path.rglob(".remixd-tmp-*")]
    assert not (tmp_path / "outbox/downloaded.jpg.part.poster.1.json").exists()
    assert any(e.get("event") == "remixd.stopped" for e in started.events())


def test_restart_resumes_without_sending_twice(
    tmp_path: Path, sandbox: SandboxServer, started: Daemon, daemon_env: dict[str, str]
) -> None:
    wait_for(lambda: (tmp_path / "done/before-start.jpg").exists(), message="the first input")
    assert started.stop() == 0
    make_image(tmp_path / "inbox/while-down.jpg")
    again = Daemon(tmp_path / "remixd.yaml", daemon_env)
    try:
        again.wait_started()
        wait_for(lambda: (tmp_path / "done/while-down.jpg").exists(), message="the file dropped while down")
    finally:
        assert again.stop(signal.SIGINT) == 0
    assert [r.status for r in sandbox.received] == [200, 200]


def test_seed_request_through_a_gateway_with_bearer_auth(tmp_path: Path, sandbox: SandboxServer) -> None:
    """tests/fixtures/reference/seed-remix-api.txt, field by field, as the sandbox received it."""
    rules = [
        {
            "name": "seed",
            "match": ["*.png"],
            "request": dict(SEED_WIRE_FIELDS),
        }
    ]
    config = write_config(
        tmp_path, sandbox.base_url + "/ideogram", rules=rules, api={"auth": "bearer", "api_key_env": "GATEWAY_KEY"}
    )
    flux = make_image(tmp_path / "inbox/flux.png", size=(96, 96))
    digest = hashlib.sha256(flux.read_bytes()).hexdigest()

    result = remixd("once", "-c", str(config), env={"GATEWAY_KEY": TEST_KEY})

    assert result.returncode == 0, result.stderr
    (received,) = sandbox.received
    assert received.path == "/ideogram/remix"
    assert received.auth_scheme == "bearer" and received.key_valid
    assert received.fields == SEED_WIRE_FIELDS
    assert received.image_part == "image_file" and received.content_type == "image/png"
    assert received.filename is not None and received.filename.endswith(".png")
    assert received.sha256 == digest
    sidecar = json.loads((tmp_path / "outbox/flux.seed.1.json").read_text())
    assert sidecar["api"]["endpoint"] == sandbox.base_url + "/ideogram/remix"
    assert sidecar["result"]["seed"] == 12345 and sidecar["result"]["style_type"] is None
    assert TEST_KEY not in result.stderr + json.dumps(sidecar)


def test_once_exits_1_when_an_input_failed(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    (tmp_path / "inbox/empty.jpg").write_bytes(b"")
    make_image(tmp_path / "inbox/fine.jpg")
    result = remixd("once", "-c", str(config), env={"IDEOGRAM_API_KEY": TEST_KEY})
    assert result.returncode == 1, result.stderr
    assert "1 done" in result.stderr and "1 failed" in result.stderr
    assert (tmp_path / "failed/empty.jpg.error.json").is_file()


def test_check_reports_every_problem_with_its_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "remixd.yaml"
    config.write_text(
        "api:\n  sandbox: true\ninboxs: []\nrules:\n  - name: Bad Name\n    match: ['*.jpg']\n"
        "    request: {prompt: hi, aspect_ratio: ASPECT_2_1}\n",
        encoding="utf-8",
    )
    result = remixd("check", "-c", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{config}:3: inboxs: unknown key 'inboxs'" in result.stderr
    assert f"{config}:5: rules[0].name" in result.stderr
    assert f"{config}:7: rules[0].request.aspect_ratio" in result.stderr


def test_run_refuses_a_bad_config_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "remixd.yaml"
    config.write_text("api: {sandbox: true}\ninboxes: [{path: ./in}]\nrules: []\n", encoding="utf-8")
    result = remixd("run", "-c", str(config))
    assert result.returncode == 2
    assert not (tmp_path / "state").exists()
