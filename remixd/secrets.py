"""The one place that knows which strings are secret, so every output path can scrub them.

The API key is registered as soon as it is read; logs, sidecars, error files and exception texts pass through
`scrub` before they leave the process, which also covers gateways that echo request headers back in errors.
A key is also registered in the spellings an echo may use: JSON-escaped (an error body quoting the header
inside a JSON string) and percent-encoded (an echoed URL or form body).
"""

import json
import threading
import urllib.parse

_lock = threading.Lock()
_secrets: set[str] = set()
REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4


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
    with _lock:
        _secrets.update(spelling for spelling in spellings if len(spelling) >= MIN_SECRET_CHARS)


def scrub(text: str) -> str:
    """Return `text` with every registered secret replaced by a marker."""
    if not _secrets:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
