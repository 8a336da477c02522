"""Output names: `OUTPUT/REL/STEM.RULE.K.EXT`, `STEM-<sha8>` on a collision, and every name shortened to fit
NAME_MAX (README "Output names").

`files.dispose` names and moves inputs with the very same rules (safe relative paths, no symbolic links below
the root, stem variants), so both stages name files the same way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

from remixd.errors import OutputError
from remixd.files import templates
from remixd.files.atomic import NAME_MAX, fit, output_error, read_no_follow, sha256_of
from remixd.files.sidecar import ResultPaths, Source
from remixd.output_name import DEFAULT

MAX_NAME_VARIANTS = 100  # STEM, STEM-<sha8>, STEM-<sha8>-2 … : more means something else is wrong
PATH_MAX = 4096  # bytes in a path with its closing NUL (Linux): longer ones fail with "File name too long"
# The most remixd adds to a name it was given: a temporary prefix (21), a collision tag (12), and
# `.download.jpeg` or `.error.json` (14); names already at NAME_MAX are cut instead of growing.
NAME_SLACK = 48
DOWNLOAD_INFIX = ".download"  # a kept download beside its result: STEM.RULE.K.download.EXT (outputs.keep_download)
SHORTENED = "~"  # then 8 hex of the sha256 of the whole name: what a name shortened to fit ends with


def result_paths(
    output_dir: Path,
    source: Source,
    rule: str,
    fingerprint: str,
    *,
    extensions: Sequence[str | None],
    image_sha256s: Sequence[str | frozenset[str] | None] = (),
    template: str = DEFAULT,
    values: Sequence[Mapping[str, str]] = (),
    reroll: int | None = None,
) -> list[ResultPaths]:
    """Where one job's results go: by default `OUTPUT/REL/STEM.RULE.K.EXT` + `STEM.RULE.K.json`, K = 1…
    len(extensions); `template` (checked at load) and the tokens in `values[K-1]` choose other names.

    `extensions[K-1]` is the downloaded format ("png") or None for a withheld image. Names already taken by
    another source's results (or by an image without a sidecar) make it `STEM-<sha8>.RULE.K.*` (the tag goes
    after `{stem}`, or before the extension when the template has none); the same source, rule and request (a
    resume after a crash) gets its own names back. `image_sha256s` lets an image of ours that lost its sidecar
    to a crash be recognised as ours (by any of the hashes given for its slot: the file as written now, or as
    an earlier version wrote it). A reroll (`reroll`, its id) is a job of its own: it never takes the names of
    the results it repeats, only its own back. Results never overwrite anything else.
    """
    if source.sha256 is None:
        raise ValueError("results need the source's sha256")
    relative = relative_path(source.relpath)
    count = len(extensions)
    per_result = [
        {"rule": rule, "n": str(index), "count": str(count), "relparent": _parent(relative), "name": relative.name}
        | dict(values[index - 1] if index <= len(values) else {})
        for index in range(1, count + 1)
    ]
    # Room after the name: a kept download's `.download` and the longest extension.
    longest_suffix = len(DOWNLOAD_INFIX) + max([4, *(len(ext) for ext in extensions if ext)])
    reserve = (
        1
        + longest_suffix
        + max(
            len(os.fsencode(templates.render_base(template, {**tokens, "stem": "x"}).name)) - 1 for tokens in per_result
        )
    )
    identity = (source.inbox, source.relpath, source.sha256, fingerprint, reroll)
    expected = list(image_sha256s) + [None] * (count - len(image_sha256s))
    entries: dict[Path, set[str]] = {}
    stem = name_stem(relative.name)
    variants: Iterable[tuple[str, str]] = (
        ((variant, "") for variant in stem_variants(stem, source.sha256, reserve))
        if "{stem}" in template
        else itertools.chain([(stem, "")], ((stem, tag) for tag in variant_tags(source.sha256)))
    )
    for variant, tag in variants:
        slots = []
        for index, tokens in enumerate(per_result, start=1):
            rendered = templates.render_base(template, {**tokens, "stem": variant})
            base = shorten_folders(rendered)
            name = shorten(base.name, NAME_MAX - longest_suffix - 1 - len(tag))
            folder = folder_inside(output_dir, base.parent)
            if folder not in entries:
                entries[folder] = _names_in(folder)
            # What the template asked for, when a name in it had to be shortened to exist at all.
            cut = not variant.startswith(stem) or base != rendered or name != base.name
            intended = templates.render_base(template, {**tokens, "stem": stem}) if cut else None
            slots.append((index, folder, f"{name}{tag}.", intended))
        names = {folder / prefix for _, folder, prefix, _ in slots}
        if len(names) == count and all(
            _slot_is_ours(folder, entries[folder], prefix, identity, expected[index - 1])
            for index, folder, prefix, _ in slots
        ):
            return [
                ResultPaths(
                    index,
                    None if ext is None else folder / f"{prefix}{ext}",
                    folder / f"{prefix}json",
                    None if intended is None else f"{intended}.{ext or 'json'}",
                )
                for (index, folder, prefix, intended), ext in zip(slots, extensions, strict=True)
            ]
    raise OutputError(
        f"no free result name for {source.relpath} in {output_dir}", f"move old results out of {output_dir}"
    )


ERROR_SUFFIX = ".error.json"


def error_file_name(name: str) -> str:
    """`NAME.error.json`; a name near the 255-byte limit is shortened as result names are (`shorten`), so the
    error file can exist at all, two long names that begin alike keep an error file each, and the input is
    found again by it (`named_by_error_file`)."""
    return shorten(name, NAME_MAX - len(ERROR_SUFFIX)) + ERROR_SUFFIX


def named_by_error_file(error_file: str, names: Iterable[str]) -> str | None:
    """Which of `names` (a folder's) the error file named `error_file` is of, when its name was shortened."""
    return next((name for name in names if name != error_file and error_file_name(name) == error_file), None)


def shorten(name: str, limit: int) -> str:
    """`name` when it fits in `limit` bytes; else cut to fit with `~` and 8 hex of the sha256 of the whole name
    (README "Output names"): the same name is always shortened the same way, and two long names that begin
    alike stay apart."""
    if len(os.fsencode(name)) <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    return fit(name, limit - len(SHORTENED) - len(digest)) + SHORTENED + digest


def shorten_folders(base: PurePosixPath) -> PurePosixPath:
    """`base` (a path inside the output folder) with each folder name over NAME_MAX shortened to fit."""
    return PurePosixPath(*(shorten(part, NAME_MAX) for part in base.parent.parts), base.name)


def path_fits(path: Path) -> bool:
    """Whether remixd can write `path`, or any name it derives from it (temporary, tagged, `.error.json`),
    within PATH_MAX and NAME_MAX: a result that cannot be written must be refused before it is paid for."""
    folder = os.fsencode(path.parent)
    if any(len(part) > NAME_MAX for part in folder.split(b"/")):
        return False
    name = min(NAME_MAX, len(os.fsencode(path.name)) + NAME_SLACK)
    return len(folder) + 1 + name < PATH_MAX


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
    """STEM, then STEM-<sha8>, STEM-<sha8>-2 …, each shortened so `reserve` more bytes still fit in NAME_MAX."""
    yield shorten(stem, NAME_MAX - reserve)
    for tag in variant_tags(sha256):
        yield shorten(stem, NAME_MAX - reserve - len(tag)) + tag


def variant_tags(sha256: str) -> Iterator[str]:
    """-<sha8>, -<sha8>-2 …: what tells apart two inputs whose names would collide."""
    for number in range(1, MAX_NAME_VARIANTS):
        yield f"-{sha256[:8]}" + ("" if number == 1 else f"-{number}")


def _parent(relative: PurePosixPath) -> str:
    parent = str(relative.parent)
    return "" if parent == "." else parent


def _slot_is_ours(
    folder: Path, entries: set[str], prefix: str, identity: tuple[object, ...], expected: str | frozenset[str] | None
) -> bool:
    """Free, or holding this very job's result (same source, rule and request) from before a crash."""
    sidecar_name = prefix + "json"
    if sidecar_name in entries:
        try:
            document = json.loads(read_no_follow(folder / sidecar_name))
            source, rule = document["source"], document["rule"]
            reroll = (document.get("reroll") or {}).get("id")
            found = (source["inbox"], source["relpath"], source["sha256"], rule["fingerprint"], reroll)
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
