"""`remixd status`'s read of its part of a config that holds no problem, without pydantic (README "Benchmarks":
status's time was mostly the import of pydantic and the building of the sections' models, 150 of its 250 ms).

Each key of the sections status reads has a check that takes only what the section's model takes: a value of
that very type, in range, never one the model would convert. Whatever is not plainly fine here (a problem, a
doubtful value, a YAML oddity the reader noted) goes to the models' whole check (`config.state`), which finds
and words every problem as `remixd check` does. `tests/unit/config/test_state_quick.py` holds the keys,
defaults and answers here to the models: a key added to a model and not here fails it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from remixd.config.reader import ConfigFile
from remixd.config.state_values import BudgetConfig, JournalConfig, StateConfig, resolved
from remixd.output_name import DEFAULT as DEFAULT_OUTPUT_NAME

Check = Callable[[Any], bool]
REQUIRED = object()  # a key the section must have


def integer(minimum: int) -> Check:
    return lambda value: type(value) is int and value >= minimum


def number(minimum: float, *, above: bool) -> Check:
    """A float or an int (the models' strict floats take both), finite, above `minimum` or at least it."""
    return lambda value: (
        type(value) in (int, float) and math.isfinite(value) and (value > minimum if above else value >= minimum)
    )


def one_of(*choices: object) -> Check:
    return lambda value: any(type(value) is type(choice) and value == choice for choice in choices)


def text(value: Any) -> bool:
    return type(value) is str


def flag(value: Any) -> bool:
    return type(value) is bool


def texts(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def mapping(value: Any) -> bool:
    return type(value) is dict


def items(value: Any) -> bool:
    return type(value) is list and len(value) > 0


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


SECONDS = number(0, above=True)
# The keys of each model in config.state_model, with their checks and defaults.
DOCUMENT: Mapping[str, tuple[Check, Any]] = {
    **{key: (optional(mapping), None) for key in ("api", "budget", "journal", "metrics", "ui", "defaults", "outputs")},
    "state_dir": (text, "./state"),
    "inboxes": (items, REQUIRED),
    "rules": (items, REQUIRED),
    "shutdown_grace_s": (SECONDS, 30.0),
}
BUDGET: Mapping[str, tuple[Check, Any]] = {
    "max_images_per_day": (optional(integer(0)), None),
    "max_usd_per_day": (optional(number(0, above=False)), None),
}
JOURNAL: Mapping[str, tuple[Check, Any]] = {"keep_days": (integer(1), 90), "min_free_mb": (integer(0), 64)}
INBOX: Mapping[str, tuple[Check, Any]] = {
    "path": (text, REQUIRED),
    "output": (text, REQUIRED),
    "done_dir": (optional(text), None),
    "failed_dir": (text, REQUIRED),
    "after": (one_of("move", "delete", "keep"), "move"),
    "recursive": (flag, False),
    "settle_s": (SECONDS, 2.0),
    "detect": (one_of("auto", "native", "poll"), "auto"),
    "rules": (optional(texts), None),
    "ignore": (texts, ()),
    "rescan_s": (SECONDS, 60.0),
    "poll_s": (SECONDS, 1.0),
    "outputs": (optional(mapping), None),
    "output_name": (text, DEFAULT_OUTPUT_NAME),
    "companions": (one_of("off", "optional", "required", False), "off"),  # YAML 1.1 reads `off` as false
    "companion_wait_s": (SECONDS, 2.0),
}


def fits(section: Any, keys: Mapping[str, tuple[Check, Any]]) -> bool:
    """Whether the section is a mapping its model takes as it is: known keys, the required ones there, each
    value passing its check."""
    return (
        type(section) is dict
        and section.keys() <= keys.keys()
        and all(key in section for key, (_, default) in keys.items() if default is REQUIRED)
        and all(keys[key][0](value) for key, value in section.items())
    )


def quick_state(path: Path) -> StateConfig | None:
    """What `config.state.load_state` answers for a config whose sections status reads are plainly fine; None
    where anything there needs the models' whole check."""
    located = ConfigFile(str(path))
    data = located.read(path)
    if located.problems or not fits(data, DOCUMENT):
        return None
    budget, journal, inboxes = data.get("budget") or {}, data.get("journal") or {}, data["inboxes"]
    if not (fits(budget, BUDGET) and fits(journal, JOURNAL) and all(fits(inbox, INBOX) for inbox in inboxes)):
        return None
    try:
        source = path.expanduser().resolve()
        base = source.parent
        state_dir = resolved(base, data.get("state_dir", "./state"))
        for inbox in inboxes:  # the whole check resolves every folder of an inbox: one it cannot is a problem
            for key in ("output", "done_dir"):
                if inbox.get(key) is not None:
                    resolved(base, inbox[key])
        failed_dirs = tuple((resolved(base, inbox["path"]), resolved(base, inbox["failed_dir"])) for inbox in inboxes)
    except (OSError, ValueError, RuntimeError):  # NUL bytes, a symlink loop: the whole check words it
        return None
    usd = budget.get("max_usd_per_day")
    return StateConfig(
        source,
        state_dir,
        BudgetConfig(budget.get("max_images_per_day"), None if usd is None else float(usd)),
        JournalConfig(**journal),
        failed_dirs,
    )


def load_state(path: Path) -> StateConfig:
    """Only what `remixd status` reads of the config; raises ConfigError carrying every problem found there, in
    line order (`config.state.load_state`, which this reads the config without where it can)."""
    quick = quick_state(path)
    if quick is not None:
        return quick
    from remixd.config.state import load_state as checked  # the models: every problem, worded

    return checked(path)
