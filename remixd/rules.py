"""Pure rule logic: which rules apply to a file, and the requests they make, with prompts rendered.

Globs (`compile_glob`) are compiled once, by `config/load.py`, when the config is loaded. They match the POSIX path
relative to the inbox, case-insensitively (cameras write `IMG_0001.JPG`, people write `*.jpg`):

| pattern        | matches                                  | does not match        |
|----------------|------------------------------------------|-----------------------|
| `*.jpg`        | `a.jpg`, `sub/a.JPG`, `x/y/b.jpg`        | `a.jpeg`              |
| `sub/*.jpg`    | `sub/a.jpg`                              | `a.jpg`, `sub/x/a.jpg`|
| `/a.jpg`       | `a.jpg`                                  | `sub/a.jpg`           |
| `sub/**/*.png` | `sub/a.png`, `sub/x/y/a.png`             | `a.png`               |
| `sub/**`       | everything below `sub/`                  | `sub` itself          |
| `photo?.[jp]*` | `photo1.jpg`, `photo2.png`               | `photo10.jpg`         |

A pattern without `/` matches the file name at any depth (like .gitignore), so `*.jpg` also works in a
recursive inbox; a leading `/` anchors a pattern at the inbox root. `*`, `?` and `[...]` never cross `/`;
a `**` segment crosses folders, and `**/` may match no folder at all. `\\` escapes the next character.
"""

from __future__ import annotations

import difflib
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol, TypeVar

from pydantic import ValidationError

from remixd.errors import InputError
from remixd.ideogram.requests import RemixRequest

PLACEHOLDERS = ("stem", "name", "ext", "parent", "relpath", "rule", "caption", "text")


class RuleLike(Protocol):
    """What this module needs of `config.Rule` (kept structural so rules.py does not import config/model.py)."""

    @property
    def name(self) -> str: ...
    @property
    def patterns(self) -> tuple[re.Pattern[str], ...]: ...
    @property
    def continue_(self) -> bool: ...
    @property
    def request(self) -> RemixRequest: ...
    @property
    def match_input(self) -> bool: ...


R = TypeVar("R", bound=RuleLike)


