"""The processes a bench run drives: the sandbox (`remixd sandbox`) and remixd (`remixd run` / `remixd once`),
each its own process, so the CPU and memory read from /proc are remixd's alone, never the sandbox's.

Times cross process boundaries as wall-clock seconds (`time.time()`): every process is on this machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
API_KEY = "bench-key"  # the sandbox accepts any non-empty key unless told otherwise
# The remixd measured is the one beside bench/ (a private copy of the repository measures that copy).
REPOSITORY = Path(__file__).resolve().parent.parent
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPOSITORY), "IDEOGRAM_API_KEY": API_KEY}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class JsonLog:
    """A JSON-lines log file another process appends to, read incrementally (only new lines each call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.events: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        fresh = []
        for line in lines:
            if line.startswith(b"{"):
                try:
                    fresh.append(json.loads(line))
                except ValueError:
                    continue
        self.events += fresh
        return fresh

    def named(self, event: str) -> list[dict[str, Any]]:
        self.poll()
        return [entry for entry in self.events if entry.get("event") == event]


def stamp(entry: dict[str, Any]) -> float:
    """The wall-clock second of a structlog JSON line (`timestamp`, ISO 8601, UTC)."""
    return datetime.fromisoformat(entry["timestamp"]).timestamp()


# --- /proc ----------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """user + system CPU of every thread of `pid` so far (clock-tick resolution, usually 10 ms)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15 of stat(5)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of `pid`, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


# --- the sandbox ------------------------------------------------------------------------------------------


class Sandbox:
    """`remixd sandbox` in its own process, logging JSON lines; request arrivals are read from its log.

    The sandbox logs `remixd.sandbox.request` once the answer is sent, with `duration_ms` measured from the
    moment its handler got the request: the request reached the sandbox at `timestamp - duration_ms`.
    """

    def __init__(self, workdir: Path, *, latency_s: float, inflight_limit: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = JsonLog(workdir / "sandbox.log")
        self._log_file = self.log.path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "remixd",
                "sandbox",
                "--port",
                "0",
                "--latency",
                str(latency_s),
                "--inflight-limit",
                str(inflight_limit),
                "--output-scale",  # the figures were measured with quarter-size results; asked for explicitly
                "0.25",
                "--log-format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            cwd=REPOSITORY,
            env=CHILD_ENV,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "remixd sandbox listening on http://127.0.0.1:PORT (…)"
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"bench: the sandbox did not start: {line!r}; see {self.log.path}")
        self.base_url = match.group(1)
        self.latency_s = latency_s
        self.inflight_limit = inflight_limit

    def arrivals(self) -> list[float]:
        """Wall-clock arrival of every remix request so far, in order of arrival."""
        return sorted(stamp(e) - e["duration_ms"] / 1000 for e in self.log.named("remixd.sandbox.request"))

    def answered(self) -> list[dict[str, Any]]:
        return self.log.named("remixd.sandbox.request")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_file.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --- remixd -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What the kernel says a finished remixd process used (wait4's rusage)."""

    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    status: int


class Remixd:
    """`remixd run|once -c CONFIG` as a subprocess, its JSON log in a file, its resources from /proc."""

    def __init__(
        self, command: str, config: Path, workdir: Path, log_level: str = "info", env: dict[str, str] | None = None
    ) -> None:
        self.log = JsonLog(workdir / f"remixd-{command}-{time.monotonic_ns()}.log")
        self._log_file = self.log.path.open("ab")
        self.started = time.time()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "remixd",
                command,
                "-c",
                str(config),
                "--log-format",
                "json",
                "--log-level",
                log_level,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=REPOSITORY,
            env={**CHILD_ENV, **(env or {})},
        )
        self.pid = self.process.pid
        self.usage: Usage | None = None

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def memory_kib(self) -> dict[str, int]:
        return memory_kib(self.pid)

    def finished_inputs(self) -> list[dict[str, Any]]:
        return self.log.named("remixd.input.finished")

    def wait_started(self, timeout: float = 60) -> None:
        wait_for(lambda: self.log.named("remixd.started") or self.process.poll() is not None, timeout, "remixd.started")
        if self.process.poll() is not None:
            raise RuntimeError(f"bench: remixd exited early; see {self.log.path}")

    def wait(self, timeout: float) -> Usage:
        """Reap the process with wait4, which hands back its CPU time and peak RSS."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                break
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"bench: remixd did not finish in {timeout:.0f} s; see {self.log.path}")
            time.sleep(0.01)
        self.process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
        self._log_file.close()
        self.log.poll()
        self.usage = Usage(
            time.time() - self.started, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss, self.process.returncode
        )
        return self.usage

    def stop(self, timeout: float = 60) -> Usage:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.returncode is None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log_file.close()


def remix_naively(base_url: str, paths: list[Path], out: Path, request: dict[str, Any]) -> float:
    """The baseline a user would script (inotifywait + curl): one POST at a time, then fetch the result.

    Returns the wall-clock makespan in seconds.
    """
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for path in paths:
        parts: dict[str, tuple[str | None, str | bytes, str]] = {
            "image_request": (None, json.dumps(request), "application/json"),
            "image_file": (path.name, path.read_bytes(), "image/jpeg"),
        }
        # A connection per request, as curl in a loop makes (and no keep-alive socket to go stale).
        answer = requests.post(f"{base_url}/remix", headers={"Api-Key": API_KEY}, files=parts, timeout=60)
        answer.raise_for_status()
        url = answer.json()["data"][0]["url"]
        (out / f"{path.stem}.png").write_bytes(requests.get(url, timeout=60).content)
    return time.monotonic() - started
