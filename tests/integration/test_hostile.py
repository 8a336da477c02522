"""Hostile and odd inputs (README, "Odd and hostile inputs"): every bad file gets a clear answer on disk, nothing
escapes the folders remixd was given, no secret leaks, and the daemon keeps serving the other inputs meanwhile.

Each test drops the hostile entries together with ordinary images and runs the whole pipeline in process
(`Service`, against the sandbox on loopback, sometimes through a hostile gateway in front of it), then checks
both the hostile entry's outcome and that the ordinary images were done.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import stat
import struct
import tempfile
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog
from PIL import Image, features
from structlog.testing import capture_logs

from remixd import logs
from remixd.daemon.service import Service
from remixd.errors import InputError
from remixd.sandbox.server import SandboxServer
from remixd.work.prepare import DEFAULT_MAX_UPLOAD_BYTES, prepare
from tests.helpers import POSTER, TEST_KEY, make_image, make_service, run_cli, sidecars, wait_for, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
ANY = {
    "name": "any",
    "match": ["*"],
    "request": {"prompt": "A serene tropical beach, {stem}", "model": "V_2", "aspect_ratio": "ASPECT_1_1", "seed": 7},
}
HOSTILE = {"name": "hostile", "match": ["hostile-*"], "request": {"prompt": "HOSTILE {stem}", "model": "V_2"}}


# -- helpers ----------------------------------------------------------------------------------------------------


def run_once(config: Path, environ: dict[str, str] | None = None) -> Service:
    service = make_service(config, "once", environ or ENV)
    service.run()
    return service


def drop_normal(root: Path, name: str = "normal.jpg") -> Path:
    return make_image(root / "inbox" / name, size=(96, 64), color=(30, 140, 90))


def assert_normal_done(root: Path, stem: str = "normal", rule: str = "poster") -> None:
    """The ordinary input dropped beside the hostile ones went through: result, sidecar, moved to done."""
    assert (root / f"outbox/{stem}.{rule}.1.png").is_file(), f"{stem} was not served"
    assert json.loads((root / f"outbox/{stem}.{rule}.1.json").read_text())["image"] is not None
    assert (root / f"done/{stem}.jpg").is_file()


def error_of(root: Path, name: str) -> dict[str, Any]:
    document = json.loads((root / "failed" / f"{name}.error.json").read_text(encoding="utf-8"))
    assert document["schema"] == "remixd.error/1"
    error: dict[str, Any] = document["error"]
    assert error["hint"], f"{name}: an error without a hint"
    return error


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height`, with a few bytes of pixel data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def settled(path: Path, data: bytes) -> None:
    """A file dropped a while ago. An empty file is held back while it is fresh (a copier may not have written
    its first byte yet); one that stayed empty is an input like any other."""
    path.write_bytes(data)
    os.utime(path, (path.stat().st_mtime - 60, path.stat().st_mtime - 60))


def received_for(sandbox: SandboxServer, stem: str) -> Any:
    """The remix request the sandbox received for the input named `stem` (its prompt ends with the stem)."""
    matches = [
        r for r in sandbox.received if isinstance(r.fields, dict) and str(r.fields.get("prompt", "")).endswith(stem)
    ]
    assert len(matches) == 1, f"{stem}: {len(matches)} requests"
    return matches[0]


def files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


# -- 1. images --------------------------------------------------------------------------------------------------


def test_images_that_cannot_be_handled_fail_alone_with_a_reason(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, rules=[ANY])
    whole_jpeg = encoded(Image.new("RGB", (400, 300), (200, 40, 40)), "JPEG")
    hostile = {
        "empty.jpg": (b"", "empty.jpg is empty (0 bytes)"),
        "truncated.jpg": (whole_jpeg[: len(whole_jpeg) // 2], "truncated.jpg is damaged or incomplete"),
        "notes.png": (b"shopping list: eggs, milk\n", "notes.png is not an image remixd can read (it is text)"),
        "report.jpg": (b"%PDF-1.7\n" + b"0" * 100, "(it is a PDF document)"),
        "bomb.png": (png_header(50_000, 50_000), "bomb.png is 50000x50000 (2500 MP); the most remixd accepts"),
    }
    for name, (data, _message) in hostile.items():
        settled((tmp_path / "inbox" / name), data)
    drop_normal(tmp_path)

    service = run_once(config)

    assert (service.outcomes["failed"], service.outcomes["done"]) == (len(hostile), 1)
    for name, (data, message) in hostile.items():
        assert (tmp_path / "failed" / name).read_bytes() == data, name  # moved whole, never altered
        error = error_of(tmp_path, name)
        assert error["kind"] == "input"
        assert message in error["message"], (name, error["message"])
    assert_normal_done(tmp_path, rule="any")
    assert [received_for(sandbox, "normal")] == sandbox.received  # no failed input cost a request


def test_odd_images_are_converted_and_the_sidecar_says_how(tmp_path: Path, sandbox: SandboxServer) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    config = write_config(tmp_path, sandbox.base_url, rules=[ANY])
    picture = Image.new("RGB", (320, 200), (20, 90, 200))
    frames = [Image.new("RGB", (320, 200), (index * 80, 30, 30)) for index in range(3)]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": stored 320x200, shown 200x320
    noisy = Image.frombytes("RGB", (2000, 1800), os.urandom(2000 * 1800 * 3))  # noise does not compress
    inputs: dict[str, tuple[bytes, str]] = {
        "animated.gif": (
            encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80),
            "gif with 3 frames: first frame only",
        ),
        "cmyk.jpg": (encoded(picture.convert("CMYK"), "JPEG"), "cmyk->rgb"),
        "deep.png": (encoded(Image.new("I;16", (320, 200), 40_000), "PNG"), "16-bit->8-bit"),
        "rotated.jpg": (encoded(picture, "JPEG", exif=exif), "exif-rotated (orientation 6)"),
        "phone.heic": (encoded(picture, "HEIF"), "heif->png"),
        "scan.tif": (encoded(picture, "TIFF"), "tiff->png"),
        "paint.bmp": (encoded(picture, "BMP"), "bmp->png"),
        "still.gif": (encoded(picture, "GIF"), "gif->png"),
        "huge.png": (encoded(noisy, "PNG", compress_level=1), "over 10.0 MiB: jpeg q="),
    }
    if features.check("avif"):
        inputs["modern.avif"] = (encoded(picture, "AVIF"), "avif->png")
    assert len(inputs["huge.png"][0]) > DEFAULT_MAX_UPLOAD_BYTES
    for name, (data, _conversion) in inputs.items():
        (tmp_path / "inbox" / name).write_bytes(data)
    drop_normal(tmp_path)

    service = run_once(config)

    assert (service.outcomes["done"], service.outcomes["failed"]) == (len(inputs) + 1, 0)
    for name, (data, conversion) in inputs.items():
        stem = Path(name).stem
        assert (tmp_path / "done" / name).read_bytes() == data, name  # the original is kept as it came
        source = json.loads((tmp_path / f"outbox/{stem}.any.1.json").read_text())["source"]
        assert conversion in source["conversion"], (name, source)
        assert source["sha256"] == hashlib.sha256(data).hexdigest()  # the source is the file, not the upload
        # What was uploaded is exactly what prepare makes of the file: a format the API takes, under 10 MB.
        sent = received_for(sandbox, stem)
        prepared = prepare(tmp_path / "done" / name)
        assert sent.sha256 == hashlib.sha256(prepared.data).hexdigest(), name
        assert sent.content_type in ("image/png", "image/jpeg") and sent.bytes <= DEFAULT_MAX_UPLOAD_BYTES
    with Image.open(io.BytesIO(prepare(tmp_path / "done/rotated.jpg").data)) as upright:
        assert upright.size == (200, 320)  # the orientation was applied before the upload, not left to EXIF
        assert upright.getexif().get(0x0112, 1) == 1
    assert "conversion" not in json.loads((tmp_path / "outbox/normal.any.1.json").read_text())["source"]
    assert_normal_done(tmp_path, rule="any")


def test_a_special_file_or_a_link_never_holds_prepare(tmp_path: Path) -> None:
    """prepare() opens without following links and without waiting for a fifo's writer."""
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "link.jpg"
    link.symlink_to(make_image(tmp_path / "target.jpg"))
    errors: list[InputError] = []

    def attempt() -> None:
        for path in (fifo, link):
            try:
                prepare(path)
            except InputError as error:
                errors.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():
        with fifo.open("wb"):  # release it, then fail
            pass
        pytest.fail("prepare() blocked on a fifo")
    assert [error.message for error in errors] == [
        "pipe.jpg is not a regular file (it is a named pipe)",
        "link.jpg is a symbolic link",
    ]


