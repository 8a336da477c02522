"""The pipeline on a v2 route against the sandbox: async submission, the generation id journalled before
anything else, polling, resume by polling after a restart, failed generations, sync v2 for gateways."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from remixd.clock import SYSTEM_CLOCK
from remixd.config.state_values import BudgetConfig
from remixd.errors import AuthError, JobFailed, PaymentRequired
from remixd.ideogram.client import IdeogramClient
from remixd.ideogram.requests import RemixRequest
from remixd.journal.records import JobSpec
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from remixd.work.budget import Budget
from remixd.work.gates import Gates
from remixd.work.prepare import prepare
from remixd.work.retry import InflightLimiter, Pause, RetryPolicy
from remixd.work.submit import Submitter
from tests.helpers import (
    TEST_KEY,
    approx,
    image_bytes,
    make_image,
    make_service,
    remixd,
    send_remix,
    sidecars,
    write_config,
)

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
PRODUCT: dict[str, Any] = {
    "name": "product",
    "match": ["*.jpg", "*.png"],
    "request": {"model": "ideogram-4", "prompt": "studio shot of {stem}", "rendering_speed": "TURBO", "num_images": 2},
}


def run_once(root: Path, sandbox: SandboxServer, api: dict[str, Any] | None = None) -> None:
    config = write_config(root, sandbox.base_url, rules=[PRODUCT], api={"poll_interval_s": 0.05, **(api or {})})
    make_service(config, "once", ENV).run()


def test_an_async_v2_run_polls_writes_and_pays_once(tmp_path: Path, sandbox: SandboxServer) -> None:
    first_day = SYSTEM_CLOCK.utcnow().date()  # a run may cross midnight UTC: its spend is on both days
    sandbox.set_faults(latency_s=0.3)
    for index in range(3):
        make_image(tmp_path / "inbox" / f"p{index}.jpg", color=(40 * index, 90, 10))
    run_once(tmp_path, sandbox)
    documents = sidecars(tmp_path / "outbox")
    assert len(documents) == 6
    assert {doc["api"]["route"] for doc in documents} == {"ideogram-4"}
    assert all(doc["api"]["generation_id"] for doc in documents)
    assert {doc["cost_source"] for doc in documents} == {"quote"}  # the account's price, asked for free
    assert all(doc["api"]["request"]["rendering_speed"] == "turbo" for doc in documents)
    assert sum(1 for r in sandbox.received if r.dry_run) == 1  # one quote for the rule, not one per image
    received = [r for r in sandbox.received if r.path.startswith("/v2/image/remix/") and not r.dry_run]
    assert len(received) == 3
    assert all(r.fields["async"] == "true" and not r.ignored_fields for r in received)
    assert (sandbox.ledger.images, sandbox.ledger.usd) == (6, approx(0.18))
    assert sandbox.polls.answered >= 3
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spent = journal.spent_since(first_day)  # the journal's money agrees with the API's ledger
        assert (spent.images, spent.usd) == (6, approx(sandbox.ledger.usd))
    finally:
        journal.close()


def test_a_job_with_a_generation_id_is_resumed_by_polling_never_resent(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The daemon died after the generation id was committed: the restart polls it and sends nothing."""
    config_path = write_config(tmp_path, sandbox.base_url, rules=[PRODUCT], api={"poll_interval_s": 0.05})
    source = make_image(tmp_path / "inbox" / "crash.jpg")
    request = RemixRequest.model_validate(PRODUCT["request"] | {"prompt": "studio shot of crash"})
    client = IdeogramClient(sandbox.base_url, TEST_KEY, "api-key", requests.Session(), 20, 20, 1 << 26)
    accepted = send_remix(client, request, source.read_bytes(), "crash.jpg", "image/jpeg")
    assert accepted.accepted and accepted.generation_id
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    info = source.stat()
    input_id = journal.claim(str(tmp_path / "inbox"), "crash.jpg", info.st_size, info.st_mtime_ns)
    assert input_id is not None
    journal.set_hash(input_id, hashlib.sha256(source.read_bytes()).hexdigest())
    wire = request.model_dump(mode="json", exclude_unset=True)
    spec = JobSpec("product", request.fingerprint(), request.endpoint_path(), wire, 2, request.cost_usd())
    job = journal.add_jobs(input_id, [spec])[0]
    journal.start_submit(job.id)
    journal.record_generation(job.id, accepted.generation_id, accepted.seed, images=2)
    journal.close()
    status = json.loads(remixd("status", "--json", "-c", str(config_path), env=ENV).stdout)
    assert [g["generation_id"] for g in status["generations_pending"]] == [accepted.generation_id]
    make_service(config_path, "once", ENV).run()
    remixes = [r for r in sandbox.received if r.path.startswith("/v2/image/remix/")]
    assert len(remixes) == 1  # only the one sent before the "crash"
    documents = sidecars(tmp_path / "outbox")
    assert [doc["api"]["generation_id"] for doc in documents] == [accepted.generation_id] * 2
    assert sandbox.ledger.images == 2


