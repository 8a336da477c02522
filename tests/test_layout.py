"""The layout's rules (README, "Development"): the config is read by every stage and reads none of them, no
module grows past what a reader takes in at once, and only clock.py reads real time."""

from __future__ import annotations

import ast
from pathlib import Path

import remixd

ROOT = Path(remixd.__file__).parent
# The top-level modules every package may use; the config reads them, itself and the two template grammars.
NEUTRAL = ("remixd.errors", "remixd.secrets", "remixd.clock", "remixd.logs")
CONFIG_MAY_IMPORT = ("remixd.config", *NEUTRAL, "remixd.rules", "remixd.output_name")
# The one model the config builds each rule's request from, so that a request the route refuses fails at load.
REQUEST_MODEL = "remixd.ideogram.requests"
# The request model and what it is made of: Ideogram's API as values, beside the client that sends them.
REQUEST_VALUES = frozenset({REQUEST_MODEL, "remixd.ideogram.routes", "remixd.ideogram.checks", "remixd.ideogram.enums"})


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("remixd"):
            base = node.module
            package = (ROOT.parent / base.replace(".", "/")).is_dir()  # `from remixd.ideogram import enums`
            found |= {f"{base}.{alias.name}" for alias in node.names} if package else {base}
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


def test_the_request_model_is_values_alone() -> None:
    # The config may read the request model because it reads nothing of the client beside it: were it to import
    # the HTTP side (or anything of another stage), the config would read a stage through it.
    reaching = {
        f"{module} imports {name}"
        for module in sorted(REQUEST_VALUES)
        for name in imports(ROOT.parent / (module.replace(".", "/") + ".py"))
        if name not in REQUEST_VALUES and not name.startswith(NEUTRAL)
    }
    assert not reaching, sorted(reaching)


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


def test_loggers_come_from_remixd_logs() -> None:
    # remixd.logs imports structlog at the first line logged; a module-level structlog.get_logger would import
    # it (asyncio and ssl with it) at every start, a fifth of `remixd status`'s time (README "A year of journal").
    direct = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if path.name != "logs.py" and "structlog.get_logger" in path.read_text(encoding="utf-8")
    )
    assert not direct, f"use `log = get_logger(__name__)` from remixd.logs in {direct}"