# -- 2. names and folder entries --------------------------------------------------------------------------------


def test_odd_names_are_served_and_colliding_outputs_never_overwrite(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    # 255 bytes each, the most a name can have; the long pairs collide once cut to fit the output's suffix
    long_a, long_b, long_e = "x" * 250 + "a.jpg", "x" * 250 + "b.jpg", "é" * 125 + "x.jpg"
    names = [
        "ünïcødé 名前.jpg",
        "with spaces .jpg",
        "new\nline.jpg",
        "-rf --no-preserve-root.jpg",
        long_e,
        long_a,
        long_b,
        "same.jpg",
        "same.png",
    ]
    for index, name in enumerate(names):
        make_image(tmp_path / "inbox" / name, color=(index * 20, 10, 200))
    assert {len(name.encode()) for name in (long_a, long_b, long_e)} == {255}
    latin1 = tmp_path / "inbox" / os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: cannot be recorded in the journal
    make_image(latin1)
    drop_normal(tmp_path)

    with capture_logs() as events:
        service = run_once(config)

    assert (service.outcomes["done"], service.outcomes["failed"]) == (len(names) + 1, 0)
    for name in names:
        assert (tmp_path / "done" / name).is_file(), name
    sidecars = [json.loads(path.read_text()) for path in (tmp_path / "outbox").glob("*.json")]
    images = {document["image"]["file"] for document in sidecars}
    assert len(sidecars) == len(images) == len(names) + 1  # one result per input, none overwritten
    assert {document["source"]["relpath"] for document in sidecars} == {*names, "normal.jpg"}
    for document in sidecars:
        image = tmp_path / "outbox" / document["image"]["file"]
        assert hashlib.sha256(image.read_bytes()).hexdigest() == document["image"]["sha256"]
        assert len(image.name.encode()) <= 255
    for received in sandbox.received:  # the multipart file name is plain ASCII whatever the input's name
        assert received.filename is not None and re.fullmatch(r"[A-Za-z0-9._-]+", received.filename)
    # The name remixd cannot record is left alone and named in the log, once, with how to fix it.
    assert latin1.is_file()
    warnings = [e for e in events if e["event"] == "remixd.watch.unrecordable_name"]
    assert len(warnings) == 1 and "caf\\xe9.jpg" in warnings[0]["path"] and "rename" in warnings[0]["hint"]
    assert_normal_done(tmp_path)


def test_links_are_refused_and_special_files_ignored_without_blocking(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"recursive": True})
    inbox, outside = tmp_path / "inbox", tmp_path / "private"
    secret = make_image(outside / "secret.jpg", color=(1, 2, 3))
    secret_bytes = secret.read_bytes()
    (inbox / "link.jpg").symlink_to(secret)
    (inbox / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (inbox / "album.jpg").symlink_to(outside, target_is_directory=True)  # a link to a folder, named like an image
    hard = inbox / "hard.jpg"
    os.link(make_image(outside / "shared.jpg", color=(5, 6, 7)), hard)  # a second name for a file elsewhere
    os.mkfifo(inbox / "pipe.jpg")
    listener = socket.socket(socket.AF_UNIX)
    short = Path(tempfile.mkdtemp(prefix="rx", dir="/tmp"))  # AF_UNIX paths are limited to 107 bytes
    listener.bind(os.fspath(short / "s"))
    (short / "s").rename(inbox / "socket.jpg")
    short.rmdir()
    make_image(inbox / "folder.jpg" / "inside.jpg", color=(9, 9, 90))  # a folder named like an image
    drop_normal(tmp_path)

    finished = threading.Event()
    outcome: list[Service] = []

    def once() -> None:
        outcome.append(run_once(config))
        finished.set()

    runner = threading.Thread(target=once, name="test-once", daemon=True)
    runner.start()
    try:
        if not finished.wait(60):
            with (inbox / "pipe.jpg").open("wb"):
                pass
            pytest.fail("a fifo or a socket in the inbox blocked `once`")
    finally:
        listener.close()
    runner.join(10)
    service = outcome[0]

    assert (service.outcomes["done"], service.outcomes["failed"]) == (3, 3)
    for name in ("link.jpg", "dangling.jpg", "album.jpg"):
        assert (tmp_path / "failed" / name).is_symlink(), name  # the link itself moved, never its target
        error = error_of(tmp_path, name)
        assert error["message"] == f"{name} is a symbolic link"
        assert "never follows links" in error["hint"]
    assert secret.read_bytes() == secret_bytes  # the target is untouched and was never sent
    sent = {received.sha256 for received in sandbox.received}
    assert hashlib.sha256(secret_bytes).hexdigest() not in sent
    assert not (tmp_path / "outbox/album.jpg").exists()  # never descended into the linked folder
    assert (tmp_path / "done/hard.jpg").is_file() and (outside / "shared.jpg").is_file()  # other name kept
    assert (tmp_path / "outbox/folder.jpg/inside.poster.1.png").is_file()  # a folder is a folder
    assert stat.S_ISFIFO((inbox / "pipe.jpg").lstat().st_mode)  # ignored: still there, never opened
    assert stat.S_ISSOCK((inbox / "socket.jpg").lstat().st_mode)
    assert_normal_done(tmp_path)


def test_a_link_dropped_while_running_is_refused_and_the_daemon_goes_on(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The watcher's path (an event, then readiness) refuses a link the same way the backlog scan does."""
    config = write_config(tmp_path, sandbox.base_url, inbox={"settle_s": 0.1})
    target = make_image(tmp_path / "private/photo.jpg")
    with running(config):
        (tmp_path / "inbox/late-link.jpg").symlink_to(target)
        drop_normal(tmp_path)
        wait_for(lambda: (tmp_path / "failed/late-link.jpg.error.json").is_file(), message="the link refused")
        wait_for(lambda: (tmp_path / "done/normal.jpg").is_file(), message="the normal input")
    assert error_of(tmp_path, "late-link.jpg")["message"] == "late-link.jpg is a symbolic link"
    assert (tmp_path / "failed/late-link.jpg").is_symlink() and target.is_file()
    assert_normal_done(tmp_path)


# -- 3. the remote side -----------------------------------------------------------------------------------------


@contextmanager
def running(config: Path) -> Iterator[Service]:
    service = make_service(config, "run", ENV)
    thread = threading.Thread(target=service.run, name="test-service")
    thread.start()
    try:
        wait_for(service.ready.is_set, message="the service to start")
        yield service
    finally:
        service.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_result_urls_off_the_apis_host_or_scheme_are_refused(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, inbox={"settle_s": 0.1})
    other_host = sandbox.base_url.replace("127.0.0.1", "localhost")
    with running(config):
        sandbox.set_faults(url_base=other_host)
        make_image(tmp_path / "inbox/elsewhere.jpg")
        wait_for(lambda: (tmp_path / "failed/elsewhere.jpg.error.json").is_file(), message="elsewhere failed")
        sandbox.set_faults(url_base="file:///etc")
        make_image(tmp_path / "inbox/scheme.jpg", color=(1, 1, 1))
        wait_for(lambda: (tmp_path / "failed/scheme.jpg.error.json").is_file(), message="scheme failed")
        sandbox.set_faults(url_base=None)
        drop_normal(tmp_path)  # the daemon goes on serving
        wait_for(lambda: (tmp_path / "done/normal.jpg").is_file(), message="the normal input")

    error = error_of(tmp_path, "elsewhere.jpg")
    assert error["kind"] == "api_rejected"
    assert error["message"] == "the result URL's host localhost is not the API's (127.0.0.1)"
    assert "api.allowed_result_hosts" in error["hint"]
    assert "remixd will not fetch: file:///etc/api/images/ephemeral/" in error_of(tmp_path, "scheme.jpg")["message"]
    assert len(sandbox.downloads) == 1  # only the normal input's result was fetched
    assert_normal_done(tmp_path)


def test_allowed_result_hosts_lets_a_proxying_gateway_serve_results(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"allowed_result_hosts": ["localhost"]})
    sandbox.set_faults(url_base=sandbox.base_url.replace("127.0.0.1", "localhost"))
    make_image(tmp_path / "inbox/proxied.jpg")
    drop_normal(tmp_path)

    service = run_once(config)

    assert service.outcomes["done"] == 2
    assert (tmp_path / "outbox/proxied.poster.1.png").is_file()
    assert [record.status for record in sandbox.downloads] == [200, 200]
    assert_normal_done(tmp_path)


@dataclass
class HostileGateway:
    """A gateway in front of the sandbox. Requests for inputs named `hostile-MODE…` get MODE's misbehaviour;
    everything else is passed through. It records each raw answer it gave, to prove an echo really happened."""

    upstream: str
    base_url: str = ""
    answers: list[bytes] = field(default_factory=list)
    served_html: set[str] = field(default_factory=set)

    def answer(
        self, mode: str, request_headers: dict[str, str], forward: Callable[[], requests.Response]
    ) -> tuple[int, dict[str, str], bytes]:
        echo = json.dumps({"error": "Bad request from the gateway", "request_headers": request_headers}).encode()
        fixed: dict[str, tuple[int, str, bytes]] = {
            "shape-list": (200, "application/json", b"[]"),
            "shape-text": (200, "text/plain", b"OK, done"),
            "shape-data": (200, "application/json", b'{"created": "now", "data": "nope"}'),
            "shape-deep": (200, "application/json", b"[" * 60_000),
            "toobig": (200, "application/json", b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'),
            "huge-error": (400, "text/html", b"<html>" + b"Internal details. " * 60_000 + b"</html>"),
            "echo": (400, "application/json", echo),
            "echo-html": (422, "text/html", b"<pre>" + echo + b"</pre>" + b" " * 100_000),
            "echo-auth": (401, "application/json", echo),
        }
        if mode in fixed:
            status, content_type, body = fixed[mode]
            return status, {"Content-Type": content_type}, body
        upstream = forward()
        document = upstream.json()
        if mode == "shape-many":
            document["data"] = document["data"] * 40
        for item in document["data"]:
            quoted = urllib.parse.quote(item["url"], safe="")
            item["url"] = {
                "bigdl": f"{self.base_url}/big?size=3000000",
                "bigdl-chunked": f"{self.base_url}/big?size=3000000&chunked=1",
                "htmlonce": f"{self.base_url}/html-once?url={quoted}",
            }.get(mode, item["url"])
        return upstream.status_code, {"Content-Type": "application/json"}, json.dumps(document).encode()


def results_from(gateway: HostileGateway) -> dict[str, object]:
    """The gateway passes the sandbox's result URLs through: another port of its host, allowed by name."""
    return {"allowed_result_hosts": [gateway.upstream]}


@pytest.fixture
def gateway(sandbox: SandboxServer) -> Iterator[HostileGateway]:
    state = HostileGateway(sandbox.base_url)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
            found = re.search(rb"hostile-([a-z]+(?:-[a-z]+)*)", self.path.encode() + b" " + body)

            def forward() -> requests.Response:
                return requests.post(state.upstream + self.path, data=body, headers=headers, timeout=30)

            if found is None:
                upstream = forward()
                self._send(upstream.status_code, {"Content-Type": upstream.headers["Content-Type"]}, upstream.content)
                return
            status, answer_headers, answer = state.answer(found.group(1).decode(), headers, forward)
            state.answers.append(answer)
            self._send(status, answer_headers, answer)

        def do_GET(self) -> None:  # the stdlib's name
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path == "/big":
                size = int(query["size"])
                body = png_header(64, 64) + b"\0" * size
                if query.get("chunked"):  # no Content-Length: the size shows only while reading
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self._send(200, {"Content-Type": "image/png"}, body)
            elif parts.path == "/html-once" and query["url"] not in state.served_html:
                state.served_html.add(query["url"])  # a CDN's error page, once; the image after that
                self._send(200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><h1>502 upstream error</h1>")
            else:
                upstream = requests.get(query.get("url") or state.upstream + self.path, timeout=30)
                self._send(upstream.status_code, {"Content-Type": upstream.headers["Content-Type"]}, upstream.content)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_answers_of_the_wrong_shape_fail_with_a_clear_api_error(tmp_path: Path, gateway: HostileGateway) -> None:
    config = write_config(tmp_path, gateway.base_url, rules=[HOSTILE, POSTER], api=results_from(gateway))
    expected = {
        "hostile-shape-list": "the API answered 200 with an unexpected body: []",
        "hostile-shape-text": "the API answered 200 with an unexpected body: OK, done",
        "hostile-shape-data": "the API answered 200 with an unexpected body",
        "hostile-shape-deep": "the API answered 200 with an unexpected body: [[[[",
        "hostile-shape-many": "the API answered 200 with 40 images for a request of 1",
        "hostile-toobig": "the API answered 200 with more than 4194304 bytes",
    }
    for index, stem in enumerate(expected):
        make_image(tmp_path / f"inbox/{stem}.jpg", color=(index * 30, 0, 0))
    drop_normal(tmp_path)

    service = run_once(config)

    assert (service.outcomes["failed"], service.outcomes["done"]) == (len(expected), 1)
    for stem, message in expected.items():
        error = error_of(tmp_path, f"{stem}.jpg")
        assert error["kind"] == "api_rejected" and error["http_status"] == 200
        assert error["message"].startswith(message), (stem, error["message"])
        assert len(error["message"]) < 400
        response = error.get("response")  # the answer is kept, cut to 4000 characters when long
        assert len(response if isinstance(response, str) else json.dumps(response)) < 4100
    assert not list((tmp_path / "outbox").glob("hostile-*"))
    assert_normal_done(tmp_path)


def test_downloads_are_capped_and_must_decode(tmp_path: Path, gateway: HostileGateway) -> None:
    config = write_config(
        tmp_path,
        gateway.base_url,
        rules=[HOSTILE, POSTER],
        api={"max_download_bytes": 2_000_000, **results_from(gateway)},
    )
    for stem in ("hostile-bigdl", "hostile-bigdl-chunked", "hostile-htmlonce"):
        make_image(tmp_path / f"inbox/{stem}.jpg")
    drop_normal(tmp_path)

    service = run_once(config)

    assert (service.outcomes["failed"], service.outcomes["done"]) == (2, 2)
    for stem in ("hostile-bigdl", "hostile-bigdl-chunked"):
        error = error_of(tmp_path, f"{stem}.jpg")
        assert error["kind"] == "api_rejected"
        assert "is over api.max_download_bytes (2000000 bytes)" in error["message"]
        assert "raise api.max_download_bytes" in error["hint"]
    # An HTML error page where the image should be is not written as a result; the retry gets the image.
    with Image.open(tmp_path / "outbox/hostile-htmlonce.hostile.1.png") as result:
        result.load()
    assert len(gateway.served_html) == 1
    assert_normal_done(tmp_path)


def test_huge_error_bodies_are_truncated_in_error_files(tmp_path: Path, gateway: HostileGateway) -> None:
    config = write_config(tmp_path, gateway.base_url, rules=[HOSTILE, POSTER], api=results_from(gateway))
    make_image(tmp_path / "inbox/hostile-huge-error.jpg")
    drop_normal(tmp_path)

    run_once(config)

    error = error_of(tmp_path, "hostile-huge-error.jpg")
    assert error["http_status"] == 400
    assert len(error["message"]) < 400
    assert error["response"].startswith("<html>Internal details.")
    assert re.search(r"… \[\d+ more characters cut\]$", error["response"])
    assert len(error["response"]) < 4100
    assert (tmp_path / "failed/hostile-huge-error.jpg.error.json").stat().st_size < 10_000
    assert_normal_done(tmp_path)


# -- 4. secrets -------------------------------------------------------------------------------------------------


@pytest.fixture
def rendered_logs() -> Iterator[io.StringIO]:
    """Logs as production renders them (JSON lines, through the scrubbing processor), into a buffer."""
    saved = structlog.get_config()
    buffer = io.StringIO()
    logs.configure("json", "debug", stream=buffer)
    try:
        yield buffer
    finally:
        structlog.configure(**saved)


def test_an_echoed_key_never_reaches_logs_sidecars_or_error_files(
    tmp_path: Path, gateway: HostileGateway, rendered_logs: io.StringIO
) -> None:
    config = write_config(tmp_path, gateway.base_url, rules=[HOSTILE, POSTER], api=results_from(gateway))
    make_image(tmp_path / "inbox/hostile-echo.jpg")
    make_image(tmp_path / "inbox/hostile-echo-html.jpg", color=(3, 3, 3))
    drop_normal(tmp_path)

    service = run_once(config)

    assert all(TEST_KEY.encode() in answer for answer in gateway.answers)  # the gateway did echo the key
    assert len(gateway.answers) == 2  # one each: 400 and 422 are final, never resent
    assert (service.outcomes["failed"], service.outcomes["done"]) == (2, 1)
    echo = error_of(tmp_path, "hostile-echo.jpg")
    assert echo["response"]["request_headers"]["Api-Key"] == "[REDACTED]"  # still a document, key redacted
    assert "[REDACTED]" in json.dumps(error_of(tmp_path, "hostile-echo-html.jpg"))
    for path in files_under(tmp_path):  # results, sidecars, error files, the journal and its WAL
        assert TEST_KEY.encode() not in path.read_bytes(), path
    assert TEST_KEY not in rendered_logs.getvalue()
    assert "remixd.input.failed" in rendered_logs.getvalue()
    assert_normal_done(tmp_path)


def test_a_200_answer_echoing_the_key_in_any_field_or_case_leaves_no_copy(
    tmp_path: Path, sandbox: SandboxServer, rendered_logs: io.StringIO
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    sandbox.set_faults(echo_key_next=1)
    drop_normal(tmp_path)

    service = run_once(config)

    assert service.outcomes["done"] == 1 and sandbox.ledger.requests == 1
    (document,) = sidecars(tmp_path / "outbox")
    assert "[REDACTED]" in document["api"]["created"]
    assert document["result"]["prompt"].endswith("[[REDACTED]]")
    assert document["result"]["style_type"] == "[REDACTED]"
    for path in files_under(tmp_path):  # results, sidecars, the journal and its WAL
        data = path.read_bytes().lower()
        assert TEST_KEY.lower().encode() not in data, path
    assert TEST_KEY.lower() not in rendered_logs.getvalue().lower()


def test_check_never_prints_the_key_even_when_a_gateway_echoes_it(
    tmp_path: Path, gateway: HostileGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-check-echo-only-here-91ab37"  # read from the environment by `check` itself, nowhere else
    gateway.upstream = "http://127.0.0.1:9"  # nothing listens: only the gateway's own answers matter
    config = write_config(tmp_path, gateway.base_url + "/hostile-echo-auth", api={"api_key_env": "ECHO_TEST_KEY"})
    monkeypatch.setenv("ECHO_TEST_KEY", key)  # the CLI reads os.environ; no other seam reaches it

    status, output = run_cli("check", "--api", "-c", str(config), "--log-format", "json")

    assert key not in output
    assert status != 0 and "Bad request from the gateway" in output


def test_a_key_file_others_can_read_gets_a_warning_from_check(tmp_path: Path) -> None:
    key_file = tmp_path / "ideogram.key"
    key_file.write_text("sk-key-file-content-5d2e71\n", encoding="utf-8")
    key_file.chmod(0o644)
    config = write_config(tmp_path, None, api={"api_key_file": str(key_file)})

    status, output = run_cli("check", "-c", str(config), "--log-format", "json")

    assert status == 0
    assert f"api.api_key_file: {key_file} is readable by others; run chmod 600 {key_file}" in output
    assert "sk-key-file-content" not in output
    key_file.chmod(0o600)
    status, output = run_cli("check", "-c", str(config), "--log-format", "json")
    assert status == 0 and "readable by others" not in output


@pytest.mark.parametrize(
    "api",
    [
        {"api_key": "sk-inline-key-in-the-config-0f9e"},
        {"api_key_env": "sk-inline-key-in-the-config-0f9e"},
        {"base_url": "https://user:sk-inline-key-in-the-config-0f9e@gw.example/ideogram"},
    ],
)
def test_a_key_written_into_the_config_is_refused_without_printing_it(tmp_path: Path, api: dict[str, str]) -> None:
    config = write_config(tmp_path, None, api={"sandbox": False, **api})
    config.chmod(0o644)

    status, output = run_cli("check", "-c", str(config), "--log-format", "json")

    assert status == 2
    assert "sk-inline-key-in-the-config-0f9e" not in output
    assert re.search(rf"^{re.escape(str(config))}:\d+: api\.", output, re.MULTILINE), output
