"""remixd's built-in Ideogram-compatible Remix API emulator (``remixd sandbox``, ``api.sandbox: true``).

Faithful to the reference (docs + OpenAPI), not to remixd's client: it validates on its own so it can catch
the client's mistakes. The server is `server.SandboxServer`, its settings and faults `options`, its records and
ledger `state`.
"""
