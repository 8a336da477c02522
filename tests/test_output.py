# ruff: noqa: PLR2004, S108  # literal expectations read best here; /dev/shm is probed as a second file system
from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import remixd
from remixd.errors import OutputError
from remixd.output import (
    ERROR_SCHEMA,
    NAME_MAX,
    RESULT_SCHEMA,
    TEMP_PREFIX,
    ImageInfo,
    Source,
    atomic_write,
    dispose_done,
    dispose_failed,
    error_document,
    error_file_name,
    remove_stale_temps,
    result_paths,
    sidecar,
    temp_name,
    write_json,
    write_result,
)

LONG_NAME = "é" * 125 + "x.jpg"  # 255 bytes in UTF-8
ODD_NAMES = [
    "plain.jpg",
    "with space.jpg",
    "ünïcødé 画像.png",
    "new\nline.jpg",
    "-leading-dash.jpg",
    LONG_NAME,
]
SHA = "0123456789abcdef" * 4
OTHER_SHA = "fedcba9876543210" * 4
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def temps_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.startswith(TEMP_PREFIX)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source(relpath: str = "sub/a.jpg", digest: str = SHA, inbox: str = "/srv/inbox") -> Source:
    return Source(inbox=inbox, relpath=relpath, sha256=digest, bytes=123)


# -- atomic writes -------------------------------------------------------------------------------------------


def test_atomic_write_creates_folders_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "result.png"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert temps_under(tmp_path) == []


def test_a_failed_write_leaves_no_temp_and_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputError) as caught:
        atomic_write(blocker / "sub" / "result.png", b"data")
    assert str(blocker / "sub" / "result.png") in caught.value.message
    assert "move it aside" in caught.value.hint
    assert temps_under(tmp_path) == []


def test_a_write_failing_after_the_temp_exists_removes_the_temp(tmp_path: Path) -> None:
    in_the_way = tmp_path / "result.png"
    (in_the_way / "child").mkdir(parents=True)  # rename onto a non-empty folder fails
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write(in_the_way, b"data")
    assert temps_under(tmp_path) == []


def test_temp_names_fit_even_for_255_byte_names() -> None:
    name = temp_name(LONG_NAME)
    assert name.startswith(TEMP_PREFIX)
    assert len(os.fsencode(name)) <= NAME_MAX
    name.encode("utf-8")  # cut at a character boundary: still valid UTF-8
    assert temp_name("a.png") != temp_name("a.png")


