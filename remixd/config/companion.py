"""Companions (README "Companions"): which files they are, and a `STEM.yaml` / `STEM.yml` / `STEM.json`
companion's request fields, checked as the config's are.

The companion's fields go on top of the rule's request and pass the config builder's own request checks, so a
field the config would refuse for the rule's route is refused here, located in the companion's file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from remixd.config.reader import ConfigFile, KeyPath
from remixd.config.rule_build import RuleBuilder
from remixd.errors import InputError
from remixd.ideogram.requests import RemixRequest
from remixd.rules import template_problems

TEXT_SUFFIXES = (".txt",)
FIELD_SUFFIXES = (".yaml", ".yml", ".json")
SUFFIXES = TEXT_SUFFIXES + FIELD_SUFFIXES
MAX_BYTES = 64 * 1024  # a prompt and a few request fields; anything larger is not a companion a person wrote
# What the journal records for a companion over MAX_BYTES, instead of its text: checking it fails the image
# with the limit named (a NUL never starts a text a person wrote).
TOO_LARGE = "\x00remixd: larger than MAX_BYTES"


def is_companion(relpath: str) -> bool:
    return relpath.lower().endswith(SUFFIXES)


def is_text(name: str) -> bool:
    return name.lower().endswith(TEXT_SUFFIXES)


def overridden(request: RemixRequest, path: Path, text: str) -> RemixRequest:
    """`request` with the fields of the companion at `path` (its `text`) on top; raises InputError naming
    `file:line`, the key and the fix of every problem, before anything is sent."""
    located = ConfigFile(str(path))
    if "\ufffd" in text:  # how the intake records a companion that is not UTF-8
        raise InputError(f"{path} is not UTF-8 text", "save it as UTF-8")
    data: Any = located.parse(text)
    if not located.problems and not isinstance(data, dict):
        located.add((), "a companion holds request fields, one per line: prompt:, seed: …", "e.g. seed: 42")
    remix = None
    if not located.problems:
        merged = {**request.model_dump(mode="json", exclude_unset=True), **data}

        def where(loc: KeyPath) -> KeyPath:
            return loc

        remix = RuleBuilder(located, path.parent).request(merged, where, "", {})
        if isinstance(data.get("prompt"), str):
            for message, fix in template_problems(data["prompt"]):
                located.add(("prompt",), message, fix)
    if located.problems or remix is None:
        problems = sorted(located.problems, key=lambda problem: problem.line or 0)
        message = "; ".join(str(dataclasses.replace(problem, fix="")) for problem in problems)
        raise InputError(message, "; ".join(dict.fromkeys(problem.fix for problem in problems if problem.fix)))
    return remix
