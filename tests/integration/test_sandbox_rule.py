"""The rule's name on the built-in sandbox's stamp: sent to it alone, never to Ideogram or a gateway."""

from __future__ import annotations

from pathlib import Path

from remixd.sandbox.options import RULE_HEADER
from remixd.sandbox.results import rule_of, stamp_label
from remixd.sandbox.server import SandboxServer
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, write_config

IDEOGRAM_HEADERS = {"accept", "accept-encoding", "api-key", "connection", "content-length", "content-type", "host",
                    "user-agent"}  # fmt: skip


def test_the_built_in_sandbox_is_told_each_request_s_rule(tmp_path: Path) -> None:
    v2 = {"name": "square", "match": ["*.jpg"], "request": {"prompt": "a square {stem}", "model": "ideogram-3"}}
    config = write_config(tmp_path, None, rules=[{**POSTER, "continue": True}, v2])  # api.sandbox: true
    make_image(tmp_path / "inbox/a.jpg")
    service = make_service(config, "once", {})

    service.run()

    built_in = service.parts.connection.sandbox
    assert built_in is not None
    remixes = [received for received in built_in.received if received.method == "POST" and not received.dry_run]
    assert sorted(received.path for received in remixes) == ["/remix", "/v2/image/remix/ideogram-3"]
    assert all(RULE_HEADER.lower() in received.header_names for received in remixes)
    assert len(list((tmp_path / "outbox").glob("a.*.1.png"))) == 2


def test_ideogram_or_a_gateway_receives_nothing_but_its_own_headers(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)  # the sandbox standing in for Ideogram, at a base_url
    make_image(tmp_path / "inbox/a.jpg")

    make_service(config, "once", {"IDEOGRAM_API_KEY": TEST_KEY}).run()

    [received] = sandbox.received
    assert received.status == 200
    assert set(received.header_names) == IDEOGRAM_HEADERS


def test_the_stamp_names_the_rule_beside_the_model_and_seed() -> None:
    assert stamp_label("V_2", 7, (1, 2), "poster") == "SANDBOX  rule poster  V_2  seed 7  1/2"
    assert stamp_label("V_2", 7, (1, 2), None) == "SANDBOX  V_2  seed 7  1/2"  # a client that does not say
    assert rule_of({RULE_HEADER.lower(): "x" * 41}) is None  # not a rule name remixd writes: not shown
    assert rule_of({RULE_HEADER.lower(): "<script>"}) is None
