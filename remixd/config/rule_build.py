"""The rules' part of the config: each rule's request, with `defaults:` under it, checked for its route.

`config.load` builds the rest of the config around it; a companion file's fields (README "Companions") pass
the same `RuleBuilder.request`, so they are refused exactly where the config would refuse them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from remixd.config.model import OutputsConfig, Rule, RuleSchema
from remixd.config.reader import ConfigFile, KeyPath
from remixd.config.references import check_references
from remixd.errors import Problem
from remixd.ideogram.requests import RemixRequest
from remixd.rules import compile_glob, template_problems

# Fields that exclude each other: a rule setting one of a group replaces the whole group from `defaults`.
MATCH_INPUT = "match_input"  # aspect_ratio: the route's ratio nearest to each input's
_EXCLUSIVE_GROUPS = (("aspect_ratio", "resolution"), ("style_type", "style_codes"))


def _canonical(key: str) -> str:
    return "magic_prompt_option" if key == "magic_prompt" else key


def _merge(
    defaults: dict[str, Any], request: dict[str, Any], path: KeyPath
) -> tuple[dict[str, Any], dict[str, KeyPath]]:
    """`defaults` under the rule's request, and where each field was written (for error lines).

    A rule setting one field of an exclusive pair (aspect_ratio/resolution, style_type/style_codes) drops
    the whole pair from the defaults: `resolution:` in a rule means "this size", not "also this size".
    """
    own = {_canonical(key) for key in request}
    for group in _EXCLUSIVE_GROUPS:
        if own & set(group):
            own |= set(group)
    merged: dict[str, Any] = {}
    origin: dict[str, KeyPath] = {"prompt": (*path, "request", "prompt")}
    for key, value in defaults.items():
        if _canonical(key) not in own:
            merged[key] = value
            origin[_canonical(key)] = ("defaults", key)
    for key, value in request.items():
        merged[key] = value
        origin[_canonical(key)] = (*path, "request", key)
    return merged, origin


def outputs_section(located: ConfigFile, item: dict[str, Any], path: KeyPath) -> OutputsConfig | None:
    """The `outputs:` of the top level, an inbox or a rule; None when absent or invalid (then reported)."""
    value = item.get("outputs")
    if not isinstance(value, dict):
        return None  # absent, or not a mapping: the schema of the section around it reports that
    return located.schema(OutputsConfig, value, (*path, "outputs"))


class RuleBuilder:
    """Every rule of the config (or a companion's fields on top of one), problems recorded in `located`."""

    def __init__(self, located: ConfigFile, base: Path) -> None:
        self.located = located
        self.base = base  # relative reference image paths are relative to this folder

    def rules(self, raw: list[Any], defaults: dict[str, Any]) -> list[Rule | None]:
        rules: list[Rule | None] = []
        first_line: dict[str, int] = {}
        from_defaults: dict[Problem, list[str]] = {}
        for index, item in enumerate(raw):
            path: KeyPath = ("rules", index)
            if not isinstance(item, dict):
                self.located.add(
                    path,
                    "a rule must be a mapping with name:, match: and request:",
                    "see config.example.yaml",
                )
                rules.append(None)
                continue
            name = item.get("name")
            if isinstance(name, str) and name in first_line:
                message = f"rule name '{name}' is already used at line {first_line[name]}"
                self.located.add((*path, "name"), message, "give every rule its own name")
            elif isinstance(name, str):
                first_line[name] = self.located.line((*path, "name"))
            rules.append(self._rule(item, path, defaults, from_defaults))
        for problem, names in from_defaults.items():  # one line per bad default, naming the rules it breaks
            where = ("rules " if len(names) > 1 else "rule ") + ", ".join(f"'{name}'" for name in names)
            self.located.problems.append(dataclasses.replace(problem, message=f"{problem.message} (in {where})"))
        return rules

    def _rule(
        self,
        item: dict[str, Any],
        path: KeyPath,
        defaults: dict[str, Any],
        from_defaults: dict[Problem, list[str]],
    ) -> Rule | None:
        located = self.located
        before = len(located.problems)
        schema = located.schema(RuleSchema, item, path)
        patterns: list[re.Pattern[str]] = []
        globs = item.get("match")
        for index, glob in enumerate(globs if isinstance(globs, list) else []):
            try:
                if isinstance(glob, str):
                    patterns.append(compile_glob(glob))
            except ValueError as error:
                located.add((*path, "match", index), str(error), "globs are relative to the inbox, e.g. '*.jpg'")
        request = item.get("request")
        if not isinstance(request, dict):
            return None
        merged, origin = _merge(defaults, request, path)
        ratio = merged.get("aspect_ratio")
        if isinstance(ratio, str) and re.fullmatch(r"\d+:\d+", ratio):  # `4:3` as people write it means 4x3
            merged["aspect_ratio"] = ratio.replace(":", "x")
        match_input = merged.get("aspect_ratio") == MATCH_INPUT
        if match_input:  # chosen per input; the rest of the request is checked as written
            del merged["aspect_ratio"]
        request_path: KeyPath = (*path, "request")

        def where(loc: KeyPath) -> KeyPath:  # a field comes from the rule or from `defaults:`
            return (*origin.get(str(loc[0]), (*request_path, loc[0])), *loc[1:]) if loc else request_path

        remix = self.request(merged, where, str(item.get("name")), from_defaults)
        if match_input and remix is not None:
            ratio_at = origin.get("aspect_ratio", (*request_path, "aspect_ratio"))
            if not remix.route.takes("aspect_ratio"):
                located.add(ratio_at, f"model {remix.model} takes no aspect_ratio", "remove aspect_ratio")
            elif remix.resolution is not None:
                located.add(ratio_at, "aspect_ratio: match_input and resolution are both set", "keep one")
        if isinstance(merged.get("prompt"), str):
            for message, fix in template_problems(merged["prompt"]):
                located.add(origin["prompt"], message, fix)
        outputs = outputs_section(self.located, item, path)
        if schema is None or remix is None or len(located.problems) != before:
            return None
        return Rule(schema.name, schema.match, schema.continue_, remix, tuple(patterns), outputs, match_input)

    def request(
        self,
        merged: dict[str, Any],
        where: Callable[[KeyPath], KeyPath],
        rule_name: str,
        from_defaults: dict[Problem, list[str]],
    ) -> RemixRequest | None:
        """The rule's request, its reference images checked and their paths made absolute."""
        try:
            remix = RemixRequest.model_validate(merged)
        except ValidationError as error:
            for problem in self.located.convert(error, RemixRequest, where):
                if problem.key_path.startswith("defaults."):
                    from_defaults.setdefault(problem, []).append(rule_name)
                else:
                    self.located.problems.append(problem)
            return None
        remix, problems = check_references(remix, self.base)
        for loc, message, fix in problems:
            self.located.add(where(loc), message, fix)
        return remix