def test_write_json_is_sorted_indented_utf8_with_a_newline(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    write_json(target, {"b": 1, "a": "ünï"})
    assert target.read_bytes() == '{\n  "a": "ünï",\n  "b": 1\n}\n'.encode()


def test_stale_temps_are_removed_recursively_and_only_they(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "deep" / "er").mkdir(parents=True)
    stale = [root / f"{TEMP_PREFIX}1-a.png", root / "deep" / "er" / f"{TEMP_PREFIX}2-b.json"]
    keep = [root / "a.png", root / ".hidden", root / "deep" / "remixd-tmp-not-ours"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / f"{TEMP_PREFIX}3-c.png").write_bytes(b"")
    (root / "link").symlink_to(outside, target_is_directory=True)
    for path in stale + keep:
        path.write_bytes(b"x")
    assert sorted(remove_stale_temps(root)) == sorted(stale)
    assert all(path.exists() for path in keep)
    assert not any(path.exists() for path in stale)
    assert (outside / f"{TEMP_PREFIX}3-c.png").exists()  # not reached through the link
    assert remove_stale_temps(tmp_path / "missing") == []


# -- result names --------------------------------------------------------------------------------------------


def test_result_names_follow_the_contract(tmp_path: Path) -> None:
    paths = result_paths(tmp_path, source("sub/a.b.jpg"), "poster", "f1", extensions=["png", None, "jpg"])
    folder = tmp_path / "sub"
    assert [(p.index, p.image, p.sidecar) for p in paths] == [
        (1, folder / "a.b.poster.1.png", folder / "a.b.poster.1.json"),
        (2, None, folder / "a.b.poster.2.json"),
        (3, folder / "a.b.poster.3.jpg", folder / "a.b.poster.3.json"),
    ]


def write_results(output: Path, src: Source, fingerprint: str = "f1") -> list[Path]:
    [paths] = result_paths(output, src, "poster", fingerprint, extensions=["png"])
    assert paths.image is not None
    document = {"source": src.to_dict(), "rule": {"name": "poster", "fingerprint": fingerprint}}
    write_result(paths, b"image", document)
    return [paths.image, paths.sidecar]


def test_another_source_gets_the_hashed_stem_and_the_same_source_its_names_back(tmp_path: Path) -> None:
    first = write_results(tmp_path, source())
    assert first[0].name == "a.poster.1.png"
    [other] = result_paths(tmp_path, source(digest=OTHER_SHA), "poster", "f1", extensions=["png"])
    assert other.image == tmp_path / "sub" / "a-fedcba98.poster.1.png"
    assert other.sidecar == tmp_path / "sub" / "a-fedcba98.poster.1.json"
    [again] = result_paths(tmp_path, source(), "poster", "f1", extensions=["png"])
    assert [again.image, again.sidecar] == first
    [changed_request] = result_paths(tmp_path, source(), "poster", "f2", extensions=["png"])
    assert changed_request.sidecar.name == "a-01234567.poster.1.json"
    [other_inbox] = result_paths(tmp_path, source(inbox="/srv/b"), "poster", "f1", extensions=["png"])
    assert other_inbox.sidecar.name == "a-01234567.poster.1.json"


def test_when_the_hashed_stem_is_taken_too_a_counter_follows(tmp_path: Path) -> None:
    write_results(tmp_path, source())
    write_results(tmp_path, source(digest=OTHER_SHA))
    [third] = result_paths(tmp_path, source(digest=OTHER_SHA), "poster", "f9", extensions=["png"])
    assert third.sidecar.name == "a-fedcba98-2.poster.1.json"


def test_an_image_without_a_sidecar_is_taken_unless_it_is_ours(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.poster.1.webp").write_bytes(b"ours")
    [unknown] = result_paths(tmp_path, source(), "poster", "f1", extensions=["png"])
    assert unknown.sidecar.name == "a-01234567.poster.1.json"
    [ours] = result_paths(
        tmp_path, source(), "poster", "f1", extensions=["webp"], image_sha256s=[sha256(b"ours")]
    )
    assert ours.image == tmp_path / "sub" / "a.poster.1.webp"
    (tmp_path / "sub" / "a.poster.1.poster.1.png").write_bytes(b"another input named a.poster.1.jpg")
    [still] = result_paths(
        tmp_path, source(), "poster", "f1", extensions=["webp"], image_sha256s=[sha256(b"ours")]
    )
    assert still == ours


def test_an_unreadable_sidecar_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.poster.1.json").write_text("{not json")
    [paths] = result_paths(tmp_path, source(), "poster", "f1", extensions=["png"])
    assert paths.sidecar.name == "a-01234567.poster.1.json"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_get_result_names_that_fit(tmp_path: Path, name: str) -> None:
    write_results(tmp_path, source(f"sub/{name}"))
    paths = result_paths(
        tmp_path, source(f"sub/{name}", OTHER_SHA), "poster", "f1", extensions=["jpeg", None]
    )
    for result in paths:
        for path in (result.image, result.sidecar):
            if path is not None:
                assert len(os.fsencode(path.name)) <= NAME_MAX
                assert path.parent == tmp_path / "sub"
    assert paths[0].image is not None
    assert paths[0].image.name.removesuffix(".jpeg") == paths[0].sidecar.name.removesuffix(".json")
    assert "-fedcba98.poster.1." in paths[0].sidecar.name
    write_result(paths[0], b"img", {"ok": True})
    assert paths[0].sidecar.exists()


def test_a_symbolic_link_out_of_the_output_folder_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "sub").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(OutputError, match="symbolic link"):
        result_paths(output, source("sub/a.jpg"), "poster", "f1", extensions=["png"])


@pytest.mark.parametrize("relpath", ["../a.jpg", "/etc/a.jpg", "sub/../../a.jpg", ""])
def test_a_relpath_that_climbs_out_is_refused(tmp_path: Path, relpath: str) -> None:
    with pytest.raises(ValueError, match="not a relative file path"):
        result_paths(tmp_path, source(relpath), "poster", "f1", extensions=["png"])


# -- documents -----------------------------------------------------------------------------------------------

CONTRACT_SIDECAR_KEYS = {
    "schema": None,
    "remixd_version": None,
    "cost_usd": None,
    "source": {"inbox", "relpath", "sha256", "bytes"},
    "rule": {"name", "fingerprint"},
    "api": {"endpoint", "request", "created"},
    "result": {"index", "count", "prompt", "resolution", "seed", "is_image_safe", "style_type"},
    "image": {"file", "sha256", "bytes", "width", "height"},
    "timings": {"detected_at", "submitted_at", "completed_at"},
}


def make_sidecar(image: ImageInfo | None, conversion: str | None = None) -> dict[str, object]:
    return sidecar(
        source=Source("/srv/inbox", "sub/a.jpg", SHA, 123456, conversion),
        rule="poster",
        fingerprint="f1",
        endpoint="https://api.ideogram.ai/remix",
        request={"prompt": "a beach", "model": "V_2"},
        created="2024-08-27T15:40:31.101790+00:00",
        index=1,
        count=1,
        item={
            "url": "https://signed/secret",
            "prompt": "as returned",
            "resolution": "800x1280",
            "seed": 12345,
            "is_image_safe": image is not None,
            "style_type": None,
        },
        image=image,
        cost_usd=0.08,
        detected_at=WHEN,
        submitted_at=WHEN + timedelta(seconds=1),
        completed_at=WHEN + timedelta(seconds=9),
    )


def test_the_sidecar_has_exactly_the_contract_fields(tmp_path: Path) -> None:
    document = make_sidecar(ImageInfo("a.poster.1.png", SHA, 5337, 800, 1280))
    assert set(document) == set(CONTRACT_SIDECAR_KEYS)
    for key, fields in CONTRACT_SIDECAR_KEYS.items():
        if fields is not None:
            assert set(document[key]) == fields, key  # type: ignore[call-overload]
    assert document["schema"] == RESULT_SCHEMA
    assert document["remixd_version"] == remixd.__version__
    assert document["result"]["is_image_safe"] is True  # type: ignore[index]
    assert document["timings"]["submitted_at"] == "2025-03-01T12:00:01+00:00"  # type: ignore[index]
    assert "secret" not in json.dumps(document)  # the signed URL expires; it is not kept
    write_json(tmp_path / "a.poster.1.json", document)
    assert json.loads((tmp_path / "a.poster.1.json").read_text()) == document


def test_a_withheld_image_has_a_null_image_and_conversion_is_an_extension() -> None:
    document = make_sidecar(None, conversion="exif-rotated")
    assert document["image"] is None
    assert document["result"]["is_image_safe"] is False  # type: ignore[index]
    assert document["source"]["conversion"] == "exif-rotated"  # type: ignore[index]


def test_the_error_document_follows_the_contract() -> None:
    api_error = {
        "kind": "api_rejected",
        "message": "422",
        "hint": "change the image",
        "http_status": 422,
        "response": {"error": "unsafe"},
        "retry_after": 3,
    }
    document = error_document(
        source=source(), rule="poster", fingerprint="f1", error=api_error, attempts=2, failed_at=WHEN
    )
    assert document == {
        "schema": ERROR_SCHEMA,
        "source": {"inbox": "/srv/inbox", "relpath": "sub/a.jpg", "sha256": SHA, "bytes": 123},
        "rule": {"name": "poster", "fingerprint": "f1"},
        "error": {
            "kind": "api_rejected",
            "message": "422",
            "hint": "change the image",
            "http_status": 422,
            "response": {"error": "unsafe"},
        },
        "attempts": 2,
        "failed_at": "2025-03-01T12:00:00+00:00",
    }
    unreadable = error_document(
        source=Source("/in", "a.jpg", None, None),
        rule=None,
        fingerprint=None,
        error={"kind": "input", "message": "not an image", "hint": ""},
        attempts=0,
        failed_at=WHEN,
    )
    assert unreadable["rule"] is None
    assert set(unreadable["error"]) == {"kind", "message", "hint"}


def test_error_file_names_fit() -> None:
    assert error_file_name("a.jpg") == "a.jpg.error.json"
    assert len(os.fsencode(error_file_name(LONG_NAME))) <= NAME_MAX


# -- disposal ------------------------------------------------------------------------------------------------


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
def other_device(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
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


def test_json_with_a_name_that_is_not_utf8_stays_valid_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes from an old file system
    write_json(tmp_path / "doc.json", {"relpath": name})
    data = (tmp_path / "doc.json").read_bytes()
    data.decode("utf-8")
    assert json.loads(data) == {"relpath": name}


def test_a_folder_in_the_way_is_skipped_for_the_hashed_name(inbox: Path, tmp_path: Path) -> None:
    done = tmp_path / "done"
    (done / "sub" / "a.jpg").mkdir(parents=True)
    src, digest = drop(inbox)
    assert dispose_done(src, "move", done, "sub/a.jpg", digest) == done / "sub" / f"a-{digest[:8]}.jpg"
    assert not src.exists()
