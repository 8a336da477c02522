"""An input's companions, as the journal recorded them at its claim, applied to its rules (README "Companions")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from remixd import rules
from remixd.config.companion import MAX_BYTES, TOO_LARGE, is_text, overridden
from remixd.config.model import Rule
from remixd.errors import InputError


def applied(
    relpath: str, source: Path, companions: Sequence[tuple[str, str]], inbox_rules: Sequence[Rule]
) -> tuple[str, list[Rule]]:
    """The `STEM.txt` text ("" without one) and the rules that match `relpath`, each with the fields of its
    `STEM.yaml` / `STEM.yml` / `STEM.json` on top. Raises InputError, naming the companion, before anything is
    sent."""
    for kind, same in (("prompt text", [n for n, _ in companions if is_text(n)]),
                       ("request fields", [n for n, _ in companions if not is_text(n)])):  # fmt: skip
        if len(same) > 1:
            raise InputError(
                f"{' and '.join(str(source.with_name(name)) for name in same)} both hold {kind} for {source.name}: "
                "remixd does not guess which one is meant",
                "keep one of them; delete the rest or move them out of the inbox",
            )
    text = ""
    matched = rules.match(relpath, inbox_rules)
    for name, content in companions:
        path = source.with_name(name)
        if content == TOO_LARGE:
            raise InputError(
                f"{path} is larger than the {MAX_BYTES // 1024} KiB a companion may hold",
                "a companion holds a prompt and a few request fields: shorten it, or move what else it holds "
                "out of the inbox",
            )
        if is_text(name):
            if "\ufffd" in content:
                raise InputError(f"{path} is not UTF-8 text", "save it as UTF-8")
            text = content.strip()
        else:
            matched = [dataclasses.replace(rule, request=overridden(rule.request, path, content)) for rule in matched]
    return text, matched
