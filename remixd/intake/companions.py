"""Companions (README "Companions"): `STEM.txt` and `STEM.yaml` / `STEM.yml` / `STEM.json` beside an image.

A companion is never an input of its own: the intake skips it, and reads it when its image is claimed, so the
journal holds the text that was used (in the claim's transaction) and a companion written later changes nothing
already claimed. An editor's temp file and rename lands as one new file, which is all the intake looks at.
Suffixes are matched in any case: cameras and Windows tools write `.TXT`, and YAML is as often `.yml`.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath, PurePosixPath

from remixd.config.companion import MAX_BYTES, SUFFIXES, TOO_LARGE, is_companion
from remixd.intake.scan import InboxConfig, is_ignored

_BOM = b"\xef\xbb\xbf"


def _order(name: str) -> tuple[int, str]:
    return SUFFIXES.index(PurePath(name).suffix.lower()), name


class Finder:
    """Reads the companions beside images, listing each folder once (the suffixes' case is not known in
    advance). A finder sees a folder as it was at its first look: make one per batch of claims."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, list[str]]] = {}

    def read(self, image: Path) -> tuple[tuple[str, str], ...]:
        """(file name, text) of each companion beside `image` that exists now, the `.txt` first. A file that is
        not UTF-8 is kept with replacement characters, one over MAX_BYTES as TOO_LARGE: checking it fails the
        image, with the companion named."""
        found: list[tuple[str, str]] = []
        for name in self.names(image):
            text = _read_one(image.with_name(name))
            if text is not None:
                found.append((name, text))
        return tuple(found)

    def names(self, image: Path) -> list[str]:
        """The names of the companions beside `image`, the `.txt` first."""
        return sorted(self._by_stem(image.parent).get(image.stem, ()), key=_order)

    def _by_stem(self, folder: Path) -> dict[str, list[str]]:
        listing = self._folders.get(folder)
        if listing is None:
            listing = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if is_companion(entry.name):
                            listing.setdefault(PurePath(entry.name).stem, []).append(entry.name)
            except OSError:
                pass  # a folder that vanished or cannot be listed: no companions (`required` waits for one)
            self._folders[folder] = listing
        return listing


def _read_one(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            data = stream.read(len(_BOM) + MAX_BYTES + 1)
    except OSError:
        return None  # gone, a folder, or unreadable now (permissions): as if absent
    data = data.removeprefix(_BOM)
    if len(data) > MAX_BYTES:
        return TOO_LARGE
    return data.decode("utf-8", errors="replace")


def images_of(companion: Path) -> list[Path]:
    """The files beside `companion` whose stem is its stem (its image, once it is there; given an image, it and
    the other images of its stem)."""
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


def stem_waits(image: Path, relpath: str, inbox: InboxConfig) -> bool:
    """Whether another file of `image`'s stem beside it is one the intake claims (mug.png, settling or not
    claimed yet, beside mug.jpg): the stem's companions then wait for it, or it would be sent without them."""
    return any(
        other.name != image.name and not is_ignored(str(PurePosixPath(relpath).with_name(other.name)), inbox)
        for other in images_of(image)
    )
