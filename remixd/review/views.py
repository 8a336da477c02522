"""The review page's answers that need only the journal and the config: the HTML pages, the images and the
static files (README, "The review page"). Routes take ids, never paths: an image is found from its journal row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from remixd.config.model import Config, InboxConfig
from remixd.errors import RemixdError
from remixd.journal.browse import GalleryQuery, JournalReader, reader
from remixd.journal.records import INPUT_STATES, InputState
from remixd.logs import get_logger
from remixd.review import images, pages

if TYPE_CHECKING:
    from remixd.review.server import ReviewServer

log = get_logger(__name__)

MAX_TEXT = 200  # characters of a search
PAGE_SIZE = 24
MAX_ID_DIGITS = 12
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
STATIC = {
    item.name: (item.read_bytes(), STATIC_TYPES[Path(item.name).suffix])
    for item in resources.files("remixd.review").joinpath("static").iterdir()
    if Path(item.name).suffix in STATIC_TYPES
}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    cache: str = "no-store"


def home(app: ReviewServer, query: dict[str, list[str]]) -> Answer:
    gallery = _gallery_query(query)
    with reader(app.journal_path) as journal:
        listing = _listing(app, journal, gallery)
        rules = journal.rules()
        context = _frame(app, journal)
    return html(200, "index.html", **context, **listing, rules=rules, states=INPUT_STATES)


def gallery(app: ReviewServer, query: dict[str, list[str]]) -> Answer:
    with reader(app.journal_path) as journal:
        listing = _listing(app, journal, _gallery_query(query))
    return html(200, "gallery_list.html", **listing, csrf=app.guard.csrf)


def failures(app: ReviewServer, query: dict[str, list[str]]) -> Answer:
    with reader(app.journal_path) as journal:
        listing = _listing(app, journal, _gallery_query(query, state="failed"))
        context = _frame(app, journal)
    retried = _number(query.get("retried"))
    notes = app.notes.get(retried, ()) if retried is not None else ()
    return html(200, "failures.html", **context, **listing, notes=notes)


def failure_list(app: ReviewServer, query: dict[str, list[str]]) -> Answer:
    with reader(app.journal_path) as journal:
        listing = _listing(app, journal, _gallery_query(query, state="failed"))
    return html(200, "failures_list.html", **listing, csrf=app.guard.csrf)


def detail(app: ReviewServer, _query: dict[str, list[str]], input_id: int) -> Answer:
    with reader(app.journal_path) as journal:
        record = journal.get_input(input_id)
        if record is None:
            raise Refused(404, f"no input {input_id} in the journal")
        context = _frame(app, journal)
    inbox = _inbox(app.config(), record.inbox)
    item = pages.card(record, images.input_path(record, inbox) is not None)
    notes = app.notes.get(input_id, ()) if "noted" in _query else ()
    return html(200, "input.html", **context, card=item, notes=notes, reroll=app.reroll is not None)


def _listing(app: ReviewServer, journal: JournalReader, gallery: GalleryQuery) -> dict[str, Any]:
    page = journal.gallery(gallery)
    config = app.config()
    cards = [pages.card(r, images.input_path(r, _inbox(config, r.inbox)) is not None) for r in page.inputs]
    filters = {
        key: value for key, value in (("q", gallery.text), ("inbox", gallery.inbox), ("rule", gallery.rule)) if value
    }
    if gallery.state is not None and gallery.state != "failed":
        filters["state"] = gallery.state
    return {
        "cards": cards,
        "query": gallery,
        "filters": filters,
        "newer": None if page.newer is None else urlencode({**filters, "after": page.newer}),
        "older": None if page.older is None else urlencode({**filters, "before": page.older}),
        "live": gallery.before is None and gallery.after is None,
        "live_query": urlencode(filters),
    }


def _frame(app: ReviewServer, journal: JournalReader) -> dict[str, Any]:
    """What every full page shows around its content: the overview and the CSRF token for its forms."""
    return {"overview": _overview(app, journal), "csrf": app.guard.csrf}


def _overview(app: ReviewServer, journal: JournalReader) -> dict[str, Any]:
    now = app.clock.utcnow()
    counts = journal.overview(since=now - timedelta(days=1), today=now.date())
    return pages.overview(counts, app.live(), app.config().budget)


def input_image(app: ReviewServer, _query: dict[str, list[str]], size: str, input_id: int) -> Answer:
    with reader(app.journal_path) as journal:
        record = journal.get_input(input_id)
    path = None if record is None else images.input_path(record, _inbox(app.config(), record.inbox))
    if path is None:
        raise Refused(404, f"input {input_id} has no image to show (deleted, or not in the journal)")
    return _image(app, path, size, f"input-{input_id}")


def result_image(app: ReviewServer, _query: dict[str, list[str]], size: str, job_id: int, index: int) -> Answer:
    with reader(app.journal_path) as journal:
        job = journal.get_job(job_id)
        record = None if job is None else journal.get_input(job.input_id)
    inbox = None if record is None else _inbox(app.config(), record.inbox)
    path = None if job is None else images.result_path(job, index, inbox)
    if path is None:
        raise Refused(404, f"result {job_id}/{index} has no image (withheld, or not in the journal)")
    return _image(app, path, size, f"result-{job_id}-{index}")


def _image(app: ReviewServer, path: Path, size: str, key: str) -> Answer:
    try:
        served = app.thumbnails.thumbnail(path, key) if size == "thumb" else app.thumbnails.full(path, key)
    except (OSError, ValueError, RemixdError) as error:  # e.g. the unreadable input that failed for it
        log.warning("remixd.ui.image_unreadable", file=str(path), error=str(error))
        if size == "thumb":
            body, content_type = STATIC["unreadable.svg"]
            return Answer(200, body, content_type)
        raise Refused(404, "that image cannot be read") from None
    return Answer(200, served.body, served.content_type, cache="private, max-age=3600")


def static(_app: ReviewServer, _query: dict[str, list[str]], name: str) -> Answer:
    if name not in STATIC:
        raise Refused(404, "no such file")
    body, content_type = STATIC[name]
    return Answer(200, body, content_type, cache="private, max-age=3600")


def html(status: int, template: str, **values: Any) -> Answer:
    return Answer(status, pages.render(template, **values))


def _gallery_query(query: dict[str, list[str]], state: InputState | None = None) -> GalleryQuery:
    def first(key: str) -> str | None:
        values = query.get(key)
        return values[0].strip() if values and values[0].strip() else None

    wanted = first("state")
    return GalleryQuery(
        text=(first("q") or "")[:MAX_TEXT],
        inbox=first("inbox"),
        rule=first("rule"),
        state=state or next((known for known in INPUT_STATES if known == wanted), None),
        before=_number(query.get("before")),
        after=_number(query.get("after")),
        limit=PAGE_SIZE,
    )


def _number(values: list[str] | None) -> int | None:
    return int(values[0]) if values and values[0].isdigit() and len(values[0]) <= MAX_ID_DIGITS else None


def _inbox(config: Config, path: str) -> InboxConfig | None:
    return next((inbox for inbox in config.inboxes if str(inbox.path) == path), None)
