# literal expectations read best here
from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import remixd
from remixd.errors import ApiRejected, InputError, OutputError
from remixd.files.atomic import NAME_MAX, TEMP_PREFIX, atomic_write, remove_stale_temps, temp_name, write_json
from remixd.files.names import error_file_name, result_paths
from remixd.files.sidecar import ERROR_SCHEMA, RESULT_SCHEMA, ImageInfo, Source, error_document, sidecar, write_result
from tests.helpers import LONG_NAME, ODD_NAMES, SHA

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
    [ours] = result_paths(tmp_path, source(), "poster", "f1", extensions=["webp"], image_sha256s=[sha256(b"ours")])
    assert ours.image == tmp_path / "sub" / "a.poster.1.webp"
    (tmp_path / "sub" / "a.poster.1.poster.1.png").write_bytes(b"another input named a.poster.1.jpg")
    [still] = result_paths(tmp_path, source(), "poster", "f1", extensions=["webp"], image_sha256s=[sha256(b"ours")])
    assert still == ours


def test_an_unreadable_sidecar_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.poster.1.json").write_text("{not json")
    [paths] = result_paths(tmp_path, source(), "poster", "f1", extensions=["png"])
    assert paths.sidecar.name == "a-01234567.poster.1.json"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_get_result_names_that_fit(tmp_path: Path, name: str) -> None:
    write_results(tmp_path, source(f"sub/{name}"))
    paths = result_paths(tmp_path, source(f"sub/{name}", OTHER_SHA), "poster", "f1", extensions=["jpeg", None])
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
    "sandbox": None,  # added to the contract's keys: made by the built-in sandbox, never billed
    "remixd_version": None,
    "cost_usd": None,
    "cost_source": None,
    "source": {"inbox", "relpath", "sha256", "bytes"},
    "rule": {"name", "fingerprint"},
    "api": {"endpoint", "request", "created", "route", "generation_id"},
    "result": {"index", "count", "prompt", "resolution", "seed", "is_image_safe", "style_type"},
    "image": {"file", "sha256", "bytes", "width", "height"},
    "timings": {"detected_at", "submitted_at", "completed_at"},
}
# Fields remixd adds to the contract's (README, "What lands on disk"): only ever added, never renamed.
ADDED_SIDECAR_KEYS = {"possible_payments"}


def make_sidecar(image: ImageInfo | None, conversion: str | None = None) -> dict[str, object]:
    return sidecar(
        source=Source("/srv/inbox", "sub/a.jpg", SHA, 123456, conversion),
        rule="poster",
        fingerprint="f1",
        endpoint="https://api.ideogram.ai/remix",
        request={"prompt": "a beach", "model": "V_2"},
        created="2024-08-27T15:40:31.101790+00:00",
        route="V_2",
        generation_id=None,
        cost_source="table",
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
        possible_payments=0,
        detected_at=WHEN,
        submitted_at=WHEN + timedelta(seconds=1),
        completed_at=WHEN + timedelta(seconds=9),
    )


def test_the_sidecar_has_exactly_the_contract_fields(tmp_path: Path) -> None:
    document = make_sidecar(ImageInfo("a.poster.1.png", SHA, 5337, 800, 1280))
    assert set(document) == set(CONTRACT_SIDECAR_KEYS) | ADDED_SIDECAR_KEYS
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
    api_error = ApiRejected("422", "change the image", http_status=422, response={"error": "unsafe"}).record()
    document = error_document(
        source=source(), rule="poster", fingerprint="f1", error=api_error, attempts=2, failed_at=WHEN
    )
    assert document == {
        "schema": ERROR_SCHEMA,
        "sandbox": False,
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
        "payments": [],  # README "The sidecars are a second journal": what was sent that wrote nothing
    }
    unreadable = error_document(
        source=Source("/in", "a.jpg", None, None),
        rule=None,
        fingerprint=None,
        error=InputError("not an image").record(),
        attempts=0,
        failed_at=WHEN,
    )
    assert unreadable["rule"] is None
    assert set(unreadable["error"]) == {"kind", "message", "hint"}


def test_error_file_names_fit() -> None:
    assert error_file_name("a.jpg") == "a.jpg.error.json"
    assert len(os.fsencode(error_file_name(LONG_NAME))) <= NAME_MAX


def test_json_with_a_name_that_is_not_utf8_stays_valid_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes from an old file system
    write_json(tmp_path / "doc.json", {"relpath": name})
    data = (tmp_path / "doc.json").read_bytes()
    data.decode("utf-8")
    assert json.loads(data) == {"relpath": name}
