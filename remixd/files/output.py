"""What lands on disk: atomic writes, result names, sidecars and error documents.

Every file gets its final name by `os.replace` of a fsynced temp file in the same folder (style habit 8), so
no partial file ever carries a final name. Temp names start with a dot so the watcher ignores them, and
`remove_stale_temps` clears the ones a crash left behind. The low-level helpers below (safe relative paths,
names that fit NAME_MAX, folder fsyncs, error hints) are public because `files.dispose` names and moves inputs with
the very same rules.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

import remixd
from remixd.errors import OutputError

log = structlog.get_logger(__name__)

TEMP_PREFIX = ".remixd-tmp-"
NAME_MAX = 255  # bytes in one file name on every file system remixd supports
RESULT_SCHEMA = "remixd.result/1"
ERROR_SCHEMA = "remixd.error/1"
MAX_NAME_VARIANTS = 100  # STEM, STEM-<sha8>, STEM-<sha8>-2 … : more means something else is wrong


@dataclass(frozen=True)
class Source:
    """The input as the sidecar and the error file describe it (sha256/bytes unknown if it was unreadable)."""

    inbox: str
    relpath: str
    sha256: str | None
    bytes: int | None
    conversion: str | None = None  # what prepare changed before upload, e.g. "exif-rotated; heic->png"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inbox": self.inbox,
            "relpath": self.relpath,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }
        if self.conversion is not None:
            data["conversion"] = self.conversion
        return data


@dataclass(frozen=True)
class ImageInfo:
    file: str  # the result's file name, without its folder
    sha256: str
    bytes: int
    width: int
    height: int


@dataclass(frozen=True)
class ResultPaths:
    index: int
    image: Path | None  # None: withheld by the safety check, only a sidecar is written
    sidecar: Path


# -- atomic writes ------------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` durably: temp file in the same folder, fsync, rename, fsync the folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(error, path, "create the folder for") from error
    temp = path.parent / temp_name(path.name)
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        temp.replace(path)
        fsync_folder(path.parent)
    except OSError as error:
        remove_quietly(temp)
        raise output_error(error, path, "write") from error


def write_json(path: Path, document: Any) -> None:
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A file name that is not valid UTF-8 reaches us with surrogate escapes; \u escapes keep the
        # document valid UTF-8 JSON that reads back to the very same name.
        data = (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    atomic_write(path, data)


def temp_name(name: str) -> str:
    """`.remixd-tmp-<random>-<name>`, the name cut so the whole stays within NAME_MAX bytes."""
    prefix = f"{TEMP_PREFIX}{secrets.token_hex(4)}-"
    return prefix + _fit(name, NAME_MAX - len(prefix))


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temp files a crash left under `folder` (recursively, never through symbolic links)."""
    removed = []
    for root, _folders, files in os.walk(folder):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                path = Path(root) / name
                try:
                    path.unlink()
                except OSError as error:
                    log.warning("remixd.output.temp_not_removed", path=str(path), error=str(error))
                else:
                    removed.append(path)
    return removed


# -- result names, sidecars and error files -----------------------------------------------------------------


def result_paths(
    output_dir: Path,
    source: Source,
    rule: str,
    fingerprint: str,
    *,
    extensions: Sequence[str | None],
    image_sha256s: Sequence[str | None] = (),
) -> list[ResultPaths]:
    """Where one job's results go: `OUTPUT/REL/STEM.RULE.K.EXT` + `STEM.RULE.K.json`, K = 1…len(extensions).

    `extensions[K-1]` is the downloaded format ("png") or None for a withheld image. Names already taken by
    another source's results (or by an image without a sidecar) make it `STEM-<sha8>.RULE.K.*`; the same
    source, rule and request (a resume after a crash) gets its own names back. `image_sha256s` lets an image
    of ours that lost its sidecar to a crash be recognised as ours.
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


def write_result(paths: ResultPaths, image: bytes | None, sidecar_document: Mapping[str, Any]) -> None:
    """The image first, its sidecar last: a sidecar on disk means the result is complete."""
    if (paths.image is None) != (image is None):
        raise ValueError("an image needs an image path, and a withheld image has none")
    if paths.image is not None and image is not None:
        atomic_write(paths.image, image)
    write_json(paths.sidecar, sidecar_document)


def sidecar(
    *,
    source: Source,
    rule: str,
    fingerprint: str,
    endpoint: str,
    request: Mapping[str, Any],
    created: str,
    index: int,
    count: int,
    item: Mapping[str, Any],
    image: ImageInfo | None,
    cost_usd: float,
    detected_at: datetime,
    submitted_at: datetime,
    completed_at: datetime,
) -> dict[str, Any]:
    """The contract's `remixd.result/1` document; `item` is the API's result item (its url is not kept)."""
    return {
        "schema": RESULT_SCHEMA,
        "remixd_version": remixd.__version__,
        "source": source.to_dict(),
        "rule": {"name": rule, "fingerprint": fingerprint},
        "api": {"endpoint": endpoint, "request": dict(request), "created": created},
        "result": {
            "index": index,
            "count": count,
            "prompt": item.get("prompt"),
            "resolution": item.get("resolution"),
            "seed": item.get("seed"),
            "is_image_safe": bool(item.get("is_image_safe")),
            "style_type": item.get("style_type"),
        },
        "image": None
        if image is None
        else {
            "file": image.file,
            "sha256": image.sha256,
            "bytes": image.bytes,
            "width": image.width,
            "height": image.height,
        },
        "cost_usd": cost_usd,
        "timings": {
            "detected_at": _iso(detected_at),
            "submitted_at": _iso(submitted_at),
            "completed_at": _iso(completed_at),
        },
    }


def error_document(
    *,
    source: Source,
    rule: str | None,
    fingerprint: str | None,
    error: Mapping[str, Any],
    attempts: int,
    failed_at: datetime,
) -> dict[str, Any]:
    """The contract's `remixd.error/1` document; `error` is `RemixdError.to_dict()`."""
    details = {"kind": error.get("kind", "remixd"), "message": error.get("message", ""), "hint": error.get("hint", "")}
    details.update({key: error[key] for key in ("http_status", "response") if error.get(key) is not None})
    return {
        "schema": ERROR_SCHEMA,
        "source": source.to_dict(),
        "rule": None if rule is None else {"name": rule, "fingerprint": fingerprint},
        "error": details,
        "attempts": attempts,
        "failed_at": _iso(failed_at),
    }


