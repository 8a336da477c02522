"""Moving a file durably into a folder under the first free name: `NAME`, else `STEM-<sha8>.EXT` and longer
hashes (`files.names`), a file already there with the same bytes counting as the copy (a move repeated after a
crash, or the very same bytes dropped again). Across file systems a move is a copy to a temp name, fsynced and
renamed into place, and only then the source's removal."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from remixd.errors import OutputError
from remixd.files.atomic import fsync_folder, remove_quietly, sha256_of, temp_name
from remixd.files.names import name_stem, stem_variants


def move_to_free_name(src: Path, folder: Path, name: str, sha256: str | None) -> Path | None:
    present = lexists(src)
    digest = sha256 if sha256 is not None or not present else sha256_of(src)
    source_digest: str | None = None  # hashed only if a same-named file is in the way
    for candidate in name_variants(folder, name, digest):
        if not lexists(candidate):
            if not present:
                # Moves take the first free name, so the source's copy cannot lie further on.
                return None
            folder.mkdir(parents=True, exist_ok=True)
            move(src, candidate)
            return candidate
        if present and source_digest is None:
            source_digest = sha256_of(src)
        expected = source_digest if present else digest
        if expected is not None and sha256_of(candidate) == expected:
            if present:  # a copy was made before a crash, or the very same bytes were dropped again
                src.unlink()
                fsync_folder(src.parent)
            return candidate
    if not present:
        return None  # gone, and no file here is known to be its copy
    raise OutputError(f"no free name for {src} in {folder}", f"move old files out of {folder}")


def copy_to_free_name(src: Path, folder: Path, name: str) -> None:
    """A durable copy of `src` under the first free name, as `move_to_free_name` would move it; a copy there
    already (made before a crash) is not made twice. Nothing when `src` is gone."""
    digest = sha256_of(src)
    if digest is None:
        return
    for candidate in name_variants(folder, name, digest):
        if not lexists(candidate):
            folder.mkdir(parents=True, exist_ok=True)
            copy_durably(src, candidate)
            return
        if sha256_of(candidate) == digest:
            return
    raise OutputError(f"no free name for a copy of {src} in {folder}", f"move old files out of {folder}")


def move(src: Path, destination: Path) -> None:
    """A rename, or a durable copy across file systems."""
    try:
        src.replace(destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        copy_durably(src, destination)
        src.unlink()  # only now: the copy is complete, fsynced and under its final name
    fsync_folder(destination.parent)
    fsync_folder(src.parent)


def copy_durably(src: Path, destination: Path) -> None:
    """A move across file systems: copy to a temp name beside the destination, fsync, rename into place."""
    temp = destination.parent / temp_name(destination.name)
    try:
        reader = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(reader, "rb") as source_file:
            writer = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            with os.fdopen(writer, "wb") as target_file:
                shutil.copyfileobj(source_file, target_file, 1 << 20)
                target_file.flush()
                shutil.copystat(src, temp, follow_symlinks=False)  # the user's mtime survives the move
                os.fsync(target_file.fileno())
        temp.replace(destination)
        fsync_folder(destination.parent)
    except BaseException:
        remove_quietly(temp)
        raise


def name_variants(folder: Path, name: str, sha256: str | None) -> Iterator[Path]:
    yield folder / name
    if sha256 is None:
        return
    suffix = PurePosixPath(name).suffix
    for stem in list(stem_variants(name_stem(name), sha256, len(os.fsencode(suffix))))[1:]:
        yield folder / f"{stem}{suffix}"


def lexists(path: Path) -> bool:
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    return True
