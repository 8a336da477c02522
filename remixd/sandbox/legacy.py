"""The sandbox's legacy and 3.0 remix routes: ``POST /remix`` and ``POST /v1/ideogram-v3/remix``, answered
synchronously once the work is done.

Order of checks, chosen so each failure costs what Ideogram says it costs:
route -> auth -> injected 429/5xx -> multipart -> validation (400) -> safety (422) -> in-flight limit (429)
-> latency and hold -> work (images, URLs) -> bill -> injected 500 / reset after the work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING

from remixd.clock import Clock
from remixd.sandbox import reference
from remixd.sandbox.multipart import MultipartError, parse_multipart
from remixd.sandbox.replies import Action, Reply, echo_key, json_reply
from remixd.sandbox.results import make_items, rule_of
from remixd.sandbox.state import PartInfo, RecordDraft
from remixd.sandbox.validation import BadRequest, Order, Submission, extract_legacy, validate_legacy
from remixd.sandbox.validation_v3 import extract_v3, validate_v3

if TYPE_CHECKING:
    from remixd.sandbox.app import Sandbox


class LegacyApi:
    def __init__(self, sandbox: Sandbox, clock: Clock) -> None:
        self._sandbox = sandbox
        self._clock = clock

    def remix(self, v3: bool, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        sandbox = self._sandbox
        started_wall, started = sandbox.now(), self._clock.monotonic()
        draft = RecordDraft(path=path, header_names=tuple(sorted(headers)), arrived=started_wall)
        reply, order = self._remix_steps(v3, headers, body, draft, started_wall)
        return sandbox.answered(
            draft, reply, started, auth_scheme=draft.auth_scheme, images=order.num_images if order else 0
        )

    def _remix_steps(  # noqa: PLR0911 - one return per check, in the order the API applies them
        self, v3: bool, headers: Mapping[str, str], body: bytes, draft: RecordDraft, started_wall: float
    ) -> tuple[Reply, Order | None]:
        sandbox = self._sandbox
        draft.auth_scheme, draft.key_valid, auth_error = sandbox.authenticate(headers)
        if not draft.key_valid:
            status = sandbox.options.auth_status_v3 if v3 else sandbox.options.auth_status_legacy
            return json_reply(status, {"error": auth_error}), None
        if sandbox.take("rate_limit_next"):
            return sandbox.inflight_reply(), None
        if sandbox.take("fail_before_next"):
            status = sandbox.faults().fail_before_status
            return json_reply(status, {"error": "The service is temporarily unavailable (sandbox fault)."}), None
        try:
            parts = parse_multipart(body, headers.get("content-type"))
            draft.parts = tuple(PartInfo(p.name, p.filename, p.content_type, len(p.data)) for p in parts)
            submission: Submission = extract_v3(parts) if v3 else extract_legacy(parts)
            draft.fields, draft.image = submission.fields, submission.image
            order = validate_v3(submission, sandbox.options) if v3 else validate_legacy(submission, sandbox.options)
        except MultipartError as error:
            return sandbox.bad_request(400, str(error)), None
        except BadRequest as error:
            return sandbox.bad_request(error.status, error.detail), None
        token = sandbox.options.forbidden_token
        if token and token in order.prompt:
            return json_reply(422, {"error": reference.SAFETY_ERROR}), order
        if not sandbox.inflight.try_acquire(order.num_images, sandbox.options.inflight_limit):
            return sandbox.inflight_reply(), order
        try:
            reply = self._work(order, draft, headers, started_wall)
            if reply.status == HTTPStatus.OK and sandbox.take("echo_key_next"):
                reply = echo_key(reply, headers)
            if reply.status == HTTPStatus.OK and sandbox.take("drip_answers_next"):
                reply = dataclasses.replace(reply, action="drip")
            return reply, order
        finally:
            sandbox.inflight.release(order.num_images)

    def _work(self, order: Order, draft: RecordDraft, headers: Mapping[str, str], started_wall: float) -> Reply:
        sandbox = self._sandbox
        sandbox.wait_latency()
        data = make_items(sandbox, order, sandbox.faults(), headers.get("host"), rule=rule_of(headers))
        draft.billed = sandbox.accounts.charge(order.price_key, order.price_per_image, order.num_images)
        if sandbox.take("fail_after_next"):
            return json_reply(500, {"error": "Internal server error (sandbox fault, after the work was billed)."})
        created = datetime.fromtimestamp(started_wall, tz=UTC).isoformat(timespec="microseconds")
        action: Action = "reset" if sandbox.take("reset_after_next") else "send"
        return json_reply(200, {"created": created, "data": data}, action=action)
