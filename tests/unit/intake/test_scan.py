"""Ignore rules and the backlog scan, on real folders with symlinks, fifos and folders named like images."""

# tests compare with literal counts

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remixd.errors import InboxUnavailable
from remixd.intake.scan import BUILTIN_IGNORES, _builtin_ignored, is_ignored, scan_stat


def scan(inbox: Inbox) -> Iterator[Path]:
    """The scan's paths (the lstat it also yields is the intake's business)."""
    return (Path(path) for path, _relpath, _info in scan_stat(inbox))


@dataclass(frozen=True)
class Inbox:
    """Stand-in for config.InboxConfig: the attributes the watch stage reads."""

    path: Path
    recursive: bool = False
    settle_s: float = 2.0
    detect: str = "auto"
    ignore: tuple[str, ...] = ()
    excluded_dirs: tuple[Path, ...] = ()
    poll_s: float = 0.1


PLAIN = Inbox(Path("/srv/inbox"))


@pytest.mark.parametrize(
    "relpath",
    [
        ".hidden.jpg",
        ".remixd-tmp-1a2b.png",
        "sub/.git/x.jpg",
        "a.jpg.part",
        "a.JPG.PART",
        "a.jpg.partial",
        "a.jpg.crdownload",
        "a.jpg.download",
        "a.jpg.filepart",
        "a.tmp",
        "A.TMP",
        "a.jpg~",
        "~$report.docx",
        ".~lock.a.odt#",
        ".DS_Store",
        "Thumbs.db",
        "thumbs.db",
        "desktop.ini",
        "Desktop.ini",
        "@eaDir/a.jpg",
        "sub/@eaDir/SYNOFILE_THUMB_M.jpg",
        "deep/er/@eaDir/x/y.jpg",
        ".stfolder",
        ".stversions/a.jpg",
        ".Trashes/501/a.jpg",
        "__MACOSX/._a.jpg",
        "#recycle/a.jpg",
        "sub/a.jpg.part",
    ],
)
def test_builtin_ignores(relpath: str) -> None:
    assert is_ignored(relpath, PLAIN)


@pytest.mark.parametrize(
    "relpath",
    [
        "a.jpg",
        "sub/a.jpg",
        "part.jpg",
        "a.partial.jpg",
        "tmp/a.jpg",
        "~a.jpg",
        "a~b.jpg",
        "recycle/a.jpg",
        "eaDir/a.jpg",
        "x.jpg/inner.png",
        "./a.jpg",
    ],
)
def test_ordinary_names_are_not_ignored(relpath: str) -> None:
    assert not is_ignored(relpath, PLAIN)


@pytest.mark.parametrize(
    ("relpath", "ignored"),
    [
        ("x.raw", True),
        ("sub/x.raw", True),  # on the name
        ("drafts/a.jpg", True),  # a folder matched by name: everything below it
        ("sub/drafts/a.jpg", True),
        ("keep/a.png", True),  # on the relative path
        ("other/keep/a.png", False),  # a relative-path glob is anchored at the inbox
        ("keep/a.jpg", False),
        ("x.RAW", False),  # user globs are case-sensitive
        ("a.jpg", False),
    ],
)
def test_user_globs(relpath: str, ignored: bool) -> None:
    inbox = Inbox(Path("/srv/inbox"), ignore=("*.raw", "drafts", "keep/*.png"))
    assert is_ignored(relpath, inbox) is ignored


@given(st.text(alphabet=".~$#@_-aAbBdDeEfFiIkKlLmMnNoOpPrRsStTwWxX", max_size=14))
def test_fast_builtin_check_agrees_with_the_glob_list(name: str) -> None:
    lowered = name.lower()
    by_glob = any(fnmatch.fnmatchcase(lowered, glob.lower()) for glob in BUILTIN_IGNORES)
    assert _builtin_ignored(name) is by_glob


@pytest.mark.parametrize(
    "name",
    [
        "x.part",
        "x.Partial",
        "x.crdownload",
        "x.download",
        "x.filepart",
        "x.tmp",
        "x~",
        "~$x",
        ".~lock.x#",
        ".DS_Store",
        "THUMBS.DB",
        "desktop.ini",
        "@eaDir",
        ".stfolder",
        ".stversions",
        ".Trashes",
        "__MACOSX",
        "#recycle",
        "a.jpg",
        "download",
        "part",
        "tmp",
        "~x",
        "x.downloads",
    ],
)
def test_fast_builtin_check_agrees_on_every_listed_name(name: str) -> None:
    by_glob = any(fnmatch.fnmatchcase(name.lower(), glob.lower()) for glob in BUILTIN_IGNORES)
    assert _builtin_ignored(name) is by_glob


