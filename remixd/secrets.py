"""The one place that knows which strings are secret, so every output path can scrub them.

The API key is registered as soon as it is read; logs, sidecars, error files and exception texts pass through
`scrub` before they leave the process, which also covers gateways that echo request headers back in errors.
"""

import threading

_lock = threading.Lock()
_secrets: set[str] = set()
REDACTED = "[REDACTED]"


def register(secret: str | None) -> None:
    """Remember a secret; strings shorter than 4 characters are ignored (they would redact ordinary words)."""
    if secret and len(secret) >= 4:
        with _lock:
            _secrets.add(secret)


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
