"""Answers as plain values: what the HTTP layer sends (or, for injected faults, fails to send)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Action = Literal["send", "reset", "truncate", "drip"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    # reset: drop the connection unanswered; truncate: send half the body; drip: one byte at a time, slowly
    action: Action = "send"
    # Work that follows the answer: run once the answer is on the wire, so the client never waits for it.
    then: Callable[[], None] | None = None


def also_then(reply: Reply, action: Callable[[], None]) -> Reply:
    """`reply` with `action` run once it is on the wire, before what it had to do then already."""
    earlier = reply.then

    def both() -> None:
        action()
        if earlier is not None:
            earlier()

    return replace(reply, then=both)


def json_reply(status: int, document: Any, headers: tuple[tuple[str, str], ...] = (), action: Action = "send") -> Reply:
    return Reply(status, json.dumps(document).encode(), headers=headers, action=action)


def problem(status: int, title: str, detail: str) -> Reply:
    """connexion's RFC 7807 body, which Ideogram's backend (a connexion app) most likely sends."""
    return json_reply(status, {"detail": detail, "status": status, "title": title, "type": "about:blank"})


def echo_key(reply: Reply, headers: Mapping[str, str]) -> Reply:
    """A gateway that echoes request headers into a 200 answer: the key as sent in `created`, upper-cased in
    each item's prompt and with its case swapped in style_type, so a client must scrub every field, any case."""
    key = headers.get("api-key", "").strip() or headers.get("authorization", "")[7:].strip()
    document = json.loads(reply.body)
    document["created"] = f"{document['created']} (key {key})"
    for item in document["data"]:
        item["prompt"] = f"{item['prompt']} [{key.upper()}]"
        item["style_type"] = key.swapcase()
    return json_reply(reply.status, document, reply.headers, action=reply.action)
