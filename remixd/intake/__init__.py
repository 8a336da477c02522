"""Intake: how a file dropped into an inbox becomes a claimed input, in four steps.

1. scan (`scan.py`): the folder is the truth. Every inbox is scanned at start, every `rescan_s`, after any
   watcher trouble and after a reload; the ignore rules (dot-files, temp names, `exclude`) live there too.
2. watch (`watch.py`, choosing native or polling in `detect.py`): events are hints that make remixd react
   within milliseconds instead of waiting for the next scan; a missed event costs only that wait.
3. settle (`readiness.py`): a file is ready once nothing touched it for `settle_s` and its size, mtime and
   inode held still, so a slow copy is never taken half written.
4. claim (`claims.py`): the journal records the claim before any work, so repeated events, rescans and
   restarts never queue a file twice.

`Intake` (`loop.py`) runs the four steps for every inbox, whose run-time state is in `inbox.py`.
"""
