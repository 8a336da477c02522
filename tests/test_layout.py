"""The layout's rules (README, "Development"): the config is read by every stage and reads none of them, no
module grows past what a reader takes in at once, and only clock.py reads real time."""

from __future__ import annotations

import ast
from pathlib import Path

import remixd

ROOT = Path(remixd.__file__).parent
# The top-level modules every package may use, and the one model the config builds each rule's request from.
CONFIG_MAY_IMPORT = (
    "remixd.config",
    "remixd.errors",
    "remixd.secrets",
    "remixd.clock",
    "remixd.logs",
    "remixd.rules",
    "remixd.output_name",
)
REQUEST_MODEL = "remixd.ideogram.requests"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("remixd"):
            base = node.module
            found |= {f"{base}.{alias.name}" for alias in node.names} if base == "remixd" else {base}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("remixd")}
    return found


def test_the_config_imports_no_stage() -> None:
    sideways = {
        f"{path.name} imports {name}"
        for path in sorted((ROOT / "config").glob("*.py"))
        for name in imports(path)
        if name != REQUEST_MODEL and not name.startswith(CONFIG_MAY_IMPORT)
    }
    assert not sideways, sorted(sideways)


MAX_MODULE_LINES = 300  # README, "Development": a module a reader takes in at once; split along a seam beyond it


def test_no_module_is_over_the_limit() -> None:
    long = {
        f"{path.relative_to(ROOT.parent)}: {lines} lines"
        for path in sorted(ROOT.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, sorted(long)


def reads_real_time(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {f"import {alias.name}" for alias in node.names if alias.name == "time"}
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found.add("from time import …")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("now", "utcnow", "today")
            and isinstance(node.value, ast.Name)
            and node.value.id in ("datetime", "date")
        ):
            found.add(f"{node.value.id}.{node.attr}")
    return found


def test_only_the_clock_reads_real_time() -> None:
    # README, "Development": one Clock is handed down, so a test's FakeClock drives every wait and timestamp.
    readers = {
        f"{path.relative_to(ROOT.parent)}: {', '.join(sorted(found))}"
        for path in sorted(ROOT.rglob("*.py"))
        if path != ROOT / "clock.py" and (found := reads_real_time(path))
    }
    assert not readers, sorted(readers)
