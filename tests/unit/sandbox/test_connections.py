"""The sandbox takes connections as a real server does: many opened at once all get through."""

from __future__ import annotations

import contextlib
import socket

from remixd.clock import SYSTEM_CLOCK
from remixd.sandbox.app import Sandbox
from remixd.sandbox.handler import HttpServer
from remixd.sandbox.options import SandboxOptions

AT_ONCE = 20


def test_connections_opened_at_once_are_all_taken_before_any_is_accepted() -> None:
    # socketserver's listen backlog of 5 dropped the rest of ten connections opened at once (remixd filling
    # its places at start): each came back only with the SYN's retry a second later, its place idle till then.
    server = HttpServer(("127.0.0.1", 0), Sandbox(SandboxOptions(), SYSTEM_CLOCK))  # listening, never accepting
    try:
        with contextlib.ExitStack() as opened:
            for _ in range(AT_ONCE):
                client = opened.enter_context(socket.socket())
                client.settimeout(0.5)  # a dropped SYN is retried after 1 s
                client.connect(server.server_address[:2])
    finally:
        server.server_close()
