# literal expectations read best here; /dev/shm is probed as a second file system
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from remixd.errors import OutputError
from remixd.files.atomic import NAME_MAX, TEMP_PREFIX, sha256_of
from remixd.files.dispose import HELD_PREFIX, After, Replaced, dispose_done, dispose_failed
from remixd.files.sidecar import ERROR_SCHEMA
from tests.helpers import ODD_NAMES, SHA

T = TypeVar("T")


def temps_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.startswith(TEMP_PREFIX)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    return folder


def drop(inbox: Path, relpath: str = "sub/a.jpg", data: bytes = b"input bytes") -> tuple[Path, str]:
    path = inbox / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, sha256(data)


def test_keep_and_delete(inbox: Path, tmp_path: Path) -> None:
    src, digest = drop(inbox)
    assert dispose_done(src, "keep", None, "sub/a.jpg", digest) is None
    assert src.exists()
    assert dispose_done(src, "delete", None, "sub/a.jpg", digest) is None
    assert not src.exists()
    assert dispose_done(src, "delete", None, "sub/a.jpg", digest) is None  # again: nothing to do


def test_move_keeps_the_relative_path_and_is_idempotent(inbox: Path, tmp_path: Path) -> None:
    src, digest = drop(inbox)
    os.utime(src, ns=(1_000_000_000, 1_000_000_000))
    done = tmp_path / "done"
    moved = dispose_done(src, "move", done, "sub/a.jpg", digest)
    assert moved == done / "sub" / "a.jpg"
    assert moved.read_bytes() == b"input bytes"
    assert moved.stat().st_mtime_ns == 1_000_000_000
    assert not src.exists()
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == moved  # recovery calls it again
    assert temps_under(tmp_path) == []


