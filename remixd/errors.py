"""The error tree. Every error carries a message a person reads and a hint that says how to fix it.

Only `cli.py` maps these to exit statuses; stages raise them, the worker records them per job.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, TypeVar

from remixd.secrets import scrub

MAX_RESPONSE_CHARS = 4000  # error files keep the API's answer, but a 5 MB HTML error page helps nobody


class RemixdError(Exception):
    """Base of every error remixd raises on purpose."""

    kind = "remixd"

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = scrub(message)
        self.hint = scrub(hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of an error file."""
        return {"kind": self.kind, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class Problem:
    """One located config problem: `file:line: key.path: message — fix`."""

    file: str
    line: int | None
    key_path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        fix = f" — {self.fix}" if self.fix else ""
        return scrub(_one_line(f"{where}:{key} {self.message}{fix}"))


def _one_line(text: str) -> str:
    """Control characters from the file (a value of '\\r', a key with a newline) are shown escaped, so each
    problem stays one `file:line: …` line that editors and `grep` can use."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class ConfigError(RemixdError):
    """The configuration is invalid; carries every problem found, not just the first."""

    kind = "config"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            "\n".join(str(p) for p in self.problems) or "invalid configuration",
            f"fix the {count} problem{'s' if count != 1 else ''} above and run `remixd check` again",
        )


class ApiError(RemixdError):
    """The API answered with an error, or could not be reached."""

    kind = "api"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        http_status: int | None = None,
        response: Any = None,
    ) -> None:
        super().__init__(message, hint)
        self.http_status = http_status
        self.response = _truncate(response)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.http_status is not None:
            data["http_status"] = self.http_status
        if self.response is not None:
            data["response"] = self.response
        return data


class ApiRejected(ApiError):
    """A permanent rejection (400, 422 safety, other 4xx): sending it again gives the same answer."""

    kind = "api_rejected"


class ApiUnavailable(ApiError):
    """A transient failure (429, 5xx, connection trouble): worth retrying later.

    `sent` tells whether the request may have reached the server (and so may have been billed);
    `retry_after` is the server's `Retry-After` in seconds when it gave one.
    """

    kind = "api_unavailable"

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        http_status: int | None = None,
        response: Any = None,
        sent: bool = True,
        retry_after: float | None = None,
        inflight_limit: bool = False,
    ) -> None:
        super().__init__(message, hint, http_status=http_status, response=response)
        self.sent = sent
        self.retry_after = retry_after
        self.inflight_limit = inflight_limit


class AuthError(ApiError):
    """401/403: the key is missing, wrong or not allowed. Pauses all submissions instead of failing inputs."""

    kind = "auth"


class PaymentRequired(AuthError):
    """402 (or a billing reject_reason): no retry helps until the balance or limit changes, for any file.

    An AuthError so the worker pauses every submission instead of failing each input in turn.
    """

    kind = "payment_required"


class UrlExpired(ApiError):
    """A result URL answered 403/410 after its signed lifetime: the image cannot be fetched any more."""

    kind = "url_expired"


class InputError(RemixdError):
    """The input file cannot be processed (not an image, truncated, too large, …)."""

    kind = "input"


class OutputError(RemixdError):
    """A result or a disposal could not be written (permissions, full disk, …); retried, never lost."""

    kind = "output"


class JobFailed(Exception):
    """A job failed for good (already recorded in the journal): its input fails with `error`."""

    def __init__(self, error: RemixdError) -> None:
        super().__init__(str(error))
        self.error = error


E = TypeVar("E", bound=RemixdError)


def with_hint(error: E, hint: str) -> E:
    """The same error with the hint that fits how remixd handles it."""
    changed = copy.copy(error)
    changed.hint = hint
    return changed


def _truncate(response: Any) -> Any:
    """Keep error bodies readable and secret-free: long texts are cut, secrets scrubbed."""
    if response is None:
        return None
    if isinstance(response, (dict, list)):
        return _truncate_document(response)
    text = scrub(str(response))
    if len(text) > MAX_RESPONSE_CHARS:
        return text[:MAX_RESPONSE_CHARS] + f"… [{len(text) - MAX_RESPONSE_CHARS} more characters cut]"
    return text


def _truncate_document(response: dict[str, Any] | list[Any]) -> Any:
    """A JSON answer keeps its shape while it is short; secrets are redacted inside its strings."""
    try:
        text = json.dumps(response, sort_keys=True)
    except (TypeError, ValueError, RecursionError):  # repr() would recurse just as deep
        return f"[an answer of type {type(response).__name__} that cannot be shown as JSON]"
    clean = scrub(text)
    if clean == text and len(text) <= MAX_RESPONSE_CHARS:
        return response
    if len(clean) <= MAX_RESPONSE_CHARS:
        try:
            return json.loads(clean)
        except ValueError:
            pass  # a secret spanning JSON syntax: keep the scrubbed text instead
    return _truncate(clean)
