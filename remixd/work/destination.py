"""Where a job is sent is part of what it is: a result of the sandbox is never a duplicate of real work.

A request's fingerprint (`ideogram.requests`) says what is sent; a job's fingerprint adds where it is sent
(README "What lands on disk"), so a photo tried in the sandbox is sent to Ideogram once `api.sandbox` is
false, instead of being recorded as a duplicate of the sandbox's stamped placeholder. Requests to Ideogram
itself keep the request's fingerprint as it was, so results journalled before destinations counted are
still found as duplicates; anywhere else (the sandbox, a gateway) is folded in.
"""

from __future__ import annotations

import hashlib

IDEOGRAM = "https://api.ideogram.ai"  # api.base_url's default
SANDBOX = "sandbox"  # the built-in sandbox, whatever loopback port it has this run


def destination(base_url: str, *, sandbox: bool) -> str:
    return SANDBOX if sandbox else base_url.rstrip("/")


def job_fingerprint(request_fingerprint: str, where: str) -> str:
    if where == IDEOGRAM:
        return request_fingerprint
    return hashlib.sha256(f"{where}\n{request_fingerprint}".encode()).hexdigest()
