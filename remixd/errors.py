"""The error tree. Every error carries a message a person reads and a hint that says how to fix it.

    RemixdError                 kind "remixd": base of every error remixd raises on purpose
    ├── ConfigError             "config": every located Problem of a config at once; exit status 2
    ├── ApiError                "api": the API answered with an error, or could not be reached
    │   ├── ApiRejected         "api_rejected": permanent (400, 422 safety, other 4xx); the input fails
    │   ├── ApiUnavailable      "api_unavailable": transient (429, 5xx, connection); retried within the policy
    │   ├── AuthError           "auth": 401/403; pauses every submission until the key works
    │   │   └── PaymentRequired "payment_required": 402 or a billing reject_reason; pauses likewise
    │   └── UrlExpired          "url_expired": a result link past its lifetime; the input fails
    ├── InputError              "input": the file cannot be processed; it goes to the failed folder
    ├── OutputError             "output": a result or disposal cannot be written; retried, never lost
    ├── JournalError            "journal": the journal cannot be opened or written
    │   └── JournalUnwritable   "journal": a write failed for now (full disk, I/O error, read-only); tried again
    ├── InboxUnavailable        "inbox_unavailable": an inbox is missing or unmounted; it is paused
    ├── AlreadyRunning          "already_running": another remixd holds the state_dir's lock; exit status 3
    └── StateDirUnusable        "state_dir": state_dir cannot be created or written; nothing starts

Two control-flow signals are not errors and never reach a person:

    Stopped     the daemon is stopping; the job stays where the journal says it is.
    JobFailed   a job failed for good and is already journalled; its input fails with `.error`.

An error travels as an `ErrorRecord` (kind, message, hint, HTTP status, the API's answer): from the worker
to the journal, from the journal to the error file and to `remixd status`, and back again on a resume,
without losing its kind. Only `cli.py` maps errors to exit statuses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
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

    def record(self) -> ErrorRecord:
        """The error as a value: what the journal keeps, the error file shows and a resume raises again."""
        return ErrorRecord(self.kind, self.message, self.hint)


@dataclass(frozen=True)
class ErrorRecord:
    """An error as it travels: worker -> journal -> error file -> `remixd status` (and back on a resume).

    `to_json` is the `error` object of a `remixd.error/1` file and the journal's stored form; `from_json`
    is the one place that reads it back.
    """

    kind: str
    message: str
    hint: str = ""
    http_status: int | None = None
    response: Any = None  # the API's answer, scrubbed of secrets and cut to MAX_RESPONSE_CHARS

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "message": self.message, "hint": self.hint}
        if self.http_status is not None:
            data["http_status"] = self.http_status
        if self.response is not None:
            data["response"] = self.response
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ErrorRecord:
        """Read back what `to_json` wrote (or an older journal's row; missing fields get defaults)."""
        data = data or {}
        status = data.get("http_status")
        return cls(
            kind=str(data.get("kind") or "remixd"),
            message=str(data.get("message") or "the job failed"),
            hint=str(data.get("hint") or ""),
            http_status=status if isinstance(status, int) else None,
            response=data.get("response"),
        )


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

    def record(self) -> ErrorRecord:
        return ErrorRecord(self.kind, self.message, self.hint, self.http_status, self.response)


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


class JournalError(RemixdError):
    """The journal cannot be opened or written, or a state change breaks the state machine (a bug)."""

    kind = "journal"


class JournalUnwritable(JournalError):
    """A write the journal could not take for now (a full state fs, an I/O error, a read-only mount): what it
    held, such as an answer already paid for, is kept and written again once the journal takes it."""


class InboxUnavailable(RemixdError):
    """The inbox folder is missing, unmounted or unreadable: pause the inbox and retry later. Never read
    this as 'every file in it was deleted'."""

    kind = "inbox_unavailable"


class AlreadyRunning(RemixdError):
    """Another remixd holds the state_dir's lock."""

    kind = "already_running"


class StateDirUnusable(RemixdError):
    """state_dir is read-only or cannot be created: nothing can be journalled, so nothing may start."""

    kind = "state_dir"


class Stopped(Exception):
    """Control flow, not an error: the daemon is stopping; leave the job where the journal says it is."""


class JobFailed(Exception):
    """Control flow, not an error: a job failed for good (already journalled); its input fails with `error`."""

    def __init__(self, error: ErrorRecord) -> None:
        super().__init__(error.message)
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
