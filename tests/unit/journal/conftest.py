"""The journal most of these tests open: a new file under tmp_path, on a fake clock at START."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remixd.journal.sqlite import SqliteJournal
from tests.helpers import FakeClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def journal(path: Path, clock: FakeClock) -> Iterator[SqliteJournal]:
    opened = SqliteJournal(path, clock=clock)
    yield opened
    opened.close()
