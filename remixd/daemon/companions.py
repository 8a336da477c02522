"""`remixd check` on the companions in the inboxes now (README "Companions"): the ones that would fail their image.

A companion is checked when its image is claimed, so a bad one costs nothing; `check` finds it sooner, with the
same messages (`file:line`, the key and the fix), by the same code the worker runs.
"""

from __future__ import annotations

from pathlib import Path

from remixd.config.companion import is_companion
from remixd.config.model import Config
from remixd.errors import InboxUnavailable, InputError
from remixd.intake.companions import Finder
from remixd.intake.scan import scan_stat
from remixd.work.companions import applied


def companion_problems(config: Config) -> list[str]:
    """One line per image whose companions would fail it: the problems and their fixes."""
    problems: list[str] = []
    for inbox in config.inboxes:
        if inbox.companions == "off":
            continue
        inbox_rules = config.rules_for(inbox)
        finder = Finder()
        try:
            for name, relpath, _status in scan_stat(inbox):
                image = Path(name)
                if is_companion(relpath) or not finder.names(image):
                    continue
                try:
                    applied(relpath, image, finder.read(image), inbox_rules)
                except InputError as error:
                    problems.append(f"{error.message} — {error.hint}")
        except InboxUnavailable:
            continue  # the config's warnings say so already
    return problems