def error_file_name(name: str) -> str:
    """`NAME.error.json`; a name near the 255-byte limit is cut so the error file can exist at all."""
    return _fit(name, NAME_MAX - len(".error.json")) + ".error.json"


# -- helpers, shared with dispose ---------------------------------------------------------------------------


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
    yield _fit(stem, NAME_MAX - reserve)
    for number in range(1, MAX_NAME_VARIANTS):
        tag = f"-{sha256[:8]}" + ("" if number == 1 else f"-{number}")
        yield _fit(stem, NAME_MAX - reserve - len(tag)) + tag


def _slot_is_ours(
    folder: Path, entries: set[str], prefix: str, identity: tuple[str, ...], expected_sha256: str | None
) -> bool:
    """Free, or holding this very job's result (same source, rule and request) from before a crash."""
    sidecar_name = prefix + "json"
    if sidecar_name in entries:
        try:
            document = json.loads(_read_no_follow(folder / sidecar_name))
            source, rule = document["source"], document["rule"]
            found = (source["inbox"], source["relpath"], source["sha256"], rule["fingerprint"])
        except (OSError, ValueError, TypeError, KeyError):
            return False  # unreadable or not ours to judge: never overwrite it
        return found == identity
    images = [name for name in entries if name.startswith(prefix) and "." not in name[len(prefix) :]]
    return all(expected_sha256 is not None and sha256_of(folder / name) == expected_sha256 for name in images)


def _names_in(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise output_error(error, folder, "list") from error


def _fit(text: str, limit: int) -> str:
    """`text` cut at a character boundary to at most `limit` bytes as a file name."""
    if limit < 1:
        raise OutputError(f"names around {text!r} are too long", "shorten the rule name")
    while len(os.fsencode(text)) > limit:
        text = text[:-1]
    return text


def _read_no_follow(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def sha256_of(path: Path) -> str | None:
    """The content hash of a regular file; None for anything else (a folder, a link, unreadable)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            return None
    except OSError:
        os.close(descriptor)
        return None
    with os.fdopen(descriptor, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # some network file systems refuse it; harmless
            raise
    finally:
        os.close(descriptor)


def remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("remixd.output.temp_not_removed", path=str(path), error=str(error))


def _first_file_in(path: Path) -> Path:
    """The first component of `path` that exists and is not a folder: what is in the way of a folder."""
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


def output_error(error: OSError, path: Path, action: str) -> OutputError:
    # The hint names the folder the system call failed in (a move can fail at either end).
    folder = Path(os.fsdecode(error.filename)).parent if error.filename else path.parent
    reason = error.strerror or str(error)
    if error.errno in (errno.EACCES, errno.EPERM):
        hint = f"make {folder} writable by the user remixd runs as"
    elif error.errno == errno.EROFS:
        hint = f"{folder} is on a read-only file system; remount it read-write or choose another folder"
    elif error.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free space on the file system holding {folder}"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        failed = Path(os.fsdecode(error.filename)) if error.filename else path
        hint = f"{_first_file_in(failed)} is a file where remixd needs a folder; move it aside"
    elif error.errno == errno.EISDIR:
        hint = f"a folder is in the way at {path}; move it aside"
    else:
        hint = f"check that {folder} exists and is writable"
    return OutputError(f"cannot {action} {path}: {reason}", hint)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