def test_a_style_reference_gone_before_the_send_fails_the_job_before_it_counts_as_sent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    # Encoded after the "sent" row, the body's missing file left a request recorded as sent that never left.
    reference = make_image(tmp_path / "style.jpg")
    request = RemixRequest.model_validate(
        {"model": "ideogram-3", "prompt": "p", "style_reference_images": [str(reference)]}
    )
    reference.unlink()
    source = make_image(tmp_path / "inbox" / "a.jpg")
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        input_id = journal.claim(str(tmp_path / "inbox"), "a.jpg", source.stat().st_size, source.stat().st_mtime_ns)
        assert input_id is not None
        wire = request.model_dump(mode="json", exclude_unset=True)
        spec = JobSpec("style", request.fingerprint(), request.endpoint_path(), wire, 1, request.cost_usd())
        [job] = journal.add_jobs(input_id, [spec])
        client = IdeogramClient(sandbox.base_url, TEST_KEY, "api-key", requests.Session(), 20, 20, 1 << 26)
        clock = SYSTEM_CLOCK
        budget = Budget(BudgetConfig(), journal, clock)
        gates = Gates(threading.Event(), Pause(clock), Pause(clock), InflightLimiter(4, clock), budget, clock)
        submitter = Submitter(journal, client, gates, RetryPolicy(), clock=clock, rng=random.Random(0))
        with pytest.raises(JobFailed) as failed:
            submitter.submit(job, request, prepare(source))
        assert "style.jpg cannot be read" in failed.value.error.message
        job = journal.get_job(job.id)
        assert (job.state, job.attempts, job.submitted_at) == ("failed", 0, None)
        assert journal.possible_payments().unknown == 0
    finally:
        journal.close()
    assert [r for r in sandbox.received if not r.dry_run] == []


def test_a_failed_generation_fails_the_input_with_its_reason(tmp_path: Path, sandbox: SandboxServer) -> None:
    sandbox.set_faults(fail_generation_next=1)
    make_image(tmp_path / "inbox" / "bad.jpg")
    run_once(tmp_path, sandbox)
    error = json.loads((tmp_path / "failed" / "bad.jpg.error.json").read_text(encoding="utf-8"))["error"]
    assert "content_policy_violation" in error["message"]
    assert "content policy" in error["hint"]
    assert sandbox.ledger.images == 0


def test_api_async_false_sends_synchronous_v2_requests(tmp_path: Path, sandbox: SandboxServer) -> None:
    make_image(tmp_path / "inbox" / "gw.jpg")
    run_once(tmp_path, sandbox, {"async": False})
    received = [r for r in sandbox.received if r.path.startswith("/v2/image/remix/") and not r.dry_run]
    assert len(received) == 1 and "async" not in received[0].fields
    assert sandbox.polls.answered == 0
    assert len(sidecars(tmp_path / "outbox")) == 2


def test_image_weight_with_a_shape_change_fails_the_file_before_paying(tmp_path: Path) -> None:
    with SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY}))) as sandbox:
        rule = {
            **PRODUCT,
            "request": {"model": "ideogram-4", "prompt": "p", "image_weight": 30, "resolution": "1024x1024"},
        }
        config = write_config(tmp_path, sandbox.base_url, rules=[rule])
        (tmp_path / "inbox" / "wide.jpg").write_bytes(image_bytes((96, 48)))
        make_service(config, "once", ENV).run()
        error = json.loads((tmp_path / "failed" / "wide.jpg.error.json").read_text(encoding="utf-8"))["error"]
        assert "refuses image_weight with resolution 1024x1024" in error["message"]
        assert sandbox.received == []


def v2_client(sandbox: SandboxServer, probe: RemixRequest | None = None) -> IdeogramClient:
    return IdeogramClient(
        sandbox.base_url, TEST_KEY, "api-key", requests.Session(), 20, 20, 1 << 26, probe_request=probe
    )


def test_402_says_why_and_how_to_fix_and_the_key_probe_is_a_free_quote(sandbox: SandboxServer) -> None:
    request = RemixRequest.model_validate(PRODUCT["request"])
    client = v2_client(sandbox, probe=request.with_prompt("remixd key check"))
    sandbox.set_faults(payment_required="daily_limit")
    with pytest.raises(PaymentRequired) as refused:
        send_remix(client, request, image_bytes(), "a.jpg", "image/jpeg")
    assert "daily spending limit" in refused.value.message
    assert "raise the daily limit" in refused.value.hint
    with pytest.raises(PaymentRequired):
        client.check_key()  # while the account cannot pay, the probe says so
    sandbox.set_faults(payment_required=None)
    client.check_key()
    probes = [r for r in sandbox.received if r.dry_run]
    assert len(probes) == 2 and all(r.status in (200, 402) for r in probes)
    assert sandbox.ledger.requests == 0  # nothing was generated or billed


def test_a_refused_key_hint_mentions_a_zero_balance(sandbox: SandboxServer) -> None:
    client = IdeogramClient(sandbox.base_url, "wrong-key", "api-key", requests.Session(), 20, 20, 1 << 26)
    with pytest.raises(AuthError) as refused:
        send_remix(client, RemixRequest.model_validate(PRODUCT["request"]), image_bytes(), "a.jpg", "image/jpeg")
    assert "balance reaches zero" in refused.value.hint


def test_any_planned_request_can_be_quoted(sandbox: SandboxServer) -> None:
    quote = v2_client(sandbox).quote(
        RemixRequest.model_validate(PRODUCT["request"]), image_bytes(), "a.jpg", "image/jpeg"
    )
    assert (quote.usd_micros, quote.qualifier, quote.usd) == (60_000, "exact", 0.06)


def test_check_api_on_a_v2_config_proves_the_key_with_a_quote(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, rules=[PRODUCT])
    result = remixd("check", "--api", "-c", str(config), env=ENV)
    assert result.returncode == 0, result.stderr
    assert [r.dry_run for r in sandbox.received] == [True]
    assert sandbox.ledger.requests == 0
