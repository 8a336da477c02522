"""Reference images named in a rule (`style_reference_images`, `character_reference_images`,
`character_reference_mask`), checked at load time: a missing or oversized reference would otherwise fail
every input of the rule, one paid upload after another.

Paths are relative to the config file; the request that leaves here holds them absolute.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from remixd.config.state_values import resolved
from remixd.ideogram.requests import RemixRequest

ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")  # what Ideogram takes (MPO: a camera JPEG)
Located = tuple[tuple[str | int, ...], str, str]  # (key path within the request, message, fix)


def check_references(request: RemixRequest, base: Path) -> tuple[RemixRequest, list[Located]]:
    """The request with absolute reference paths, and every problem found (empty when all are usable)."""
    problems: list[Located] = []
    cap = request.route.max_reference_bytes
    absolute: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for name, index, text in _named(request):
        path = resolved(base, text)
        absolute.setdefault(name, []).append(str(path))
        where: tuple[str | int, ...] = (name,) if name == "character_reference_mask" else (name, index)
        problem, size = _usable(path, cap)
        if problem is not None:
            problems.append((where, *problem))
        elif size is not None:
            sizes[f"{name}[{index}]"] = size
    mask, character = sizes.get("character_reference_mask[0]"), sizes.get("character_reference_images[0]")
    if mask is not None and character is not None and mask != character:
        problems.append(
            (
                ("character_reference_mask",),
                f"the mask is {mask[0]}x{mask[1]}, the character reference {character[0]}x{character[1]}",
                "use a mask of the reference's size (grayscale, white where the character is)",
            )
        )
    update: dict[str, object] = {
        name: paths[0] if name == "character_reference_mask" else tuple(paths) for name, paths in absolute.items()
    }
    return (request.model_copy(update=update) if update else request), problems


def _named(request: RemixRequest) -> list[tuple[str, int, str]]:
    named = [("style_reference_images", i, p) for i, p in enumerate(request.style_reference_images or ())]
    named += [("character_reference_images", i, p) for i, p in enumerate(request.character_reference_images or ())]
    if request.character_reference_mask is not None:
        named.append(("character_reference_mask", 0, request.character_reference_mask))
    return named


def _usable(path: Path, cap: int) -> tuple[tuple[str, str] | None, tuple[int, int] | None]:
    try:
        size = path.stat().st_size
    except OSError:
        return (f"{path} does not exist", "fix the path (relative to the config file) or add the image"), None
    if not path.is_file():
        return (f"{path} is not a file", "name an image file"), None
    if size > cap:
        return (f"{path} is {size} bytes; Ideogram takes at most {cap}", "use a smaller reference image"), None
    from PIL import Image, UnidentifiedImageError  # only a rule with references needs Pillow

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                kind, dimensions = image.format, image.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        return (f"{path} is not an image remixd can read", "use a JPEG, PNG or WebP reference"), None
    if kind not in ACCEPTED_FORMATS:
        return (f"{path} is {kind}; Ideogram takes JPEG, PNG or WebP references", "convert it to PNG or JPEG"), None
    return None, dimensions
