"""Which API remixd talks to (Ideogram, a gateway, or the in-process sandbox), and whether its key works.

A reload builds a new client only when the `api:` settings or the key changed; while a rejected key pauses
submissions, the key is probed now and then, so a key fixed outside remixd lifts the pause without a reload.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import requests

from remixd.clock import Clock
from remixd.config.credentials import find_api_key
from remixd.config.model import ApiConfig, Config
from remixd.errors import ConfigError, Problem, RemixdError
from remixd.ideogram.client import IdeogramClient, RemixApi
from remixd.ideogram.multipart import Upload
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import GenerationState, PriceQuote, RemixResponse
from remixd.logs import get_logger
from remixd.work.retry import Pause

if TYPE_CHECKING:
    from remixd.daemon.metrics import ApiMetrics
    from remixd.sandbox.server import SandboxServer

log = get_logger(__name__)

AUTH_PROBE_S = (5.0, 300.0)  # first and longest wait between key probes while paused


class CurrentClient:
    """The client in force, for everyone who holds it. A reload with a new key or API setting swaps what is
    behind it, so a worker already waiting out an auth pause sends its next request with the new key."""

    def __init__(self, client: RemixApi, *, sandbox: bool = False) -> None:
        self._client = client
        self.sandbox = sandbox  # the client is the built-in sandbox: its jobs are marked so (never billed)

    def swap(self, client: RemixApi, *, sandbox: bool = False) -> None:
        self._client, self.sandbox = client, sandbox

    def endpoint_url(self, request: RemixRequest) -> str:
        return self._client.endpoint_url(request)

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        return self._client.upload(request, image, filename, content_type)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        return self._client.remix(request, upload, rule=rule)

    def generation(self, generation_id: str) -> GenerationState:
        return self._client.generation(generation_id)

    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote:
        return self._client.quote(request, image, filename, content_type)

    def download(self, url: str) -> bytes:
        return self._client.download(url)

    def check_key(self) -> None:
        self._client.check_key()

    def account(self) -> str:
        return self._client.account()


class ApiConnection:
    """Builds the client for the settings in force; owns the sandbox, started the first time it is asked for."""

    def __init__(self, environ: Mapping[str, str], session: requests.Session, clock: Clock) -> None:
        self._clock = clock
        self._environ = environ
        self._session = session
        self._sandbox: SandboxServer | None = None
        self._sandbox_key = f"sandbox-{secrets.token_hex(8)}"
        self._identity: tuple[object, str] | None = None  # (api settings, sha256 of the key)

    def build_client(self, config: Config, metrics: ApiMetrics | None) -> RemixApi:
        """The API client for `config.api`: Ideogram, a gateway, or the in-process sandbox."""
        found = find_api_key(config.api, self._environ)
        base_url, key = config.api.base_url, found.value
        rule_header = None  # the rule's name goes to the built-in sandbox only, for its stamp
        if config.api.sandbox:
            if self._sandbox is None:
                from remixd.sandbox.options import SandboxOptions  # loaded only when asked for
                from remixd.sandbox.server import SandboxServer

                self._sandbox = SandboxServer(SandboxOptions(api_keys=frozenset()))
                self._sandbox.start()
            # Any key goes in the sandbox; a random one, because a registered secret is scrubbed from every
            # log line and a word like "sandbox" would be scrubbed out of the sandbox's own event names.
            base_url, key = self._sandbox.base_url, self._sandbox_key
            from remixd.sandbox.options import RULE_HEADER

            rule_header = RULE_HEADER
            if config.api.auth == "bearer":
                base_url += "/ideogram"  # the gateway shape, so a bearer config is tried as it will run
        if not key:
            raise ConfigError(
                [
                    Problem(
                        str(config.source),
                        None,
                        "api",
                        f"no API key: ${config.api.api_key_env} is not set",
                        "export the key, set api.api_key_file, or set api.sandbox: true to try remixd without one",
                    )
                ]
            )
        self._identity = (config.api, hashlib.sha256(key.encode()).hexdigest())
        client: RemixApi = IdeogramClient(
            base_url,
            key,
            config.api.auth,
            self._session,
            config.api.timeout_s,
            config.api.download_timeout_s,
            config.api.max_download_bytes,
            config.api.allowed_result_hosts,
            key_source=found.source,
            clock=self._clock,
            async_v2=config.api.async_,
            probe_request=_probe_request(config),
            rule_header=rule_header,
        )
        if metrics is not None:
            from remixd.daemon.metrics import MeteredClient

            client = MeteredClient(client, metrics, self._clock)
        return client

    @property
    def sandbox(self) -> SandboxServer | None:
        """The built-in sandbox, once a client for it was built (api.sandbox: true)."""
        return self._sandbox

    def is_current(self, api: ApiConfig) -> bool:
        """True while `api` and its key are what the last client was built from; raises ConfigError when a
        key file cannot be read."""
        key = self._sandbox_key if api.sandbox else find_api_key(api, self._environ).value
        return (api, hashlib.sha256((key or "").encode()).hexdigest()) == self._identity

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()


class KeyProbe:
    """While `auth` is paused, check the key at growing intervals; lift the pause once it works again."""

    def __init__(self, auth: Pause, refresh: Callable[[], None] = lambda: None) -> None:
        self._auth = auth
        self._refresh = refresh  # before each probe: pick up a key fixed since (a key file read again)
        self._wait = AUTH_PROBE_S[0]
        self._next: float | None = None

    def step(self, client: RemixApi, now: float) -> None:
        """Called on every turn of the service's loop, with a monotonic `now`."""
        if not self._auth.is_paused:
            self._wait, self._next = AUTH_PROBE_S[0], None
            return
        self._next = self._next or now + self._wait
        if now >= self._next:
            self._wait, self._next = self._probe(client), None

    def _probe(self, client: RemixApi) -> float:
        """Ask once; the wait before the next probe."""
        wait = self._wait
        try:
            self._refresh()
            client.check_key()
        except RemixdError as error:
            log.info("remixd.api.probe_failed", error=error.message, next_probe_s=min(wait * 2, AUTH_PROBE_S[1]))
            return min(wait * 2, AUTH_PROBE_S[1])
        self._auth.resume()
        log.warning("remixd.api.resumed", reason="the API key works again")
        return AUTH_PROBE_S[0]


def _probe_request(config: Config) -> RemixRequest | None:
    """A v2 rule's request with a neutral prompt: quoting it proves the key for free (README, "Prices")."""
    for rule in config.rules:
        if rule.request.route.is_v2:
            return rule.request.with_prompt("remixd key check")
    return None


def check_key_alone(config: Config, environ: Mapping[str, str]) -> None:
    """Only the key, against the API: no journal, no folders, no metrics port, so it works beside a
    running daemon (which holds the port and the state_dir's lock). Raises AuthError when it is refused."""
    connection = ApiConnection(environ, requests.Session(), Clock())
    try:
        connection.build_client(config, None).check_key()
    finally:
        connection.close()
