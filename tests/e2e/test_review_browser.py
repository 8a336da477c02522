"""The review page in a real browser: Debian's Chromium, driven by Playwright, against `remixd run` on its
built-in sandbox. One browser and one daemon for the module; every request stays on loopback."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.helpers import Daemon, make_image, wait_for, write_config

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; never a browser Playwright downloads
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODULE_THREADS = ("asyncio-waitpid", "asyncio_")  # Playwright's event loop helpers (driver watcher, file writes)
WAIT_MS = 60_000  # generous: the suites of several engineers share two cores


@dataclass
class Session:
    root: Path
    url: str
    page: Any  # playwright.sync_api.Page
    problems: list[str] = field(default_factory=list)  # console errors (a CSP violation is one), page errors
    elsewhere: list[str] = field(default_factory=list)  # requests to anything but the page: must stay empty


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("browser")
    config = write_config(root, None, extra={"ui": {"listen": "127.0.0.1:0"}})
    daemon = Daemon(config, {})
    Daemon.started.remove(daemon)  # this module's daemon outlives each test; reaped below
    try:
        daemon.wait_started()
        listening = next(e for e in daemon.events() if e.get("event") == "remixd.ui.listening")
        url = str(listening["url"])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                state = Session(root, url, page)
                own = urlsplit(url).netloc

                def route(request: Any) -> None:
                    if urlsplit(request.request.url).netloc == own:
                        request.continue_()
                    else:
                        state.elsewhere.append(request.request.url)
                        request.abort()

                page.route("**/*", route)
                page.on("console", lambda m: state.problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda error: state.problems.append(str(error)))
                page.on("response", lambda r: state.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
                yield state
            finally:
                browser.close()
    finally:
        daemon.reap()


def not_blank(png: bytes) -> None:
    """A screenshot that shows a page: many colours, and neither all dark nor all light."""
    with Image.open(io.BytesIO(png)) as shot:
        image = shot.convert("RGB")
        colours = image.getcolors(maxcolors=1 << 20) or []
        lows, highs = zip(*image.getextrema(), strict=True)
    assert len(colours) > 50, f"{len(colours)} colours"
    assert min(lows) < 64 and max(highs) > 192


def loaded_images(page: Any, selector: str) -> int:
    """How many images under `selector` the browser decoded (an error image has no natural width)."""
    count: int = page.eval_on_selector_all(
        selector, "images => images.filter(i => i.complete && i.naturalWidth > 0).length"
    )
    return count


def test_a_dropped_image_appears_without_a_reload(session: Session) -> None:
    page = session.page
    page.goto(session.url)
    page.wait_for_selector("body[data-live=on]", timeout=WAIT_MS)  # the live stream is open
    assert "Nothing here yet" in page.inner_text("#gallery")
    page.evaluate("window.sameDocument = 'yes'")
    make_image(session.root / "inbox/harbour at dusk.jpg", size=(400, 300), color=(30, 90, 160))
    card = page.wait_for_selector("article.card.state-done:has-text('harbour at dusk.jpg')", timeout=WAIT_MS)
    assert page.evaluate("window.sameDocument") == "yes"  # the same page, never reloaded
    assert card is not None and "A serene tropical beach, harbour at dusk" in card.inner_text()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    assert loaded_images(page, "#gallery article img") == 2  # the input and its result, side by side
    # The overview followed, live: on the sandbox nothing is billed, and what it would have cost is shown.
    assert page.inner_text("[data-field=sandbox_usd] >> nth=0") == "0.08"
    assert page.inner_text("[data-field=spent_usd] >> nth=0") == "0.00"
    not_blank(page.screenshot(full_page=True, path=session.root / "gallery.png"))


def test_its_before_and_after_open_from_the_gallery(session: Session) -> None:
    page = session.page
    page.goto(session.url)
    page.click("article.card >> text=harbour at dusk.jpg")
    page.wait_for_selector(".before-after", timeout=WAIT_MS)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.before-after img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    assert loaded_images(page, ".before-after figure.before img") == 1
    assert loaded_images(page, ".before-after figure.after img") == 1
    widths = page.eval_on_selector_all(".before-after img", "images => images.map(i => i.naturalWidth)")
    assert widths[0] == 400  # the input at full size, not its thumbnail
    not_blank(page.screenshot(full_page=True, path=session.root / "before-after.png"))


def test_a_done_input_is_rerolled_from_its_page_with_a_new_seed(session: Session) -> None:
    page = session.page
    page.goto(session.url)
    page.click("article.card >> text=harbour at dusk.jpg")
    page.click("button:has-text('Re-roll with a new seed')")
    page.wait_for_selector("p.note:has-text('rerolling harbour at dusk.jpg with seed')", timeout=WAIT_MS)
    page.goto(session.url + "?q=harbour")
    page.wait_for_function("() => document.querySelectorAll('article.card.state-done').length === 2", timeout=WAIT_MS)
    results = sorted(path.name for path in (session.root / "outbox").glob("harbour at dusk*.png"))
    assert len(results) == 2  # the new result beside the earlier one, never over it


def test_a_failed_input_is_retried_from_the_page_and_done(session: Session) -> None:
    page = session.page
    page.goto(session.url + "failures")
    (session.root / "inbox/market stall.jpg").write_bytes(b"half a download, not a JPEG")
    card = page.wait_for_selector("article.card:has-text('market stall.jpg')", timeout=WAIT_MS)
    assert card is not None and "not an image remixd can read" in card.inner_text()
    not_blank(page.screenshot(full_page=True, path=session.root / "failures.png"))
    failed_copy = session.root / "failed/market stall.jpg"
    wait_for(failed_copy.is_file, message="the input in the failed folder")
    make_image(failed_copy, size=(300, 300), color=(200, 160, 40))  # the user puts the whole file there
    # By selector, found again when clicked: the live page may have redrawn the card since it was read.
    page.click("article.card:has-text('market stall.jpg') >> button:has-text('Retry')")
    page.wait_for_selector("p.note:has-text('retrying market stall.jpg')", timeout=WAIT_MS)
    page.goto(session.url + "?q=market")
    page.wait_for_selector("article.card.state-done:has-text('market stall.jpg')", timeout=WAIT_MS)
    assert (session.root / "done/market stall.jpg").is_file()


def test_the_session_broke_no_policy_and_stayed_on_loopback(session: Session) -> None:
    assert session.problems == []  # a CSP violation or a script error is reported on the console
    assert session.elsewhere == []
