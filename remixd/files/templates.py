"""Output name templates rendered: the values of one job's results, and the path a template gives them inside
the output folder (README, "Output names"). What a template may say is `remixd/output_name.py`, which the
config checks it with when the config is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath

from remixd.errors import OutputError
from remixd.output_name import EXTENSION


def tokens(relpath: str, *, rule: str, model: str, count: int, source_sha256: str, moment: datetime) -> dict[str, str]:
    """The values every result of one job shares (`stem`, `n`, `seed` and `ext` are per result)."""
    relative = PurePosixPath(relpath)
    parent = str(relative.parent)
    when = moment.astimezone(UTC)
    return {
        "name": relative.name,
        "relparent": "" if parent == "." else parent,
        "rule": rule,
        "model": model,
        "count": str(count),
        "hash8": source_sha256[:8],
        "date": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H%M%S"),
    }


def render_base(template: str, values: Mapping[str, str]) -> PurePosixPath:
    """The result's path inside the output folder without its `.{ext}`; empty folders (`{relparent}` at the
    top of the inbox) drop out. Raises OutputError when a value makes it climb out (a file named `...jpg`)."""
    text = template.removesuffix(EXTENSION).format(**{**values, "ext": ""})
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise OutputError(
            f"the output name {text!r} is not a path inside the output folder",
            "rename the input, or use a name template that does not put it in a folder of its own",
        )
    return PurePosixPath(*parts)