def test_a_name_taken_by_another_file_gets_the_hashed_name(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    (done / "sub").mkdir(parents=True)
    (done / "sub" / "a.jpg").write_bytes(b"an earlier, different a.jpg")
    src, digest = drop(inbox)
    moved = dispose_done(src, "move", done, "sub/a.jpg", digest)
    assert moved == done / "sub" / f"a-{digest[:8]}.jpg"
    assert (done / "sub" / "a.jpg").read_bytes() == b"an earlier, different a.jpg"
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == moved


def test_the_same_bytes_already_in_place_complete_a_half_done_move(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    src, digest = drop(inbox)
    (done / "sub").mkdir(parents=True)
    (done / "sub" / "a.jpg").write_bytes(b"input bytes")  # copied across devices, then the crash
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == done / "sub" / "a.jpg"
    assert not src.exists()


def test_a_source_gone_without_a_copy_is_reported_as_none(inbox: Path, tmp_path: Path) -> None:
    assert dispose_done(inbox / "sub" / "gone.jpg", "move", tmp_path / "done", "sub/gone.jpg", SHA) is None


@pytest.fixture(params=["real", "simulated"])
def other_device(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on another file system: /dev/shm when it is one, else os.replace refusing with EXDEV."""
    if request.param == "real":
        if not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("no second file system at /dev/shm")
        with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
            yield Path(folder)
        return
    real_replace = os.replace

    def replace_within_a_folder(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_within_a_folder)
    yield tmp_path / "other-device"


def test_a_move_across_file_systems(inbox: Path, other_device: Path) -> None:
    src, digest = drop(inbox, "sub/ünï code.jpg", b"x" * 3_000_000)
    os.utime(src, ns=(2_000_000_000, 2_000_000_000))
    moved = dispose_done(src, "move", other_device / "done", "sub/ünï code.jpg", digest)
    assert moved == other_device / "done" / "sub" / "ünï code.jpg"
    assert sha256(moved.read_bytes()) == digest
    assert moved.stat().st_mtime_ns == 2_000_000_000
    assert not src.exists()
    assert temps_under(other_device) == []


def test_failed_inputs_go_to_failed_with_their_error_file(inbox: Path, tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    src, digest = drop(inbox)
    document = {"schema": ERROR_SCHEMA, "error": {"message": "422"}}
    disposed = dispose_failed(src, failed, "sub/a.jpg", digest, document)
    assert disposed.error_file == failed / "sub" / "a.jpg.error.json"
    assert disposed.input == failed / "sub" / "a.jpg"
    assert json.loads(disposed.error_file.read_text()) == document
    assert (failed / "sub" / "a.jpg").read_bytes() == b"input bytes"
    assert not src.exists()
    assert dispose_failed(src, failed, "sub/a.jpg", digest, document) == disposed  # idempotent

    other, other_digest = drop(inbox, data=b"another a.jpg")
    hashed = dispose_failed(other, failed, "sub/a.jpg", other_digest, document)
    assert hashed.input == failed / "sub" / f"a-{other_digest[:8]}.jpg"
    assert hashed.error_file == failed / "sub" / f"a-{other_digest[:8]}.jpg.error.json"
    vanished = dispose_failed(inbox / "vanished.jpg", failed, "vanished.jpg", None, document)
    assert vanished.input is None
    assert vanished.error_file == failed / "vanished.jpg.error.json"
    assert vanished.error_file.exists()


def test_an_unhashed_failed_input_still_gets_a_hashed_name_on_collision(inbox: Path, tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    (failed / "sub").mkdir(parents=True)
    (failed / "sub" / "a.jpg").write_bytes(b"older")
    src, digest = drop(inbox, data=b"unreadable")
    disposed = dispose_failed(src, failed, "sub/a.jpg", None, {"error": {}})
    assert disposed.error_file.name == f"a-{digest[:8]}.jpg.error.json"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_are_moved_and_failed(inbox: Path, tmp_path: Path, name: str) -> None:
    src, digest = drop(inbox, f"sub/{name}")
    moved = dispose_done(src, "move", tmp_path / "done", f"sub/{name}", digest)
    assert moved == tmp_path / "done" / "sub" / name
    collided, collided_digest = drop(inbox, f"sub/{name}", b"different bytes")
    hashed = dispose_done(collided, "move", tmp_path / "done", f"sub/{name}", collided_digest)
    assert hashed is not None
    assert collided_digest[:8] in hashed.name
    assert len(os.fsencode(hashed.name)) <= NAME_MAX
    failing, failing_digest = drop(inbox, f"sub/{name}")
    disposed = dispose_failed(failing, tmp_path / "failed", f"sub/{name}", failing_digest, {"error": {}})
    assert disposed.input == tmp_path / "failed" / "sub" / name
    assert disposed.input.exists()
    assert disposed.error_file.exists()
    assert len(os.fsencode(disposed.error_file.name)) <= NAME_MAX


def test_a_failed_folder_that_is_a_file_raises_and_keeps_the_input(inbox: Path, tmp_path: Path) -> None:
    (tmp_path / "failed").write_text("in the way")
    src, digest = drop(inbox)
    with pytest.raises(OutputError) as caught:
        dispose_failed(src, tmp_path / "failed", "sub/a.jpg", digest, {"error": {}})
    assert str(tmp_path / "failed") in caught.value.message
    assert src.read_bytes() == b"input bytes"


def test_a_source_that_is_unreadable_is_never_removed_for_a_look_alike(inbox: Path, tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    (failed / "sub" / "a.jpg").mkdir(parents=True)  # a folder where the name would go: nothing to compare
    src = inbox / "sub" / "a.jpg"
    src.symlink_to(tmp_path / "nowhere")  # hashing it gives nothing either
    with pytest.raises(OutputError, match="no free name"):
        dispose_failed(src, failed, "sub/a.jpg", None, {"error": {}})
    assert src.is_symlink()


def test_a_folder_in_the_way_is_skipped_for_the_hashed_name(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    (done / "sub" / "a.jpg").mkdir(parents=True)
    src, digest = drop(inbox)
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == done / "sub" / f"a-{digest[:8]}.jpg"
    assert not src.exists()


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_file_that_changed_since_it_was_processed_is_left_as_a_new_input(
    inbox: Path, tmp_path: Path, after: After
) -> None:
    src, digest = drop(inbox)
    src.write_bytes(b"another image saved over it")
    with pytest.raises(Replaced):
        dispose_done(src, after, tmp_path / "done", "sub/a.jpg", digest)
    assert src.read_bytes() == b"another image saved over it"
    assert not (tmp_path / "done").exists()


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_rewrite_in_place_right_after_the_check_never_reaches_the_file_moved_or_deleted(
    inbox: Path, tmp_path: Path, after: After
) -> None:
    """A program saves over the input by name, in place, the instant after remixd checked it: the rewrite
    went to done under the old image's sidecar while the check came before the move out of the name."""
    done = tmp_path / "done"
    src, digest = drop(inbox, data=b"processed")

    def check_then_rewrite(path: Path) -> str | None:
        found = sha256_of(path)
        with contextlib.suppress(FileNotFoundError), src.open("r+b") as same_inode:  # never creates a file
            same_inode.write(b"rewritten")
        return found

    dispose_done(src, after, done, "sub/a.jpg", digest, digest=check_then_rewrite)
    if after == "move":
        assert (done / "sub/a.jpg").read_bytes() == b"processed"
    assert not src.exists()  # the rewrite found no file under the name: nothing of the user's was touched
    assert not [path for path in src.parent.iterdir() if path.name.startswith(TEMP_PREFIX)]


def test_a_writer_still_writing_while_it_is_checked_makes_it_a_new_input(inbox: Path, tmp_path: Path) -> None:
    src, digest = drop(inbox, data=b"processed")
    writer = src.open("r+b")  # opened before the disposal: it still reaches the held file

    def check_while_written(path: Path) -> str | None:
        found = sha256_of(path)
        writer.write(b"rewritten")
        writer.flush()
        os.utime(path, ns=(1, 1))  # the write's new mtime, whatever the clock's resolution
        return found

    try:
        with pytest.raises(Replaced):
            dispose_done(src, "move", tmp_path / "done", "sub/a.jpg", digest, digest=check_while_written)
    finally:
        writer.close()
    assert src.read_bytes() == b"rewritten"  # put back under its name, a new input
    assert not (tmp_path / "done").exists()


def test_a_file_held_by_a_crash_is_taken_up_again_or_put_back_beside_a_new_one(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    src, digest = drop(inbox)
    held = src.with_name(HELD_PREFIX + src.name)
    src.rename(held)  # a crash after the input left the user's name
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == done / "sub/a.jpg"
    assert not held.exists() and not src.exists()

    src, digest = drop(inbox, data=b"processed")
    src.rename(held)
    held.write_bytes(b"changed while held")
    src.write_bytes(b"a new file dropped under the name")
    with pytest.raises(Replaced):
        dispose_done(src, "delete", done, "sub/a.jpg", digest)
    assert src.read_bytes() == b"a new file dropped under the name"  # never replaced by the held one
    beside = [path for path in src.parent.iterdir() if path.name.startswith("a-")]
    assert [path.read_bytes() for path in beside] == [b"changed while held"]  # a new input of its own
    assert not held.exists()


def test_a_file_held_by_a_crash_goes_back_under_its_name_when_the_config_now_keeps_inputs(inbox: Path) -> None:
    src, digest = drop(inbox)
    held = src.with_name(HELD_PREFIX + src.name)
    src.rename(held)
    assert dispose_done(src, "keep", None, "sub/a.jpg", digest) is None
    assert src.read_bytes() == b"input bytes" and not held.exists()


def test_companions_follow_the_input_each_step_retried_on_its_own(inbox: Path, tmp_path: Path) -> None:
    """The caller's retry wraps the input's move and then the companions' (a full disk met by the second step
    does not move the input again)."""
    src, digest = drop(inbox)
    (inbox / "sub/a.txt").write_text("a red bicycle")
    steps: list[object] = []

    def retry(step: Callable[[], T]) -> T:
        steps.append(step)
        return step()

    moved = dispose_done(src, "move", tmp_path / "done", "sub/a.jpg", digest, companions=["a.txt"], retry=retry)
    assert moved == tmp_path / "done/sub/a.jpg" and len(steps) == 2
    assert (tmp_path / "done/sub/a.txt").read_text() == "a red bicycle" and not (inbox / "sub/a.txt").exists()
    failed, failed_digest = drop(inbox, "sub/b.jpg")
    (inbox / "sub/b.txt").write_text("a blue car")
    disposed = dispose_failed(
        failed, tmp_path / "failed", "sub/b.jpg", failed_digest, {"error": {}}, companions=["b.txt"], retry=retry
    )
    assert disposed.input == tmp_path / "failed/sub/b.jpg" and len(steps) == 4
    assert (tmp_path / "failed/sub/b.txt").read_text() == "a blue car"


@pytest.mark.parametrize("after", ["move", "delete"])
def test_shared_companions_stay_for_the_stems_last_image_and_each_earlier_one_takes_a_copy(
    inbox: Path, tmp_path: Path, after: After
) -> None:
    done = tmp_path / "done"
    first, first_digest = drop(inbox, "sub/a.jpg")
    second, second_digest = drop(inbox, "sub/a.png", b"other bytes")
    (inbox / "sub/a.txt").write_text("a red bicycle")

    dispose_done(first, after, done, "sub/a.jpg", first_digest, companions=["a.txt"], shared=True)
    assert (inbox / "sub/a.txt").read_text() == "a red bicycle"  # still the companion of a.png
    assert (done / "sub/a.txt").exists() == (after == "move")
    dispose_done(first, after, done, "sub/a.jpg", first_digest, companions=["a.txt"], shared=True)
    dispose_done(second, after, done, "sub/a.png", second_digest, companions=["a.txt"])

    assert not (inbox / "sub/a.txt").exists()  # the last one took it
    kept = sorted(path.name for path in done.rglob("*") if path.is_file())
    assert kept == (["a.jpg", "a.png", "a.txt"] if after == "move" else [])  # one copy: the same bytes, once
    assert temps_under(done) == []
