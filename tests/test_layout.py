"""The layout's import rule (README, "Development"): the config is read by every stage and reads none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import remixd

ROOT = Path(remixd.__file__).parent
# The top-level modules every package may use, and the one model the config builds each rule's request from.
CONFIG_MAY_IMPORT = ("remixd.config", "remixd.errors", "remixd.secrets", "remixd.clock", "remixd.logs", "remixd.rules")
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
