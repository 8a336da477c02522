"""The review page against a journal and folders that a real run left (the pipeline in process, against the
sandbox): what each page shows, the images it serves by id, Retry, and what it refuses (README, "The review
page"). Every request goes over loopback to a real ReviewServer."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from remixd.config.load import load_config
from remixd.config.model import Config, UiConfig
from remixd.daemon.operator import retry_failed
from remixd.journal import packing
from remixd.journal.sqlite import JOURNAL_NAME
from remixd.review.pages import Live
from remixd.review.security import CSP
from remixd.review.server import ReviewServer
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from tests.helpers import TEST_KEY, make_image, make_service, noting_errors, reset_mid_request, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
HOSTILE_NAME = "<img src=x onerror=alert(1)>.jpg"  # a file name is anything but "/" and NUL
HOSTILE_RULE = {
    "name": "poster",
    "match": ["*.jpg"],
    "request": {"prompt": "<script>alert('p')</script> {stem}", "model": "V_2", "seed": 12345},
}
TOKEN = "review-token-0123456789abcdef"  # noqa: S105 - the test's own token


@dataclass(frozen=True)
class Library:
    root: Path
    config: Config


def build_library(root: Path) -> Library:
    """A run's worth of inputs: done, withheld, rejected by the API (422), unreadable, and a hostile name."""
    sandbox = SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY})))
    sandbox.start()
    try:
        path = write_config(root, sandbox.base_url, rules=[HOSTILE_RULE], extra={"budget": {"max_usd_per_day": 2.0}})
        make_image(root / "inbox/beach.jpg", size=(320, 200), color=(20, 140, 200))
        make_image(root / "inbox" / HOSTILE_NAME)
        make_image(root / "inbox/FORBIDDEN_422 poster.jpg")
        (root / "inbox/broken.jpg").write_bytes(b"not a JPEG at all")
        make_service(path, "once", ENV).run()
        sandbox.set_faults(unsafe_next=1)
        make_image(root / "inbox/withheld.jpg")
        make_service(path, "once", ENV).run()
    finally:
        sandbox.stop()
    return Library(root, load_config(path))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_library(tmp_path_factory.mktemp("review"))


def serve(library: Library, token: str | None = None, listen: str = "127.0.0.1:0") -> ReviewServer:
    server = ReviewServer(
        UiConfig(listen=listen),
        token=token,
        journal_path=library.config.state_dir / JOURNAL_NAME,
        config=lambda: library.config,
        live=lambda: Live(queued=2, in_flight_images=3, ceiling=8, paused=("budget: <b>today's cap</b> reached",)),
        retry=lambda input_id: retry_failed(library.config, input_ids=[input_id]).lines,
    )
    server.start()
    return server