# --- scan -------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    for relpath in (
        "a.jpg",
        "b.png",
        ".hidden.jpg",
        "c.jpg.part",
        "Thumbs.db",
        "sub/d.jpg",
        "sub/deeper/e.jpg",
        "x.jpg/f.jpg",
        "@eaDir/a.jpg/SYNOFILE_THUMB.jpg",
        "out/a.poster.1.png",
        "drafts/g.jpg",
    ):
        path = inbox / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"image")
    (inbox / "link-to-file.jpg").symlink_to(inbox / "a.jpg")
    (inbox / "link-to-dir").symlink_to(inbox / "sub", target_is_directory=True)
    (inbox / "link-outside.jpg").symlink_to("/etc/hostname")
    os.mkfifo(inbox / "pipe.jpg")
    return inbox


def _relpaths(inbox: Inbox) -> list[str]:
    return [path.relative_to(inbox.path).as_posix() for path in scan(inbox)]


# Links are yielded, never followed nor descended into: the worker refuses each one with an error file.
LINKS = ["link-outside.jpg", "link-to-dir", "link-to-file.jpg"]


def test_scan_flat(tree: Path) -> None:
    assert _relpaths(Inbox(tree)) == ["a.jpg", "b.png", *LINKS]


def test_scan_recursive(tree: Path) -> None:
    inbox = Inbox(tree, recursive=True, ignore=("drafts",), excluded_dirs=(tree / "out",))
    assert _relpaths(inbox) == ["a.jpg", "b.png", *LINKS, "sub/d.jpg", "sub/deeper/e.jpg", "x.jpg/f.jpg"]


def test_scan_yields_real_absolute_paths(tree: Path) -> None:
    found = list(scan(Inbox(tree, recursive=True)))
    assert all(type(path) is type(Path()) and path.is_absolute() for path in found)
    assert tree / "sub" / "deeper" / "e.jpg" in found
    assert found[0].parent == tree
    assert found[0].name == "a.jpg"
    assert found[0].suffix == ".jpg"


def test_scan_skips_a_fifo_without_opening_it(tree: Path) -> None:
    """Opening a fifo for reading blocks until a writer comes: the scan must finish regardless."""
    result: list[str] = []
    inbox = Inbox(tree, recursive=True)
    worker = threading.Thread(target=lambda: result.extend(_relpaths(inbox)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with (tree / "pipe.jpg").open("wb"):  # unblock it so the thread can end, then fail
            pass
        pytest.fail("scan blocked on the fifo")
    assert "pipe.jpg" not in result
    assert "a.jpg" in result


def test_scan_excluded_dirs_through_a_symlinked_inbox(tree: Path, tmp_path: Path) -> None:
    """The config may spell the inbox through a symlink and the output folder by its real path."""
    alias = tmp_path / "alias"
    alias.symlink_to(tree, target_is_directory=True)
    excluded = (tree / "out", tree / "sub/deeper")
    inbox = Inbox(alias, recursive=True, ignore=("drafts",), excluded_dirs=excluded)
    assert _relpaths(inbox) == ["a.jpg", "b.png", *LINKS, "sub/d.jpg", "x.jpg/f.jpg"]


def test_scan_output_folder_equal_to_the_inbox_feeds_nothing_back(tree: Path) -> None:
    assert _relpaths(Inbox(tree, recursive=True, excluded_dirs=(tree,))) == []


def test_scan_excluded_dirs_outside_the_inbox_do_not_matter(tree: Path, tmp_path: Path) -> None:
    inbox = Inbox(tree, excluded_dirs=(tmp_path / "elsewhere",))
    assert _relpaths(inbox) == ["a.jpg", "b.png", *LINKS]


def test_scan_missing_inbox_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(InboxUnavailable, match="missing"):
        scan(Inbox(tmp_path / "not-mounted"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InboxUnavailable):
        scan(Inbox(tmp_path / "file"))


def test_scan_inbox_vanishing_before_reading_raises(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    found = scan(Inbox(inbox))
    inbox.rmdir()
    with pytest.raises(InboxUnavailable, match="cannot read"):
        next(found)


def test_scan_survives_a_subfolder_vanishing_mid_scan(tree: Path) -> None:
    found = scan(Inbox(tree, recursive=True, ignore=("drafts",), excluded_dirs=(tree / "out",)))
    first = next(found)  # files of a folder come before its sub-folders are opened
    assert first == tree / "a.jpg"
    for path in sorted((tree / "sub").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (tree / "sub").rmdir()
    rest = [path.relative_to(tree).as_posix() for path in found]
    assert rest == ["b.png", *LINKS, "x.jpg/f.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_scan_skips_an_unreadable_subfolder(tree: Path) -> None:
    locked = tree / "sub"
    locked.chmod(0)
    try:
        assert "x.jpg/f.jpg" in _relpaths(Inbox(tree, recursive=True))
    finally:
        locked.chmod(0o755)