@dataclass(frozen=True)
class PlannedJob:
    """One request to send for one input: the rule's request with its prompt rendered for that input."""

    rule: str
    request: RemixRequest
    fingerprint: str


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a glob (module docstring) to a regex for `fullmatch` on a relative POSIX path.

    Raises ValueError with a message for a person when the pattern cannot match any file.
    """
    text = pattern.removeprefix("./")
    anchored = text.startswith("/")
    text = text.removeprefix("/")
    if not text.strip():
        raise ValueError("the pattern is empty; write e.g. '*.jpg'")
    if text.endswith("/"):
        raise ValueError(f"'{pattern}' names a folder, but rules match files; write '{text}**' for its contents")
    segments = text.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ValueError(f"'{pattern}' has an empty, '.' or '..' part; paths are relative to the inbox")
    # `**/**` means what `**` means; left as two, each `(?:[^/]+/)*` backtracks against the other and a
    # path that does not match takes exponential time (twelve of them hang a worker).
    segments = [s for i, s in enumerate(segments) if not (s == "**" and i > 0 and segments[i - 1] == "**")]
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".+" if last else "(?:[^/]+/)*")  # `**/` may match zero folders
        else:
            parts.append(_translate_segment(segment, pattern) + ("" if last else "/"))
    body = "".join(parts)
    if len(segments) == 1 and not anchored:
        body = "(?:.*/)?" + body  # no slash: match the file name at any depth (gitignore-like)
    try:
        return re.compile(body, re.IGNORECASE | re.DOTALL)
    except re.error as error:  # e.g. a reversed range [z-a]
        raise ValueError(f"'{pattern}' is not a valid glob ({error})") from error


def _translate_segment(segment: str, pattern: str) -> str:
    """One path segment: `*` and `?` and `[...]` stay inside it."""
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        index += 1
        if char == "\\":
            if index == len(segment):
                raise ValueError(f"'{pattern}' ends a part with '\\'; write '\\\\' for a backslash")
            out.append(re.escape(segment[index]))
            index += 1
        elif char == "*":
            while index < len(segment) and segment[index] == "*":  # `a**b` is just `a*b`, as in gitignore
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            start = index + 1 if segment[index : index + 1] in ("!", "^") else index
            end = segment.find("]", start + 1)  # a ']' right after '[' or '[!' is a member, as in fnmatch
            if end == -1:  # no closing bracket: a literal '[', as fnmatch does
                out.append(re.escape(char))
                continue
            inner = segment[index:end].replace("\\", "\\\\")
            if inner[:1] in ("!", "^"):
                inner = "^" + inner[1:]
            # A literal '[' and doubled set operators inside a class are future syntax to `re` (a
            # FutureWarning today): escape them so they stay plain members.
            inner = re.sub(r"\[|--|&&|~~|\|\|", lambda found: "".join("\\" + c for c in found.group()), inner)
            out.append(f"(?!/)[{inner}]")
            index = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def template_problems(template: str) -> list[tuple[str, str]]:
    """(message, fix) for each thing wrong with a prompt template; empty when it renders for every file."""
    allowed = " ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        return [(f"the prompt template is malformed ({error})", "write {{ and }} for literal braces")]
    problems: list[tuple[str, str]] = []
    for field in fields:
        if field not in PLACEHOLDERS:
            close = difflib.get_close_matches(field, PLACEHOLDERS, n=1)
            hint = f"did you mean '{{{close[0]}}}'? " if close else ""
            problems.append(
                (
                    f"unknown placeholder '{{{field}}}'",
                    f"{hint}use {allowed}, or {{{{ }}}} for literal braces",
                )
            )
    if not problems:
        # {parent} and {ext} are "" for `README` at the top level: the emptiest file a rule can see.
        emptiest = {**dict.fromkeys(PLACEHOLDERS, "x"), "parent": "", "ext": ""}
        try:
            rendered = template.format(**emptiest)
        except (ValueError, KeyError, IndexError, AttributeError) as error:  # a bad spec, e.g. {stem:d}
            problems.append((f"the prompt template cannot be rendered ({error})", f"use plain {allowed}"))
        else:
            if not rendered.strip():
                problems.append(
                    ("the prompt is empty for files at the top of the inbox or without an extension",
                     "add words or {stem} around {parent} and {ext}")
                )  # fmt: skip
    return problems


def placeholder_values(relpath: str, rule: str, caption: str = "", text: str = "") -> dict[str, str]:
    """Values of the prompt placeholders for a file, e.g. for `sub/My photo.v2.JPG`:

    `{name}` `My photo.v2.JPG`; `{stem}` `My photo.v2` (the name without its last suffix); `{ext}` `JPG`
    (the last suffix without its dot and in its original case, "" when there is none; `.bashrc` has stem
    `.bashrc` and no ext); `{parent}` `sub` ("" at the inbox's top level); `{relpath}` `sub/My photo.v2.JPG`;
    `{rule}` the rule's name; `{caption}` the caption embedded in the image ("" when it has none); `{text}`
    the text of its `STEM.txt` companion ("" when it has none).
    """
    path = PurePosixPath(relpath)
    parent = str(path.parent)
    return {
        "stem": path.stem,
        "name": path.name,
        "ext": path.suffix.removeprefix("."),
        "parent": "" if parent == "." else parent,
        "relpath": path.as_posix(),
        "rule": rule,
        "caption": caption,
        "text": text,
    }


def render_prompt(template: str, relpath: str, rule: str, caption: str = "", text: str = "") -> str:
    """The prompt for one file; a `STEM.txt` companion's text is the whole prompt when the template has no
    `{text}` for it (README "Companions"), sent as written (its braces are not placeholders)."""
    if text and not _has_field(template, "text"):
        return text
    return template.format(**placeholder_values(relpath, rule, caption, text))


def _has_field(template: str, placeholder: str) -> bool:
    return any(field == placeholder for _, field, _, _ in string.Formatter().parse(template))


def uses(placeholder: str, rules: Sequence[RuleLike]) -> bool:
    """Whether any of `rules` has `{placeholder}` in its prompt (the caption is read only when one does)."""
    return any(_has_field(rule.request.prompt, placeholder) for rule in rules)


def rule_matches(rule: RuleLike, relpath: str) -> bool:
    return any(pattern.fullmatch(relpath) is not None for pattern in rule.patterns)


def match(relpath: str, rules: Sequence[R]) -> list[R]:
    """The rules that apply, in order: the first match wins; a match with `continue: true` lets later rules
    match too (a chain stops at the first matching rule without it)."""
    matched: list[R] = []
    for rule in rules:
        if rule_matches(rule, relpath):
            matched.append(rule)
            if not rule.continue_:
                break
    return matched


def plan(
    relpath: str,
    rules: Sequence[RuleLike],
    *,
    caption: str = "",
    size: tuple[int, int] | None = None,
    text: str = "",
) -> list[PlannedJob]:
    """The jobs for one input of `size` (as shown; for `aspect_ratio: match_input`). Raises InputError when a
    rule's prompt renders empty for this file (config/load.py refuses templates that do for a file name; a
    `{caption}` alone is empty for an image without a caption)."""
    jobs: list[PlannedJob] = []
    for rule in match(relpath, rules):
        prompt = render_prompt(rule.request.prompt, relpath, rule.name, caption, text)
        try:
            request = rule.request.with_prompt(prompt)
            if rule.match_input:
                if size is None:
                    raise InputError(f"the size of '{relpath}' cannot be read", "check that it is a whole image")
                fields = request.model_dump(mode="json", exclude_unset=True)
                ratio = nearest_ratio(size, request.route.enums["aspect_ratio"])
                request = type(request).model_validate({**fields, "aspect_ratio": ratio})
        except ValidationError as error:
            raise InputError(
                f"rule '{rule.name}' gives an empty prompt for '{relpath}'",
                "give the image a caption, or put words around the placeholders in the rule's prompt",
            ) from error
        jobs.append(PlannedJob(rule=rule.name, request=request, fingerprint=request.fingerprint()))
    return jobs


def reseeded(job: PlannedJob, seed: int) -> PlannedJob:
    """The job with `seed` instead of the rule's (`remixd reroll`); the fingerprint follows the request. A route
    that takes no seed is sent as it is: each of its answers is new anyway."""
    if not job.request.route.takes("seed"):
        return job
    fields = {**job.request.model_dump(mode="json", exclude_unset=True), "seed": seed}
    request = type(job.request).model_validate(fields)
    return PlannedJob(rule=job.rule, request=request, fingerprint=request.fingerprint())


def nearest_ratio(size: tuple[int, int], allowed: Sequence[str]) -> str:
    """The allowed aspect ratio (`ASPECT_4_3`, `4x3`) nearest to `size`'s, by how far apart their logs are:
    a 2:1 panorama is as far from 1:1 as a 1:2 portrait."""
    width, height = size
    target = math.log(width / height)

    def distance(value: str) -> float:
        found = re.search(r"(\d+)[x_](\d+)$", value)
        return abs(math.log(int(found.group(1)) / int(found.group(2))) - target) if found else math.inf

    return min(allowed, key=distance)
