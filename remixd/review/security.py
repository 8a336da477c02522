"""Who may use the review page and what a request may do: every answer's headers, the token, CSRF, the Host.

Loopback without a token; any other address only with `ui.token_file` (config.load refuses the rest). A page on
loopback is still reachable from a hostile web page through the user's browser, so: the Host header must name
the page itself (DNS rebinding), state changes are POSTs carrying the page's CSRF token, and the CSP allows
nothing but the page's own scripts, styles and images.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from email.message import Message
from http.cookies import CookieError, SimpleCookie

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
COOKIE = "remixd_ui"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Guard:
    def __init__(self, token: str | None, host: str, port: int) -> None:
        self._token = token
        self.csrf = secrets.token_urlsafe(32)  # per process: a page from before a restart must be reloaded
        self._session = (
            None if token is None else hmac.new(token.encode(), b"remixd-ui-session", hashlib.sha256).hexdigest()
        )
        bracketed = f"[{host}]" if ":" in host else host
        self._hosts = {f"{name}:{port}" for name in (*LOOPBACK_NAMES, bracketed)}

    @property
    def needs_token(self) -> bool:
        return self._token is not None

    def host_allowed(self, host: str | None) -> bool:
        """Behind a token any name may reach the page; without one only the loopback names (a rebound DNS name
        pointing a hostile site at 127.0.0.1 sends its own name here)."""
        if self._token is not None:
            return True
        return host is not None and host.lower() in self._hosts

    def token_matches(self, offered: str) -> bool:
        return self._token is not None and hmac.compare_digest(offered.encode(), self._token.encode())

    def authorised(self, headers: Message) -> bool:
        if self._token is None or self._session is None:
            return True
        bearer = headers.get("Authorization", "")
        if bearer.startswith("Bearer ") and self.token_matches(bearer.removeprefix("Bearer ").strip()):
            return True
        session = _cookie(headers.get("Cookie", ""))
        return session is not None and hmac.compare_digest(session.encode(), self._session.encode())

    def session_cookie(self) -> str:
        """Set after `?token=` matched, so the token leaves the address bar and the history."""
        assert self._session is not None
        return f"{COOKIE}={self._session}; HttpOnly; SameSite=Strict; Path=/"

    def state_change_allowed(self, headers: Message, form: dict[str, list[str]]) -> bool:
        """A POST must carry this process's CSRF token, and not come from another site."""
        if headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        offered = form.get("csrf", [""])[0]
        return hmac.compare_digest(offered.encode(), self.csrf.encode())


def _cookie(header: str) -> str | None:
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return None if morsel is None else morsel.value