@pytest.fixture
def page(library: Library) -> Iterator[ReviewServer]:
    server = serve(library)
    yield server
    server.stop()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def ask(
    server: ReviewServer,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Type", "application/x-www-form-urlencoded")
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


def card_ids(html: str) -> dict[str, int]:
    """Input id by file name, as the page lists them (names unescaped)."""
    import html as markup

    found = re.findall(
        r'<article class="card[^"]*" data-input="(\d+)">\s*<header>\s*<a class="name" href="/input/\d+">([^<]*)</a>',
        html,
    )
    return {markup.unescape(name): int(number) for number, name in found}


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


# -- what the pages show ---------------------------------------------------------------------------------


def test_the_gallery_lists_inputs_newest_first_with_their_results(page: ReviewServer) -> None:
    home = ask(page, "/")
    assert home.status == 200 and home.headers["content-type"] == "text/html; charset=utf-8"
    names = list(card_ids(home.text))
    assert names[0] == "withheld.jpg"  # the second run's input is the newest
    assert set(names) == {"beach.jpg", HOSTILE_NAME, "FORBIDDEN_422 poster.jpg", "broken.jpg", "withheld.jpg"}
    assert "/remix · V_2" in home.text and "12345" in home.text and "$0.0800" in home.text
    assert "withheld by Ideogram's safety check" in home.text
    assert 'data-field="in_flight_images">3<' in home.text and 'data-field="ceiling">8<' in home.text
    assert "budget: &lt;b&gt;today&#39;s cap&lt;/b&gt; reached" in home.text  # paused, and why
    assert re.search(r'data-field="spent_usd">0\.\d\d<.*data-field="cap_usd">2\.00<', home.text, re.S)
    assert 'data-field="failed_last_day">2<' in home.text


def test_search_and_filters(page: ReviewServer) -> None:
    def names(query: str) -> set[str]:
        return set(card_ids(ask(page, "/?" + query).text))

    assert names("q=BEACH") == {"beach.jpg"}
    assert names("q=onerror") == {HOSTILE_NAME}
    # the prompt sent: every input that reached a rule, not the unreadable one
    assert names("q=script%3Ealert") == {"beach.jpg", HOSTILE_NAME, "withheld.jpg", "FORBIDDEN_422 poster.jpg"}
    assert names("state=failed") == {"FORBIDDEN_422 poster.jpg", "broken.jpg"}
    assert names("rule=poster&state=done") == {"beach.jpg", HOSTILE_NAME, "withheld.jpg"}
    assert names("rule=nothing") == set()
    inbox = str(next(iter(page.config().inboxes)).path)
    assert len(names("inbox=" + inbox.replace("/", "%2F"))) == 5
    fragment = ask(page, "/gallery?q=beach")
    assert fragment.status == 200 and "<html" not in fragment.text and set(card_ids(fragment.text)) == {"beach.jpg"}


def test_the_before_and_after_of_one_input(page: ReviewServer, library: Library) -> None:
    beach = card_ids(ask(page, "/").text)["beach.jpg"]
    detail = ask(page, f"/input/{beach}")
    assert detail.status == 200
    assert f'src="/full/input/{beach}"' in detail.text and 'alt="after: result 1"' in detail.text
    before = ask(page, f"/full/input/{beach}")
    assert before.headers["content-type"] == "image/jpeg"
    assert before.body == (library.root / "done/beach.jpg").read_bytes()
    job = re.search(r'src="/full/result/(\d+)/1"', detail.text)
    assert job is not None
    after = ask(page, f"/full/result/{job.group(1)}/1")
    assert after.headers["content-type"] == "image/png"
    assert after.body == (library.root / "outbox/beach.poster.1.png").read_bytes()


def test_thumbnails_are_made_once_and_kept_in_the_state_folder(page: ReviewServer, library: Library) -> None:
    beach = card_ids(ask(page, "/").text)["beach.jpg"]
    first = ask(page, f"/thumb/input/{beach}")
    assert first.status == 200 and first.headers["content-type"] == "image/jpeg"
    cached = library.config.state_dir / "thumbnails" / f"input-{beach}.jpg"
    made = cached.stat().st_mtime_ns
    assert ask(page, f"/thumb/input/{beach}").body == first.body
    assert cached.stat().st_mtime_ns == made  # served from the cache, not made again
    with Image.open(cached) as thumbnail:
        assert max(thumbnail.size) <= 360


def test_failures_show_message_hint_and_the_api_status(page: ReviewServer) -> None:
    failures = ask(page, "/failures")
    assert failures.status == 200
    assert set(card_ids(failures.text)) == {"FORBIDDEN_422 poster.jpg", "broken.jpg"}
    assert '<dd class="http-status">422</dd>' in failures.text
    assert '<dd class="http-status">no answer</dd>' in failures.text  # the unreadable file never reached the API
    assert "broken.jpg is not an image remixd can read" in failures.text
    assert failures.text.count('<button type="submit">Retry</button>') == 2


def test_the_overview_streams_as_server_sent_events(page: ReviewServer) -> None:
    port = int(page.url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        received = b""
        while b"\n\n" not in received.partition(b"\r\n\r\n")[2]:
            chunk = connection.recv(65536)
            assert chunk, received
            received += chunk
    head, _, stream = received.partition(b"\r\n\r\n")
    assert b"Content-Type: text/event-stream" in head and CSP.encode() in head
    event, data = stream.split(b"\n")[:2]
    assert event == b"event: overview"
    document = json.loads(data.removeprefix(b"data: "))
    assert (document["in_flight_images"], document["failed_last_day"], document["queued"]) == (3, 2, 0)
    assert document["inboxes"][0]["done"] == 3 and document["inboxes"][0]["failed"] == 2


def test_retry_puts_the_input_back_like_remixd_retry(tmp_path: Path) -> None:
    library = build_library(tmp_path)
    server = serve(library)
    try:
        failures = ask(server, "/failures")
        broken = card_ids(failures.text)["broken.jpg"]
        answer = ask(server, f"/retry/{broken}", method="POST", body=f"csrf={csrf(failures.text)}".encode())
        assert answer.status == 303 and answer.headers["location"] == f"/failures?retried={broken}"
        assert (library.root / "inbox/broken.jpg").read_bytes() == b"not a JPEG at all"
        assert not (library.root / "failed/broken.jpg").exists()
        assert not (library.root / "failed/broken.jpg.error.json").exists()
        after = ask(server, answer.headers["location"])
        assert "retrying broken.jpg" in after.text and "broken.jpg" not in card_ids(after.text)
        assert "FORBIDDEN_422 poster.jpg" in card_ids(after.text)  # only the one asked for
    finally:
        server.stop()


# -- what the page refuses -------------------------------------------------------------------------------


def test_every_answer_carries_a_strict_policy_and_never_the_key(page: ReviewServer) -> None:
    beach = card_ids(ask(page, "/").text)["beach.jpg"]
    for path in (
        "/",
        "/failures",
        f"/input/{beach}",
        "/gallery",
        "/static/app.js",
        "/nowhere",
        f"/thumb/input/{beach}",
    ):
        reply = ask(page, path)
        assert reply.headers["content-security-policy"] == CSP, path
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert TEST_KEY.encode() not in reply.body
    assert "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP
    home = ask(page, "/").text
    assert not re.search(r"<script(?![^>]*src=\"/static/app\.js\")", home)  # no inline script at all
    assert not re.search(r"(src|href)=\"(https?:)?//", home)  # no third-party asset


def test_html_in_file_names_and_prompts_is_shown_not_run(page: ReviewServer) -> None:
    pages = ask(page, "/").text + ask(page, "/failures").text
    hostile = card_ids(ask(page, "/").text)[HOSTILE_NAME]
    pages += ask(page, f"/input/{hostile}").text
    assert "<img src=x" not in pages and "<script>alert" not in pages
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in pages
    assert "&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;" in pages


@pytest.mark.parametrize(
    "path",
    [
        "/full/input/../../../../etc/passwd",
        "/full/input/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/thumb/input/1/../../etc/passwd",
        "/full/result/1/99",
        "/full/result/1/0",
        "/full/input/999999",
        "/full/input/-1",
        "/full/input/1e3",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/style.css/../../../pyproject.toml",
        "//etc/passwd",
        "/input/1;rm",
        "/full/input/9999999999999999999999",
    ],
)
def test_a_path_in_the_url_never_reaches_the_file_system(page: ReviewServer, path: str) -> None:
    reply = ask(page, path)
    assert reply.status == 404, (path, reply.status)
    assert b"root:" not in reply.body and b"[project]" not in reply.body


def test_a_journal_row_pointing_outside_the_folders_serves_nothing(tmp_path: Path) -> None:
    library = build_library(tmp_path)
    secret = tmp_path / "elsewhere.jpg"
    make_image(secret)
    with sqlite3.connect(library.config.state_dir / JOURNAL_NAME) as db:
        packing.register(db)  # a finished job's files are packed with its request and answer
        db.execute("UPDATE inputs SET disposed_to = ? WHERE relpath = 'beach.jpg'", (str(secret),))
        db.execute(
            "UPDATE jobs SET request = coalesce(request, unpacked(packed, 0)), response = coalesce(response,"
            " unpacked(packed, 1)), files = ?, packed = NULL",
            (json.dumps([str(secret)]),),
        )
    db.close()
    server = serve(library)
    try:
        beach = card_ids(ask(server, "/").text)["beach.jpg"]
        assert ask(server, f"/full/input/{beach}").status == 404
        assert all(ask(server, f"/full/result/{job}/1").status == 404 for job in range(1, 6))
    finally:
        server.stop()


def test_state_changes_need_a_post_with_this_pages_csrf_token(page: ReviewServer, library: Library) -> None:
    broken = card_ids(ask(page, "/failures").text)["broken.jpg"]
    good = csrf(ask(page, "/failures").text)
    assert ask(page, f"/retry/{broken}").status == 405  # a link or an <img> cannot retry
    refused = [
        ask(page, f"/retry/{broken}", method="POST", body=b""),  # missing
        ask(page, f"/retry/{broken}", method="POST", body=b"csrf=forged-token-value"),  # forged
        ask(page, f"/retry/{broken}", method="POST", body=f"csrf={good[:-1]}".encode()),  # almost
        ask(
            page,
            f"/retry/{broken}",
            method="POST",
            body=f"csrf={good}".encode(),
            headers={"Sec-Fetch-Site": "cross-site"},
        ),
    ]
    assert [reply.status for reply in refused] == [403, 403, 403, 403]
    assert ask(page, f"/retry/{broken}", method="POST", body=b"csrf=" + b"x" * 5000).status == 413
    assert (library.root / "failed/broken.jpg").is_file()  # nothing moved


def test_re_roll_is_a_post_with_the_csrf_token_and_absent_when_not_wired(page: ReviewServer) -> None:
    beach = card_ids(ask(page, "/").text)["beach.jpg"]
    assert "Re-roll" not in ask(page, f"/input/{beach}").text  # this server has no reroll operation
    assert ask(page, f"/reroll/{beach}", method="POST", body=f"csrf={page.guard.csrf}".encode()).status == 404
    assert ask(page, f"/reroll/{beach}").status == 405


def test_another_host_name_is_refused_on_loopback(page: ReviewServer) -> None:
    """A hostile site that rebinds its own name to 127.0.0.1 sends that name as Host: refused."""
    assert ask(page, "/", headers={"Host": "attacker.example:80"}).status == 421
    assert ask(page, "/", headers={"Host": "localhost:" + page.url.rsplit(":", 1)[1].strip("/")}).status == 200


def test_huge_or_crowded_query_strings_are_refused_and_the_page_goes_on(page: ReviewServer) -> None:
    assert ask(page, "/?q=" + "a" * 5000).status == 414
    assert ask(page, "/?q=" + "a" * 70_000).status == 414  # past the request line limit of http.server
    assert ask(page, "/?" + "&".join(f"k{n}=v" for n in range(50))).status == 400
    assert ask(page, "/?q=" + "%" * 300 + "&before=abc&after=-5&state=nonsense").status == 200
    assert ask(page, "/").status == 200


def test_a_token_guards_the_page_when_it_is_set(library: Library) -> None:
    server = serve(library, token=TOKEN, listen="127.0.0.1:0")
    try:
        assert ask(server, "/").status == 401
        assert ask(server, "/?token=wrong-token-0123456789").status == 401
        assert ask(server, "/full/input/1", headers={"Authorization": "Bearer wrong"}).status == 401
        login = ask(server, f"/failures?token={TOKEN}&q=x")
        assert login.status == 303 and login.headers["location"] == "/failures?q=x"  # the token leaves the URL
        cookie = login.headers["set-cookie"].split(";")[0]
        assert TOKEN not in cookie and "HttpOnly" in login.headers["set-cookie"]
        assert ask(server, "/", headers={"Cookie": cookie}).status == 200
        assert ask(server, "/", headers={"Cookie": cookie[:-2] + "00"}).status == 401
        assert ask(server, "/", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
        assert ask(server, "/", headers={"Cookie": cookie, "Host": "review.example"}).status == 200
        assert TOKEN.encode() not in ask(server, "/", headers={"Cookie": cookie}).body
    finally:
        server.stop()


def test_a_page_closed_mid_request_leaves_no_traceback(
    page: ReviewServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # socketserver printed a traceback of ConnectionResetError for each, into the daemon's journal.
    dealt = noting_errors(monkeypatch)
    reset_mid_request(("127.0.0.1", int(page.url.rsplit(":", 1)[1].strip("/"))), b"GET /gall")
    assert dealt.wait(10)
    assert ask(page, "/").status == 200
    assert "Traceback" not in capfd.readouterr().err
