"""How the key is sent (README, "Configuration": `api.auth`), and what a refused key's message says to fix it.

The key and a gateway's password in `base_url` are registered as secrets before anything can print them.
"""

from __future__ import annotations

import urllib.parse

from remixd import secrets


def auth_headers(auth: str, api_key: str) -> dict[str, str]:
    """The header the key travels in: Ideogram's `Api-Key`, or a gateway's `Authorization: Bearer`."""
    if auth not in ("api-key", "bearer"):
        raise ValueError(f"auth must be 'api-key' or 'bearer', not {auth!r}")
    secrets.register(api_key)  # before anything can fail and print it
    return {"Api-Key": api_key} if auth == "api-key" else {"Authorization": f"Bearer {api_key}"}


def auth_hint(auth: str, key_source: str) -> str:
    # Said with every refused key: where it was read, how it was sent, and how a fix takes effect.
    reload = (
        "; remixd reads a fixed key file again at its next probe; after a config edit (or a new "
        "environment variable, which needs a restart) reload: systemctl reload remixd, or kill -HUP the "
        "remixd process"
    )
    if auth == "api-key":
        return (
            f"check the key in {key_source}; it was sent as the Api-Key header (api.auth: "
            "api-key). A gateway (base_url ending in /ideogram) usually needs api.auth: bearer" + reload
        )
    return (
        f"check the key in {key_source}; it was sent as Authorization: Bearer (api.auth: bearer). "
        "api.ideogram.ai itself needs api.auth: api-key" + reload
    )


def split_credentials(base_url: str) -> tuple[str, str]:
    """(the URL to post to, the URL to show): the password of a `user:password@` URL is registered as a
    secret and left out of the shown one."""
    try:
        parts = urllib.parse.urlsplit(base_url)
        password = parts.password
    except ValueError:
        return base_url, base_url
    if parts.username is None and password is None:
        return base_url, base_url
    secrets.register(password)
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return base_url, urllib.parse.urlunsplit(shown)
