"""The whole pipeline in one process, against the sandbox over loopback: what lands on disk, and what was paid."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from remixd.daemon.pool import workers_for
from remixd.daemon.service import Service
from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, sidecars, wait_for, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}


def run_once(config_path: Path, environ: dict[str, str] | None = None) -> Service:
    service = make_service(config_path, "once", environ or ENV)
    service.run()
    return service


def test_once_writes_results_sidecars_and_moves_inputs(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"recursive": True})
    make_image(tmp_path / "inbox/beach.jpg")
    make_image(tmp_path / "inbox/sub/shop item.png", size=(80, 80))

    service = run_once(config)

    assert service.outcomes["done"] == 2
    assert sorted(
        p.relative_to(tmp_path / "outbox").as_posix() for p in (tmp_path / "outbox").rglob("*") if p.is_file()
    ) == ["beach.poster.1.json", "beach.poster.1.png", "sub/shop item.poster.1.json", "sub/shop item.poster.1.png"]
    assert (tmp_path / "done/beach.jpg").is_file() and (tmp_path / "done/sub/shop item.png").is_file()
    assert not any((tmp_path / "inbox").rglob("*.*"))
    document = json.loads((tmp_path / "outbox/beach.poster.1.json").read_text())
    assert set(document) == {
        "schema",
        "sandbox",
        "remixd_version",
        "source",
        "rule",
        "api",
        "result",
        "image",
        "cost_usd",
        "cost_source",
        "possible_payments",
        "timings",
        "output",
    }
    assert document["possible_payments"] == 0
    assert document["schema"] == "remixd.result/1"
    assert document["api"]["request"] == {
        "prompt": "A serene tropical beach, beach",
        "model": "V_2",
        "aspect_ratio": "ASPECT_10_16",
        "image_weight": 50,
        "seed": 12345,
    }
    assert document["api"]["endpoint"] == sandbox.base_url + "/remix"
    assert document["source"]["sha256"] == hashlib.sha256((tmp_path / "done/beach.jpg").read_bytes()).hexdigest()
    image = tmp_path / "outbox/beach.poster.1.png"
    assert document["image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert (document["cost_usd"], document["cost_source"]) == (pytest.approx(0.08), "table")
    assert (document["api"]["route"], document["api"]["generation_id"]) == ("V_2", None)
    assert sandbox.ledger.usd == pytest.approx(0.16)
    received = [r for r in sandbox.received if r.path == "/remix"]
    assert all(r.auth_scheme == "api-key" and r.key_valid for r in received)


def test_a_bad_image_fails_alone_with_an_error_file(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    (tmp_path / "inbox/broken.jpg").write_bytes(b"this is not a JPEG")
    make_image(tmp_path / "inbox/good.jpg")

    service = run_once(config)

    assert (service.outcomes["done"], service.outcomes["failed"]) == (1, 1)
    assert (tmp_path / "failed/broken.jpg").read_bytes() == b"this is not a JPEG"
    error = json.loads((tmp_path / "failed/broken.jpg.error.json").read_text())
    assert error["schema"] == "remixd.error/1"
    assert error["error"]["kind"] == "input" and "broken.jpg" in error["error"]["message"]
    assert error["error"]["hint"]
    assert (tmp_path / "outbox/good.poster.1.png").is_file()
    assert len(sandbox.received) == 1  # the broken file never cost a request


def test_safety_rejection_fails_the_input_with_the_apis_message(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules = [{"name": "risky", "match": ["*-risky.*"], "request": {"prompt": "FORBIDDEN_422 {stem}"}}, POSTER]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    make_image(tmp_path / "inbox/a-risky.jpg")
    make_image(tmp_path / "inbox/b.jpg")

    service = run_once(config)

    assert (service.outcomes["done"], service.outcomes["failed"]) == (1, 1)
    error = json.loads((tmp_path / "failed/a-risky.jpg.error.json").read_text())
    assert error["error"]["http_status"] == 422
    assert "safety" in error["error"]["message"]
    assert error["rule"]["name"] == "risky"
    assert error["attempts"] == 1  # a rejection is never sent twice
    assert sum(1 for r in sandbox.received if r.status == 422) == 1


def test_withheld_unsafe_image_gets_a_sidecar_and_no_image(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules = [{"name": "odd", "match": ["*.jpg"], "request": {"prompt": "UNSAFE_RESULT {stem}", "num_images": 2}}]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    make_image(tmp_path / "inbox/x.jpg")

    run_once(config)

    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["x.odd.1.json", "x.odd.2.json"]
    for document in sidecars(tmp_path / "outbox"):
        assert document["image"] is None and document["result"]["is_image_safe"] is False
    assert (tmp_path / "done/x.jpg").is_file()  # withheld results are results: the input is done


def test_identical_content_is_a_duplicate_and_not_paid_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules = [{"name": "fixed", "match": ["*.jpg"], "request": {"prompt": "a fixed prompt", "seed": 7}}]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    make_image(tmp_path / "inbox/first.jpg")
    run_once(config)
    (tmp_path / "done/first.jpg").rename(tmp_path / "inbox/second.jpg")

    service = run_once(config)

    assert service.outcomes["duplicate"] == 1
    assert sandbox.ledger.requests == 1
    assert (tmp_path / "done/second.jpg").is_file()
    assert not list((tmp_path / "outbox").glob("second*"))


def test_continue_lets_later_rules_match_too(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules: list[dict[str, Any]] = [
        {"name": "one", "match": ["*.jpg"], "continue": True, "request": {"prompt": "one {stem}"}},
        {
            "name": "two",
            "match": ["*.jpg"],
            "request": {"prompt": "two {stem}", "model": "V_3", "aspect_ratio": "ASPECT_16_9"},
        },
        {"name": "three", "match": ["*.jpg"], "request": {"prompt": "never"}},
    ]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    make_image(tmp_path / "inbox/p.jpg")

    run_once(config)

    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.png")) == ["p.one.1.png", "p.two.1.png"]
    v3 = next(r for r in sandbox.received if r.path == "/v1/ideogram-v3/remix")
    assert v3.fields["aspect_ratio"] == "16x9" and v3.image_part == "image"


def test_colliding_names_never_overwrite(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "delete"})
    make_image(tmp_path / "inbox/a.jpg", color=(1, 2, 3))
    run_once(config)
    second = make_image(tmp_path / "inbox/a.jpg", color=(200, 2, 3))
    digest = hashlib.sha256(second.read_bytes()).hexdigest()

    run_once(config)

    assert sorted(p.name for p in (tmp_path / "outbox").glob("*.png")) == sorted(
        ["a.poster.1.png", f"a-{digest[:8]}.poster.1.png"]
    )
    assert not (tmp_path / "inbox/a.jpg").exists()


def test_after_keep_is_not_redone_on_the_next_run(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"after": "keep"})
    make_image(tmp_path / "inbox/k.jpg")
    run_once(config)
    run_once(config)
    assert (tmp_path / "inbox/k.jpg").is_file()
    assert sandbox.ledger.requests == 1


def test_run_mode_picks_up_a_dropped_file_and_stops_cleanly(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    service = make_service(config, "run", ENV)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        make_image(tmp_path / "inbox/late.jpg")
        wait_for(lambda: (tmp_path / "outbox/late.poster.1.json").exists(), message="the result")
        wait_for(lambda: (tmp_path / "done/late.jpg").exists(), message="the disposal")
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    status = json.loads((tmp_path / "state/status.json").read_text())
    assert status["running"] is False


def test_wrong_key_pauses_submissions_instead_of_failing_inputs(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    service = make_service(config, "run", {"IDEOGRAM_API_KEY": "wrong-key-123456"})
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        make_image(tmp_path / "inbox/waiting.jpg")
        wait_for(lambda: service.gates.auth.is_paused, message="the auth pause")
        assert "wrong-key-123456" not in (service.gates.auth.reason or "")
    finally:
        service.request_stop()
        service.request_stop()  # the second signal: do not wait for the paused job
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert (tmp_path / "inbox/waiting.jpg").is_file()  # not failed, not lost: it waits for a working key
    assert not (tmp_path / "failed").exists() or not any((tmp_path / "failed").iterdir())


def test_a_request_for_four_images_holds_four_slots(tmp_path: Path) -> None:
    """Ideogram counts images in flight, not requests: two 4-image requests may not overlap under a limit of 4."""
    from remixd.sandbox.options import SandboxOptions

    with SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY}), inflight_limit=4, latency_s=0.3)) as server:
        rules = [{"name": "four", "match": ["*.jpg"], "request": {"prompt": "four of {stem}", "num_images": 4}}]
        config = write_config(tmp_path, server.base_url, rules=rules, api={"max_in_flight_images": 4})
        make_image(tmp_path / "inbox/one.jpg", color=(1, 2, 3))
        make_image(tmp_path / "inbox/two.jpg", color=(3, 2, 1))

        run_once(config)

        assert [r.status for r in server.received] == [200, 200]  # no 429: they never overlapped
        assert len(list((tmp_path / "outbox").glob("*.png"))) == 8


def test_a_reload_that_raises_the_in_flight_ceiling_starts_the_workers_it_needs_and_keeps_the_counts(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"max_in_flight_images": 2})
    service = make_service(config, "run", ENV)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        assert service.pool.size == workers_for(2)
        make_image(tmp_path / "inbox/before.jpg")
        wait_for(lambda: (tmp_path / "done/before.jpg").exists(), message="the first input")

        write_config(tmp_path, sandbox.base_url, api={"max_in_flight_images": 8})
        service.request_reload()
        # 8 images in flight need 8 workers to send them (threads start one by one: wait for the last)
        wait_for(lambda: service.pool.size == workers_for(8), message="the workers of the new ceiling")
        assert service.limiter.ceiling == 8
        assert service.pool.healthy(60.0)

        make_image(tmp_path / "inbox/after.jpg", color=(1, 2, 3))
        wait_for(lambda: (tmp_path / "done/after.jpg").exists(), message="the input after the reload")
        # The metrics' and status' counts go on across the reload's new intake instead of starting again.
        assert service.intake.counters.claimed == {str(tmp_path / "inbox"): 2}
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
