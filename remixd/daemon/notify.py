"""systemd's notify protocol (sd_notify) without libsystemd: one datagram per message to $NOTIFY_SOCKET.

Nothing happens without NOTIFY_SOCKET, so the same code runs in a terminal, in tests and under systemd.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from remixd.logs import get_logger

log = get_logger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        # "@name" is Linux's abstract namespace, spelled with a leading NUL on the wire.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = environ.get("WATCHDOG_USEC", "")
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        mine = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_interval_s = int(watchdog_usec) / 2_000_000 if watchdog_usec.isdigit() and mine else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, **fields: str) -> None:
        """Send `KEY=value` lines; errors are logged, never raised (a lost STATUS= must not stop work)."""
        if not self._address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as error:
            log.warning("remixd.notify.failed", error=str(error))

    def ready(self, status: str) -> None:
        self.send(READY="1", STATUS=status, MAINPID=str(os.getpid()))

    def status(self, status: str) -> None:
        self.send(STATUS=status)

    def watchdog(self) -> None:
        self.send(WATCHDOG="1")

    def starting(self, status: str, extend_s: float) -> None:
        """Still starting, and working: systemd gives the start `extend_s` more (a start silent for
        TimeoutStartSec is killed), and the watchdog is pinged (systemd arms it only at READY=1; a ping
        costs nothing and covers a systemd that arms it sooner)."""
        fields = {"STATUS": status, "EXTEND_TIMEOUT_USEC": str(round(extend_s * 1_000_000))}
        if self.watchdog_interval_s is not None:
            fields["WATCHDOG"] = "1"
        self.send(**fields)

    def reloading(self, monotonic_usec: int) -> None:
        # systemd ≥ 253 (Type=notify-reload) wants MONOTONIC_USEC with RELOADING=1; older ones ignore it.
        self.send(RELOADING="1", MONOTONIC_USEC=str(monotonic_usec), STATUS="reloading the configuration")

    def stopping(self) -> None:
        self.send(STOPPING="1", STATUS="stopping: finishing in-flight work")
