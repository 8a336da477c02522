"""An input's companions, as the journal recorded them at its claim, applied to its rules (README "Companions")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from remixd import rules
from remixd.config.companion import overridden
from remixd.config.model import Rule
from remixd.errors import InputError


def applied(
    relpath: str, source: Path, companions: Sequence[tuple[str, str]], inbox_rules: Sequence[Rule]
) -> tuple[str, list[Rule]]:
    """The `STEM.txt` text ("" without one) and the rules that match `relpath`, each with the fields of its
    `STEM.yaml` / `STEM.json` on top. Raises InputError, naming the companion, before anything is sent."""
    text = ""
    matched = rules.match(relpath, inbox_rules)
    for name, content in companions:
        if name.lower().endswith(".txt"):
            if "\ufffd" in content:
                raise InputError(f"{source.with_name(name)} is not UTF-8 text", "save it as UTF-8")
            text = content.strip()
        else:
            path = source.with_name(name)
            matched = [dataclasses.replace(rule, request=overridden(rule.request, path, content)) for rule in matched]
    return text, matched
