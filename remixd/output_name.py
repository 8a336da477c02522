"""What an output name template may say: `inboxes[].output_name` (README, "Output names").

A template is checked when the config is loaded (an unknown token, a name two results of one input could
share, a path that climbs out of the output folder), so a mistake costs nothing. The default gives the names
remixd always gave: `{relparent}/{stem}.{rule}.{n}.{ext}`. A result's sidecar is its name with `.json` for
the extension, which is why a template ends in `.{ext}`. These are plain values beneath both of their readers:
the config checks templates with them and the files stage renders them (`files.templates`), so writing a result
reads nothing of the config's loading and the config reads no stage.
"""

from __future__ import annotations

import difflib
import string

DEFAULT = "{relparent}/{stem}.{rule}.{n}.{ext}"
TOKENS = ("stem", "name", "relparent", "rule", "n", "count", "seed", "model", "date", "time", "hash8", "ext")
EXTENSION = ".{ext}"


def problems(template: str, *, several_images: bool, several_rules: bool) -> list[tuple[str, str]]:
    """(message, fix) for each thing wrong with `template` for an inbox whose rules may make several images
    per job (`several_images`) or let several rules match one input (`several_rules`)."""
    allowed = " ".join("{" + token + "}" for token in TOKENS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return [(f"the name template is malformed ({error})", "write {{ and }} for literal braces")]
    found: list[tuple[str, str]] = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TOKENS:
            close = difflib.get_close_matches(field, TOKENS, n=1)
            hint = f"did you mean '{{{close[0]}}}'? " if close else ""
            found.append((f"unknown token '{{{field}}}'", f"{hint}use {allowed}"))
        elif spec or conversion:
            found.append((f"'{{{field}}}' has a format or conversion", f"write plain {{{field}}}"))
    used = {field for _, field, _, _ in parsed if field is not None}
    if not template.endswith(EXTENSION) or template.count("{ext}") != 1:
        found.append(("the name must end with .{ext}, once", "the sidecar takes the same name with .json"))
    segments = template.split("/")
    if template.startswith(("/", "~")) or any(segment in ("..", ".") for segment in segments):
        found.append(("the name climbs out of the output folder", f"write a path inside it, e.g. {DEFAULT}"))
    if several_images and "n" not in used:
        found.append(("results of one request would all get the same name", "add {n}, the result's number"))
    if several_rules and "rule" not in used:
        found.append(("results of two rules for one input would get the same name", "add {rule}"))
    return found
