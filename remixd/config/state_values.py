"""What the sections every command reads come to: plain frozen values, with no pydantic under them.

`config.state_model` holds the models that check these sections; `remixd status` on a valid config reads them
without those models (`config.state_quick`), and its start is mostly imports (README "Benchmarks").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BudgetConfig:
    """budget.*: the daily caps; None is no cap."""

    max_images_per_day: int | None = None
    max_usd_per_day: float | None = None


@dataclass(frozen=True)
class JournalConfig:
    """How long a finished input keeps its details before it is compacted (README "A year of journal")."""

    keep_days: int = 90
    # Submissions pause while the state folder's file system has less free (README "How remixd keeps files
    # and money safe"); 0 never pauses.
    min_free_mb: int = 64


@dataclass(frozen=True)
class StateConfig:
    """What `remixd status` reads of a config (`config.state.load_state`): where the journal is, the caps it
    measures today's spend against, and where each inbox's failed inputs wait."""

    source: Path
    state_dir: Path
    budget: BudgetConfig
    journal: JournalConfig
    failed_dirs: tuple[tuple[Path, Path], ...]  # (inbox, its failed_dir), in the config's order


def resolved(base: Path, value: str) -> Path:
    """A folder as the config names it, absolute: relative to the config's folder, `~` expanded. Raises
    OSError, ValueError or RuntimeError for a path no file system takes (NUL bytes, a symlink loop)."""
    return (base / Path(value).expanduser()).resolve()
