"""Whether every path an input will need can exist, checked before anything is paid for.

A result is paid when its request is sent; one whose name the file system refuses ("File name too long")
would then be retried and never land. So before sending, the worker works out the paths the input will
need (each result and its sidecar, where the input goes when done, and where it and its `.error.json` go
when it fails) and fails the input at once when one of them does not fit PATH_MAX or NAME_MAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath

from remixd.config.model import InboxConfig
from remixd.errors import InputError, OutputError
from remixd.files import names, templates
from remixd.files.atomic import NAME_MAX

LONGEST_SEED = "4294967295"  # a seed is a 32-bit number: the widest `{seed}` a result can have


def too_long(
    relpath: str, inbox: InboxConfig, outputs: Sequence[tuple[str, str, int]], *, now: datetime
) -> InputError | None:
    """An error naming the file and the first path that cannot exist, or None when all of them fit;
    `outputs` holds (rule, model, number of images) for each job the input will send."""
    relative = PurePosixPath(relpath)
    needed: list[Path] = []
    for rule, model, images in outputs:
        values = templates.tokens(relpath, rule=rule, model=model, count=images, source_sha256="0" * 64, moment=now)
        values |= {"stem": names.name_stem(relative.name), "n": str(images), "seed": LONGEST_SEED}
        try:
            needed.append(inbox.output / names.shorten_folders(templates.render_base(inbox.output_name, values)))
        except OutputError:
            continue  # a name that climbs out is refused where it is written, with its own error
    if inbox.after == "move" and inbox.done_dir is not None:
        needed.append(inbox.done_dir / relative)
    needed.append(inbox.failed_dir / relative)
    for path in needed:
        if not names.path_fits(path):
            return InputError(
                f"{relpath}: the path {path} is too long for the file system "
                f"({names.PATH_MAX - 1} bytes in a path, {NAME_MAX} in a name, with room for what remixd adds)",
                "move the file to a shallower folder or give it a shorter name, or choose shorter output, done "
                "and failed folders; nothing was sent",
            )
    return None
