"""remixd's built-in Ideogram-compatible Remix API emulator (``remixd sandbox``, ``api.sandbox: true``).

Faithful to the reference (docs + OpenAPI), not to remixd's client: it validates on its own so it can catch
the client's mistakes.
"""

from __future__ import annotations

from remixd.sandbox.options import Faults, SandboxOptions
from remixd.sandbox.server import DEFAULT_PORT, SandboxServer, serve_forever
from remixd.sandbox.state import Ledger, ReceivedRequest

__all__ = [
    "DEFAULT_PORT",
    "Faults",
    "Ledger",
    "ReceivedRequest",
    "SandboxOptions",
    "SandboxServer",
    "serve_forever",
]
