"""The bench works: `python -m bench --smoke` runs every figure at tiny sizes. Timings are not checked (a
benchmark is not a test); the figures are measured on demand and kept in bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_the_smoke_bench_runs_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--workdir", str(tmp_path)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for figure in (
        "1 throughput",
        "1 naive baseline",
        "2 reaction p50",
        "2 reaction p95",
        "3 backlog: first",
        "3 backlog: scan speed",
        "3 backlog: peak RSS",
        "4 idle",
        "4 soak",
        "5 per-file CPU",
        "6 plan",
        "8 async v2 throughput",
        "8 async v2: generation completed",
        "8 async v2: polls per image",
        "9 review: gallery newest page",
        "9 review: gallery search, no match",
        "10 rebuild: new journal",
        "10 rebuild: peak RSS",
    ):
        assert f"| {figure}" in done.stdout, done.stdout
    assert "python -m bench --smoke" in done.stdout
