"""Test-only HTTP controls under ``/_sandbox/``, for tests that run remixd as a subprocess.

GET  /_sandbox/state    ledger, received requests, downloads, faults, in-flight images, stored images
POST /_sandbox/faults   JSON object of Faults fields to change (see options.Faults); answers the new faults
POST /_sandbox/reset    forget everything: records, ledger, faults, images, clock offset; opens the hold
POST /_sandbox/clock    {"advance_s": N}: move the sandbox clock forward (expire URLs)
POST /_sandbox/hold     requests wait after validation (and count as in flight) until release
POST /_sandbox/release
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from remixd.sandbox.replies import Reply, json_reply, problem

if TYPE_CHECKING:
    from remixd.sandbox.app import Sandbox


def handle_control(  # noqa: PLR0911 - one return per control and per refusal
    sandbox: Sandbox, method: str, path: str, body: bytes
) -> Reply:
    name = path.removeprefix("/_sandbox/")
    if name == "state":
        if method != "GET":
            return problem(405, "Method Not Allowed", "use GET")
        return json_reply(200, state_document(sandbox))
    if name not in ("faults", "reset", "clock", "hold", "release"):
        return problem(404, "Not Found", f"no sandbox control {name!r}")
    if method != "POST":
        return problem(405, "Method Not Allowed", "use POST")
    document: Any = {}
    if body.strip():
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return problem(400, "Bad Request", "the body must be a JSON object")
    if not isinstance(document, dict):
        return problem(400, "Bad Request", "the body must be a JSON object")
    if name == "faults":
        try:
            faults = sandbox.set_faults(**document)
        except (TypeError, ValueError) as error:
            return problem(400, "Bad Request", str(error))
        return json_reply(200, faults.as_dict())
    if name == "clock":
        advance = document.get("advance_s")
        if isinstance(advance, bool) or not isinstance(advance, int | float):
            return problem(400, "Bad Request", "advance_s must be a number of seconds")
        sandbox.advance_clock(float(advance))
        return json_reply(200, {"now": sandbox.now()})
    {"reset": sandbox.reset, "hold": sandbox.hold, "release": sandbox.release}[name]()
    return json_reply(200, {"ok": True})


def state_document(sandbox: Sandbox) -> dict[str, Any]:
    sandbox.v2.settle()  # async generations that have ended by now are billed
    ledger = sandbox.accounts.snapshot()
    return {
        "ledger": {
            "requests": ledger.requests,
            "images": ledger.images,
            "usd": ledger.usd,
            "by_price": dict(ledger.by_price),
        },
        "received": [dataclasses.asdict(record) for record in sandbox.received()],
        "downloads": [dataclasses.asdict(record) for record in sandbox.downloads()],
        "faults": sandbox.faults().as_dict(),
        "in_flight_images": sandbox.inflight.images,
        "stored_images": len(sandbox.store),
        "pending_generations": len(sandbox.v2.pending()),
        "polls": dataclasses.asdict(sandbox.v2.poll_counts),
        "now": sandbox.now(),
    }
