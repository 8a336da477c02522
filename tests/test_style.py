"""The strict tools, configured in pyproject.toml: ruff check, ruff format --check and mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*arguments: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing() -> None:
    run_tool("ruff", "check", "remixd", "tests", "bench")


def test_mypy_strict_finds_nothing() -> None:
    run_tool("mypy", "--strict", "remixd", "bench", "tests")


def test_ruff_format_finds_nothing() -> None:
    run_tool("ruff", "format", "--check", "remixd", "tests", "bench")
