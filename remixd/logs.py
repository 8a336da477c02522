"""structlog set-up: console lines on a terminal, JSON lines for journald, secrets scrubbed everywhere.

Modules take their logger from `get_logger`, which imports structlog at the first line logged: importing it
(asyncio and ssl come with it) is about a fifth of the start of a command that logs nothing, such as
`remixd status` (README, "A year of journal"). The standard `logging` module, for its level numbers, comes then
too.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any, Protocol, TextIO, cast

from remixd.secrets import scrub

LEVELS = ("debug", "info", "warning", "error")


class LogStream(Protocol):
    """Where log lines go: a file, or `once`'s progress bar, which keeps them above itself."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


def _scrub_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a key that reached a log call through an exception text or an echoed header."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = scrub(value)
        elif isinstance(value, BaseException):
            event_dict[key] = scrub(str(value))
    return event_dict


class Logger:
    """structlog's logger named `name`, imported when the first line is logged."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._logger is None:
            self._logger = _structlog().get_logger(self._name)  # a proxy: it follows configure and capture_logs
        return getattr(self._logger, method)


def get_logger(name: str) -> Logger:
    """The logger of module `name` (`log = get_logger(__name__)`)."""
    return Logger(name)


# configure()'s settings until the first line is logged: applied then, by _structlog.
_PENDING: list[tuple[str, str, LogStream]] = []


def configure(log_format: str = "auto", level: str = "info", stream: LogStream | None = None) -> None:
    """Configure structlog once per process; `auto` means console on a terminal, JSON otherwise.

    In a process that has imported structlog already (a test, a program embedding remixd) this applies at
    once, so capture_logs and friends see it; otherwise at the first line logged.
    """
    _PENDING[:] = [(log_format, level, stream or sys.stderr)]
    if "structlog" in sys.modules:
        _structlog()


def _structlog() -> Any:
    """structlog, imported here rather than at import time (see the module's docstring), and configured."""
    import logging

    import structlog

    for log_format, level, stream in _PENDING:
        as_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
        renderer: Any = (
            structlog.processors.JSONRenderer(sort_keys=True)
            if as_json
            else structlog.dev.ConsoleRenderer(colors=stream.isatty())
        )
        processors: list[Any] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_secrets,
            renderer,
        ]
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
            logger_factory=structlog.PrintLoggerFactory(cast(TextIO, stream)),
            cache_logger_on_first_use=False,
        )
    _PENDING.clear()
    return structlog
