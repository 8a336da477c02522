"""Companions (README "Companions"): `STEM.txt`, `STEM.yaml` and `STEM.json` beside an image, read with it.

A companion is never an input of its own: the intake skips it, and reads it when its image is claimed, so the
journal holds the text that was used (in the claim's transaction) and a companion written later changes nothing
already claimed. An editor's temp file and rename lands as one new file, which is all the intake looks at.
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIXES = (".txt", ".yaml", ".json")
MAX_BYTES = 64 * 1024  # a prompt and a few request fields; anything larger is not a companion a person wrote


def is_companion(relpath: str) -> bool:
    return relpath.lower().endswith(SUFFIXES)


def read(image: Path) -> tuple[tuple[str, str], ...]:
    """(file name, text) of each companion beside `image` that exists now, in SUFFIXES order. A file that is
    not UTF-8 is kept with replacement characters: checking it fails the image, with the companion named."""
    found: list[tuple[str, str]] = []
    for suffix in SUFFIXES:
        path = image.with_name(image.stem + suffix)
        try:
            with path.open("rb") as stream:
                found.append((path.name, stream.read(MAX_BYTES).decode("utf-8-sig", errors="replace")))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError:
            continue  # unreadable now (permissions): as if absent; `companions: required` waits for it
    return tuple(found)


def images_of(companion: Path) -> list[Path]:
    """The files beside `companion` whose stem is its stem (its image, once it is there)."""
    stem = companion.stem
    try:
        with os.scandir(companion.parent) as entries:
            return [
                Path(entry.path)
                for entry in entries
                if Path(entry.name).stem == stem and not is_companion(entry.name) and entry.is_file()
            ]
    except OSError:
        return []
