"""The one place that knows which strings are secret, so every output path can scrub them.

The API key is registered as soon as it is read; logs, sidecars, error files and exception texts pass through
`scrub` before they leave the process, which also covers gateways that echo request headers back in errors.
A key is also registered in the spellings an echo may use: JSON-escaped (an error body quoting the header
inside a JSON string) and percent-encoded (an echoed URL or form body), and matched whatever its case (a
gateway that upper-cases what it echoes leaks the key just as well). `scrub_document` does the same for every
string, key and value, of a parsed answer before any of it is kept.
"""

import hashlib
import hmac
import json
import os
import re
import threading
import urllib.parse
from typing import Any

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4
_FINGERPRINTS = os.urandom(32)  # this process's own: a fingerprint is compared in memory, never kept


def register(secret: str | None) -> None:
    """Remember a secret; strings shorter than 4 characters are ignored (they would redact ordinary words)."""
    if not secret or len(secret) < MIN_SECRET_CHARS:
        return
    spellings = {
        secret,
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
    }
    global _pattern  # noqa: PLW0603 — one compiled pattern for the whole process, rebuilt on a new secret
    with _lock:
        _secrets.update(spelling for spelling in spellings if len(spelling) >= MIN_SECRET_CHARS)
        # Longest first, so a spelling that contains another is replaced whole.
        alternatives = "|".join(re.escape(known) for known in sorted(_secrets, key=len, reverse=True))
        _pattern = re.compile(alternatives, re.IGNORECASE)


def scrub(text: str) -> str:
    """Return `text` with every registered secret, in any case, replaced by a marker."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def scrub_document(document: Any) -> Any:
    """A parsed JSON document with every string in it scrubbed, keys included; other values unchanged."""
    if isinstance(document, str):
        return scrub(document)
    if isinstance(document, dict):
        return {scrub(key) if isinstance(key, str) else key: scrub_document(value) for key, value in document.items()}
    if isinstance(document, list):
        return [scrub_document(item) for item in document]
    return document


def fingerprint(*secrets: str) -> str:
    """Tells secrets apart without keeping them: an HMAC under a random key of this process, so it can be
    neither reversed nor checked against a guessed key anywhere else."""
    digest = hmac.new(_FINGERPRINTS, "\0".join(secrets).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
