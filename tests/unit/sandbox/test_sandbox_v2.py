"""The sandbox's v2 behaviour: async generations on its clock, in-flight places, quotes, 402, the poll-rate
limit, and unknown fields ignored but recorded."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from remixd.sandbox.app import Sandbox
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import FakeClock, wait_for
from tests.unit.sandbox.test_sandbox_openapi_v2 import KEY, png, post

GENERATION_S = 5.0


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    options = SandboxOptions(latency_s=GENERATION_S, poll_limit=4, poll_window_s=10.0)
    with SandboxServer(options, clock=FakeClock()) as running:
        running.set_faults(latency_s=0.0)  # synchronous requests answer at once; async ones take GENERATION_S
        yield running


def submit(server: SandboxServer, **fields: str) -> dict[str, Any]:
    response = post(server, "ideogram-4", {"prompt": "p", "async": "true", **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(server: SandboxServer, generation_id: str, key: str = KEY) -> requests.Response:
    return requests.get(f"{server.base_url}/v2/generations/{generation_id}", headers={"Api-Key": key}, timeout=30)


def test_an_async_generation_is_pending_then_completed_and_billed_once() -> None:
    options = SandboxOptions(latency_s=GENERATION_S)
    with SandboxServer(options, clock=FakeClock()) as server:
        ack = submit(server, num_images="3")
        assert server.in_flight == 3
        pending = poll(server, ack["generation_id"]).json()
        assert pending == {"generation_id": ack["generation_id"], "status": "pending", "created": pending["created"]}
        assert server.ledger.images == 0
        server.advance_clock(GENERATION_S)
        done = poll(server, ack["generation_id"]).json()
        assert done["status"] == "completed"
        assert [item["seed"] for item in done["data"]] == [ack["seed"]] * 3
        assert (server.ledger.images, server.ledger.usd, server.in_flight) == (3, 0.18, 0)
        poll(server, ack["generation_id"])
        assert server.ledger.images == 3


def test_a_generation_completes_and_bills_without_being_polled() -> None:
    with SandboxServer(SandboxOptions(latency_s=GENERATION_S), clock=FakeClock()) as server:
        submit(server)
        server.advance_clock(GENERATION_S)
        assert (server.ledger.images, server.pending_generations) == (1, 0)  # a crashed client is billed too


def test_an_async_submission_is_answered_before_its_images_are_made() -> None:
    # Made first, on a thread of the sandbox's process, they held the answer up ~7 ms: a window for a kill
    # between request and record (tests/e2e/test_kill_v2.py) that Ideogram's own answer does not have.
    clock = FakeClock()
    sandbox = Sandbox(SandboxOptions(latency_s=GENERATION_S, api_keys=frozenset({KEY})), clock)
    upload = requests.Request(
        "POST", "http://sandbox/", files=[("prompt", (None, "p")), ("async", (None, "true")), ("image", png())]
    ).prepare()
    assert isinstance(upload.body, bytes)
    headers = {"api-key": KEY, "content-type": str(upload.headers["Content-Type"])}
    reply = sandbox.handle("POST", "/v2/image/remix/ideogram-4", headers, upload.body)
    assert reply.status == 200
    assert ([g.made for g in sandbox.v2.pending()], len(sandbox.store)) == ([None], 0)
    assert reply.then is not None
    reply.then()  # what the wire does once the answer is sent
    wait_for(lambda: len(sandbox.store) == 1, timeout=10, message="images made while pending")


def test_a_generations_images_are_made_while_it_runs_and_expire_from_its_end() -> None:
    # At Ideogram the images exist when the generation completes: the poll that sees it must not make them.
    options, clock = SandboxOptions(latency_s=GENERATION_S, url_ttl_s=60), FakeClock()
    with SandboxServer(options, clock=clock) as server:
        ended = int(clock.wall() + GENERATION_S)
        ack = submit(server, num_images="2")
        wait_for(lambda: server.stored_images == 2, timeout=10, message="images made while pending")
        assert (server.pending_generations, server.polls.answered, server.ledger.images) == (1, 0, 0)
        assert poll(server, ack["generation_id"]).json()["status"] == "pending"
        server.advance_clock(GENERATION_S)
        done = poll(server, ack["generation_id"]).json()
        assert server.stored_images == 2  # the same images, not made again
        for item in done["data"]:
            assert f"exp={ended + 60}&" in item["url"]
            assert requests.get(item["url"], timeout=10).status_code == 200
        assert (server.ledger.images, server.in_flight) == (2, 0)


def test_pending_images_hold_their_in_flight_places() -> None:
    with SandboxServer(SandboxOptions(latency_s=GENERATION_S, inflight_limit=10), clock=FakeClock()) as server:
        submit(server, num_images="8")
        refused = post(server, "ideogram-4", {"prompt": "p", "async": "true", "num_images": "3"})
        assert refused.status_code == 429
        assert refused.json()["reject_reason"] == "inflight_limit"
        assert submit(server, num_images="2")["generation_id"]
        server.advance_clock(GENERATION_S)
        assert submit(server, num_images="3")["generation_id"]
        assert server.in_flight == 3


def test_a_failed_generation_says_why_and_is_not_billed(server: SandboxServer) -> None:
    server.set_faults(fail_generation_next=1)
    ack = submit(server)
    server.advance_clock(GENERATION_S)
    body = poll(server, ack["generation_id"]).json()
    assert (body["status"], body["failure_reason"]) == ("failed", "content_policy_violation")
    assert "data" not in body
    assert (server.ledger.images, server.in_flight) == (0, 0)


def test_a_dry_run_quotes_without_generating_or_billing(server: SandboxServer) -> None:
    response = post(
        server, "ideogram-4", {"prompt": "p", "num_images": "2", "rendering_speed": "quality"}, query="?dry_run=true"
    )
    assert response.json() == {
        "object": "price_quote",
        "billing_identifier": "ideogram_v4_remix",
        "quantity": 2,
        "usd_micros": 200_000,
        "credit_millis": 20_000,
        "qualifier": "exact",
    }
    assert (server.ledger.requests, server.in_flight, server.stored_images) == (0, 0, 0)
    assert server.received[-1].dry_run is True
    auto = post(server, "auto", {"prompt": "p"}, query="?dry_run=true").json()
    assert (auto["qualifier"], auto["upper_bound_usd_micros"]) == ("estimate", 60_000)


def test_an_account_priced_apart_from_the_list_is_quoted_and_billed_alike() -> None:
    # "Your account's prices may differ": the quote is what the account pays, so a client that budgets at the
    # list price instead is caught by the ledger.
    options = SandboxOptions(latency_s=GENERATION_S, account_price_factor=Decimal("1.5"))
    with SandboxServer(options, clock=FakeClock()) as server:
        fields = {"prompt": "p", "num_images": "2", "rendering_speed": "turbo"}
        quote = post(server, "ideogram-4", fields, query="?dry_run=true").json()
        assert (quote["usd_micros"], quote["qualifier"]) == (90_000, "exact")  # list: 2 x $0.03
        submit(server, **fields)
        server.advance_clock(GENERATION_S)
        assert server.pending_generations == 0
        assert server.ledger.usd == pytest.approx(quote["usd_micros"] / 1_000_000)
        auto = post(server, "auto", {"prompt": "p", "async": "true"}).json()
        server.advance_clock(GENERATION_S)
        assert poll(server, auto["generation_id"]).json()["usage_cost_usd_micros"] == 75_000  # list: $0.05


def test_auto_reports_what_it_billed(server: SandboxServer) -> None:
    ack = post(server, "auto", {"prompt": "p", "async": "true"}).json()
    server.advance_clock(GENERATION_S)
    assert poll(server, ack["generation_id"]).json()["usage_cost_usd_micros"] == 50_000
    assert server.ledger.usd == 0.05


def test_402_while_the_account_cannot_pay_quotes_included(server: SandboxServer) -> None:
    server.set_faults(payment_required="daily_limit")
    for query in ("", "?dry_run=true"):
        response = post(server, "ideogram-3", {"prompt": "p"}, query=query)
        assert (response.status_code, response.json()["reject_reason"]) == (402, "daily_limit")
    server.set_faults(payment_required=None)
    assert post(server, "ideogram-3", {"prompt": "p"}).status_code == 200


def test_polls_are_limited_per_organisation_with_retry_after(server: SandboxServer) -> None:
    ack = submit(server)
    statuses = [poll(server, ack["generation_id"]).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    limited = poll(server, ack["generation_id"])
    assert limited.headers["Retry-After"] == "10"
    server.advance_clock(10.0)
    assert poll(server, ack["generation_id"]).status_code == 200
    assert (server.polls.answered, server.polls.limited) == (5, 2)


def test_unknown_fields_are_ignored_like_ideogram_does_but_recorded(server: SandboxServer) -> None:
    response = post(server, "ideogram-4", {"prompt": "p", "seed": "7", "magic_prompt": "on"})
    assert response.status_code == 200
    assert server.received[-1].ignored_fields == ("magic_prompt", "seed")
    assert post(server, "ideogram-3", {"prompt": "p", "seed": "7"}).status_code == 200
    assert not server.received[-1].ignored_fields


@pytest.mark.parametrize(
    ("model", "fields", "files", "answer"),
    [
        ("ideogram-4", {"rendering_speed": "TURBO"}, ("image",), (400, "is not one of")),  # v2 enums are lowercase
        ("ideogram-3", {"aspect_ratio": "16x9", "resolution": "1024x1024"}, ("image",), (400, "cannot be combined")),
        ("ideogram-3", {"style_preset": "watercolor", "style_codes": "AAFF5733"}, ("image",), (400, "style_preset")),
        ("ideogram-3-character", {}, ("image",), (400, "A character reference is required")),
        ("ideogram-3-custom-model", {"custom_model_uri": "m"}, ("image",), (400, "does not match")),
        ("ideogram-3", {}, (), (400, "'image'")),
        (
            "ideogram-3",
            {"image_asset_identifier": '{"asset_id":"a","asset_type":"UPLOAD"}'},
            ("image",),
            (404, "not found"),
        ),
        ("ideogram-9", {}, ("image",), (404, "no model")),
    ],
)
def test_refusals(
    server: SandboxServer, model: str, fields: dict[str, str], files: tuple[str, ...], answer: tuple[int, str]
) -> None:
    status, says = answer
    response = post(server, model, {"prompt": "p", **fields}, files)
    assert response.status_code == status
    assert says in response.text
    assert server.ledger.requests == 0


def test_image_weight_with_a_shape_change_is_refused_on_ideogram_4(server: SandboxServer) -> None:
    # The source is 64x48 (4:3).
    assert (
        post(server, "ideogram-4", {"prompt": "p", "image_weight": "30", "resolution": "1152x864"}).status_code == 200
    )
    refused = post(server, "ideogram-4", {"prompt": "p", "image_weight": "30", "resolution": "1024x1024"})
    assert (refused.status_code, "aspect ratio" in refused.text) == (400, True)
    assert post(server, "ideogram-4", {"prompt": "p", "resolution": "1024x1024"}).status_code == 200


def test_results_have_the_declared_resolution_or_the_sources_shape(server: SandboxServer) -> None:
    sized = post(server, "ideogram-4", {"prompt": "p", "resolution": "1440x2560"}).json()
    assert sized["data"][0]["resolution"] == "1440x2560"
    kept = post(server, "ideogram-4", {"prompt": "p"}).json()["data"][0]["resolution"]
    width, height = (int(side) for side in kept.split("x"))
    assert abs(width / height - 64 / 48) < 0.02
    assert 0.9e6 < width * height < 1.2e6


def test_bad_keys_and_ids(server: SandboxServer) -> None:
    ack = submit(server)
    assert poll(server, ack["generation_id"], key="wrong").status_code == 401
    assert poll(server, "no such id!").status_code == 400
    assert poll(server, "A" * 22).status_code == 404
    response = requests.post(
        f"{server.base_url}/v2/image/remix/ideogram-4",
        files=[("prompt", (None, "p")), ("image", ("a.png", png(), "image/png"))],
        headers={"Api-Key": "wrong"},
        timeout=30,
    )
    assert response.status_code == 401
