"""Output names: `OUTPUT/REL/STEM.RULE.K.EXT`, `STEM-<sha8>` on a collision, and every name cut to fit NAME_MAX.

`files.dispose` names and moves inputs with the very same rules (safe relative paths, no symbolic links below
the root, stem variants), so both stages name files the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from remixd.errors import OutputError
from remixd.files.atomic import NAME_MAX, fit, output_error, read_no_follow, sha256_of
from remixd.files.sidecar import ResultPaths, Source

MAX_NAME_VARIANTS = 100  # STEM, STEM-<sha8>, STEM-<sha8>-2 … : more means something else is wrong


def result_paths(
    output_dir: Path,
    source: Source,
    rule: str,
    fingerprint: str,
    *,
    extensions: Sequence[str | None],
    image_sha256s: Sequence[str | frozenset[str] | None] = (),
) -> list[ResultPaths]:
    """Where one job's results go: `OUTPUT/REL/STEM.RULE.K.EXT` + `STEM.RULE.K.json`, K = 1…len(extensions).

    `extensions[K-1]` is the downloaded format ("png") or None for a withheld image. Names already taken by
    another source's results (or by an image without a sidecar) make it `STEM-<sha8>.RULE.K.*`; the same
    source, rule and request (a resume after a crash) gets its own names back. `image_sha256s` lets an image
    of ours that lost its sidecar to a crash be recognised as ours (by any of the hashes given for its slot:
    the file as written now, or as an earlier version wrote it).
    """
    if source.sha256 is None:
        raise ValueError("results need the source's sha256")
    relative = relative_path(source.relpath)
    folder = folder_inside(output_dir, relative.parent)
    count = len(extensions)
    reserve = len(f".{rule}.{count}.") + max([4, *(len(ext) for ext in extensions if ext)])
    entries = _names_in(folder)
    identity = (source.inbox, source.relpath, source.sha256, fingerprint)
    for stem in stem_variants(name_stem(relative.name), source.sha256, reserve):
        slots = [(index, f"{stem}.{rule}.{index}.") for index in range(1, count + 1)]
        expected = list(image_sha256s) + [None] * (count - len(image_sha256s))
        if all(_slot_is_ours(folder, entries, prefix, identity, expected[index - 1]) for index, prefix in slots):
            return [
                ResultPaths(index, None if ext is None else folder / f"{prefix}{ext}", folder / f"{prefix}json")
                for (index, prefix), ext in zip(slots, extensions, strict=True)
            ]
    raise OutputError(f"no free result name for {source.relpath} in {folder}", f"move old results out of {folder}")


def error_file_name(name: str) -> str:
    """`NAME.error.json`; a name near the 255-byte limit is cut so the error file can exist at all."""
    return fit(name, NAME_MAX - len(".error.json")) + ".error.json"


def relative_path(relpath: str) -> PurePosixPath:
    """An inbox-relative path that cannot climb out of the folder it is joined to."""
    relative = PurePosixPath(relpath)
    if relative.is_absolute() or not relative.parts or ".." in relative.parts or relpath.endswith("/"):
        raise ValueError(f"{relpath!r} is not a relative file path")
    return relative


def folder_inside(root: Path, relative_folder: PurePosixPath) -> Path:
    """`root/relative_folder`, refusing symbolic links below root: they could lead writes out of it."""
    folder = root
    for part in relative_folder.parts:
        folder = folder / part
        if folder.is_symlink():
            raise OutputError(
                f"{folder} is a symbolic link; remixd does not follow links out of its folders",
                f"replace {folder} with a real folder",
            )
    return folder


def name_stem(name: str) -> str:
    """The name without its last suffix: `a.tar.gz` -> `a.tar`."""
    suffix = PurePosixPath(name).suffix
    return name[: -len(suffix)] if suffix else name


def stem_variants(stem: str, sha256: str, reserve: int) -> Iterator[str]:
    """STEM, then STEM-<sha8>, STEM-<sha8>-2 …, each cut so `reserve` more bytes still fit in NAME_MAX."""
    yield fit(stem, NAME_MAX - reserve)
    for number in range(1, MAX_NAME_VARIANTS):
        tag = f"-{sha256[:8]}" + ("" if number == 1 else f"-{number}")
        yield fit(stem, NAME_MAX - reserve - len(tag)) + tag


def _slot_is_ours(
    folder: Path, entries: set[str], prefix: str, identity: tuple[str, ...], expected: str | frozenset[str] | None
) -> bool:
    """Free, or holding this very job's result (same source, rule and request) from before a crash."""
    sidecar_name = prefix + "json"
    if sidecar_name in entries:
        try:
            document = json.loads(read_no_follow(folder / sidecar_name))
            source, rule = document["source"], document["rule"]
            found = (source["inbox"], source["relpath"], source["sha256"], rule["fingerprint"])
        except (OSError, ValueError, TypeError, KeyError):
            return False  # unreadable or not ours to judge: never overwrite it
        return found == identity
    images = [name for name in entries if name.startswith(prefix) and "." not in name[len(prefix) :]]
    accepted = frozenset([expected]) if isinstance(expected, str) else expected or frozenset()
    return all(sha256_of(folder / name) in accepted for name in images)


def _names_in(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise output_error(error, folder, "list") from error
