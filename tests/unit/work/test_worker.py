"""The worker on one claimed input, start to finish, against a scripted API and a fake clock.

The API is replaced at the worker's own seam (the `RemixApi` protocol), never inside `requests`; HTTP itself is
tested against the sandbox in tests/integration. The clock is fake, so backoffs run the production policy in
no time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remixd.config.load import load_config
from remixd.config.model import Config
from remixd.config.state_values import BudgetConfig
from remixd.errors import ApiError, ApiUnavailable
from remixd.ideogram.multipart import Upload
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import GenerationState, PriceQuote, RemixResponse
from remixd.intake.companions import stem_waits
from remixd.journal.sqlite import SqliteJournal
from remixd.work import paths
from remixd.work.budget import Budget
from remixd.work.gates import OUTPUT_RETRY_LIMIT_S, OUTPUT_RETRY_MAX_S, Gates
from remixd.work.retry import UNKNOWN_OUTCOME_HINT, InflightLimiter, Pause, RetryPolicy
from remixd.work.worker import Worker
from tests.helpers import FakeClock, image_bytes, make_image, write_config

NOWHERE = "http://127.0.0.1:9"  # nothing listens: the scripted API answers instead


class ScriptedApi:
    """Each remix() raises the next scripted error, or answers with one image once the script is done."""

    def __init__(self, *errors: ApiError) -> None:
        self.errors = list(errors)
        self.sent = 0

    def endpoint_url(self, request: RemixRequest) -> str:
        return NOWHERE + request.endpoint_path()

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        return Upload(image, content_type)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        self.sent += 1
        if self.errors:
            raise self.errors.pop(0)
        item = {"url": NOWHERE + "/r/1.png", "prompt": "p", "resolution": "1024x1024", "seed": 7}
        return RemixResponse.model_validate({"created": "2026-03-01T12:00:00Z", "data": [item]})

    def generation(self, generation_id: str) -> GenerationState:
        raise AssertionError("a legacy route answers at once: nothing is polled")

    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote:
        raise AssertionError("a legacy route has no price quotes")

    def download(self, url: str) -> bytes:
        return image_bytes(fmt="PNG")

    def check_key(self) -> None:
        return None

    def account(self) -> str:
        return "scripted"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path, NOWHERE))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(config: Config, clock: FakeClock) -> Iterator[SqliteJournal]:
    config.state_dir.mkdir(parents=True)
    opened = SqliteJournal(config.state_dir / "journal.sqlite3", clock)
    yield opened
    opened.close()


def make_worker(
    journal: SqliteJournal, api: ScriptedApi, clock: FakeClock, limiter: InflightLimiter | None = None
) -> Worker:
    gates = Gates(
        threading.Event(),
        Pause(clock),
        Pause(clock),
        limiter or InflightLimiter(4, clock),
        Budget(BudgetConfig(), journal, clock),
        clock,
    )
    return Worker(journal, api, gates, RetryPolicy(), clock=clock, stem_waits=stem_waits)


def claim(config: Config, journal: SqliteJournal, name: str, color: tuple[int, int, int] = (200, 80, 40)) -> int:
    path = make_image(config.inboxes[0].path / name, color=color)
    info = path.stat()
    input_id = journal.claim(str(config.inboxes[0].path), name, info.st_size, info.st_mtime_ns)
    assert input_id is not None
    return input_id


def process(worker: Worker, config: Config, input_id: int) -> str:
    inbox = config.inboxes[0]
    return worker.process(input_id, inbox, config.rules_for(inbox)).outcome


def test_a_5xx_storm_is_waited_out_with_the_production_backoff(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    failing = [ApiUnavailable("the API failed (503)", http_status=503, sent=True) for _ in range(3)]
    api = ScriptedApi(*failing)
    assert process(make_worker(journal, api, clock), config, claim(config, journal, "a.jpg")) == "done"
    assert api.sent == 4  # three 503s, then the answer; each billed nothing
    assert sum(clock.waits) >= 1 + 2 + 4 - 2  # 1 s doubling, with jitter: seconds of backoff in no real time
    assert (tmp_path / "done/a.jpg").is_file()
    [sidecar] = (tmp_path / "outbox").glob("*.json")
    assert json.loads(sidecar.read_text())["source"]["relpath"] == "a.jpg"


class WatchedApi(ScriptedApi):
    """Notes, at each encoding and each send, the places taken and the journal's jobs by state."""

    def __init__(self, limiter: InflightLimiter, journal: SqliteJournal) -> None:
        super().__init__()
        self.limiter, self.journal = limiter, journal
        self.seen: list[tuple[str, int, dict[str, int]]] = []

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        self.seen.append(("upload", self.limiter.in_flight, self.journal.job_counts()))
        return super().upload(request, image, filename, content_type)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        self.seen.append(("remix", self.limiter.in_flight, self.journal.job_counts()))
        return super().remix(request, upload, rule=rule)


def test_a_request_is_encoded_before_it_takes_its_place_and_is_recorded_as_sent(
    config: Config, journal: SqliteJournal, clock: FakeClock
) -> None:
    # Encoded after both, the body kept its place at the API idle and lengthened the time from the "sent" row
    # to the generation id, where a crash may pay for a request the journal cannot name.
    limiter = InflightLimiter(4, clock)
    api = WatchedApi(limiter, journal)
    assert process(make_worker(journal, api, clock, limiter), config, claim(config, journal, "a.jpg")) == "done"
    assert [(call, places, counts["pending"], counts["submitting"]) for call, places, counts in api.seen] == [
        ("upload", 0, 1, 0),
        ("remix", 1, 0, 1),
    ]


def test_an_unknown_outcome_fails_the_input_without_sending_it_again(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    api = ScriptedApi(ApiUnavailable("the connection broke after the request was sent", sent=True))
    assert process(make_worker(journal, api, clock), config, claim(config, journal, "a.jpg")) == "failed"
    assert api.sent == 1 and clock.waits == []
    error = json.loads((tmp_path / "failed/a.jpg.error.json").read_text())["error"]
    assert (error["kind"], error["hint"]) == ("api_unavailable", UNKNOWN_OUTCOME_HINT)
    assert journal.counts()["failed"] == 1


def test_the_same_content_again_is_a_duplicate_and_is_not_sent(clock: FakeClock, tmp_path: Path) -> None:
    fixed = [{"name": "fixed", "match": ["*.jpg"], "request": {"prompt": "a fixed prompt", "seed": 7}}]
    config = load_config(write_config(tmp_path, NOWHERE, rules=fixed))  # no {stem}: the same request
    config.state_dir.mkdir(parents=True)
    journal = SqliteJournal(config.state_dir / "journal.sqlite3", clock)
    try:
        api = ScriptedApi()
        worker = make_worker(journal, api, clock)
        first = claim(config, journal, "a.jpg")
        (tmp_path / "inbox/b.jpg").write_bytes((tmp_path / "inbox/a.jpg").read_bytes())
        assert process(worker, config, first) == "done"
        info = (tmp_path / "inbox/b.jpg").stat()
        second = journal.claim(str(config.inboxes[0].path), "b.jpg", info.st_size, info.st_mtime_ns)
        assert second is not None
        assert process(worker, config, second) == "duplicate"
        assert api.sent == 1  # paid once for both
        assert (tmp_path / "done/b.jpg").is_file()
    finally:
        journal.close()


def test_a_symbolic_link_in_the_inbox_fails_with_the_reason_and_is_never_followed(
    config: Config, journal: SqliteJournal, clock: FakeClock, tmp_path: Path
) -> None:
    secret = make_image(tmp_path / "elsewhere.jpg")
    (tmp_path / "inbox/link.jpg").symlink_to(secret)
    info = (tmp_path / "inbox/link.jpg").lstat()
    input_id = journal.claim(str(config.inboxes[0].path), "link.jpg", info.st_size, info.st_mtime_ns)
    assert input_id is not None
    api = ScriptedApi()
    assert process(make_worker(journal, api, clock), config, input_id) == "failed"
    assert api.sent == 0 and secret.is_file()
    error = json.loads((tmp_path / "failed/link.jpg.error.json").read_text())["error"]
    assert error["kind"] == "input" and "symbolic link" in error["message"]


OUTBOX = "o" * 200  # results go 195 bytes deeper than the inbox: past PATH_MAX, the input's own path not


def deep_input(tmp_path: Path, clock: FakeClock) -> tuple[Config, SqliteJournal, str]:
    """A config whose outbox is long, and an input about 3,800 bytes deep in its inbox."""
    config = load_config(write_config(tmp_path, NOWHERE, inbox={"output": f"./{OUTBOX}"}))
    config.state_dir.mkdir(parents=True)
    inbox = config.inboxes[0].path
    folder = inbox
    while len(os.fsencode(folder)) < 3800:
        folder /= "d" * 200
    relpath = str((folder / "photo.jpg").relative_to(inbox))
    return config, SqliteJournal(config.state_dir / "journal.sqlite3", clock), relpath


def test_an_input_whose_results_could_not_be_written_fails_before_it_is_paid(clock: FakeClock, tmp_path: Path) -> None:
    config, journal, relpath = deep_input(tmp_path, clock)
    try:
        api = ScriptedApi()
        assert process(make_worker(journal, api, clock), config, claim(config, journal, relpath)) == "failed"
        assert api.sent == 0 and journal.counts()["failed"] == 1
        error = json.loads((tmp_path / "failed" / f"{relpath}.error.json").read_text())["error"]
        assert error["kind"] == "input" and "too long" in error["message"] and relpath in error["message"]
        assert "shorter" in error["hint"]
        assert not (tmp_path / OUTBOX).exists()
    finally:
        journal.close()


def test_a_result_the_file_system_refuses_fails_after_the_bound_instead_of_retrying_forever(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "too_long", lambda *args, **kwargs: None)  # as if a path slipped past the check
    config, journal, relpath = deep_input(tmp_path, clock)
    try:
        api = ScriptedApi()
        assert process(make_worker(journal, api, clock), config, claim(config, journal, relpath)) == "failed"
        assert api.sent == 1  # paid once, and then it fails: never sent again, never waited on forever
        assert OUTPUT_RETRY_LIMIT_S - OUTPUT_RETRY_MAX_S <= clock.now <= OUTPUT_RETRY_LIMIT_S
        error = json.loads((tmp_path / "failed" / f"{relpath}.error.json").read_text())["error"]
        assert error["kind"] == "output" and "File name too long" in error["message"]
        assert "shorter" in error["hint"]
    finally:
        journal.close()


LONG_STEM = "a" * 246  # a.jpg's name at 250 bytes: its results' names (STEM.poster.1.png) are over NAME_MAX
SHORT_TAG = "~" + hashlib.sha256(LONG_STEM.encode()).hexdigest()[:8]


def long_named(tmp_path: Path, clock: FakeClock, **settings: Any) -> tuple[Config, SqliteJournal]:
    config = load_config(write_config(tmp_path, NOWHERE, **settings))
    config.state_dir.mkdir(parents=True)
    return config, SqliteJournal(config.state_dir / "journal.sqlite3", clock)


def test_a_result_name_over_the_limit_is_shortened_predictably_and_the_sidecar_says_from_what(
    clock: FakeClock, tmp_path: Path
) -> None:
    config, journal = long_named(tmp_path, clock)
    try:
        api = ScriptedApi()
        assert process(make_worker(journal, api, clock), config, claim(config, journal, f"{LONG_STEM}.jpg")) == "done"
        [sidecar] = (tmp_path / "outbox").glob("*.json")
        assert sidecar.name.endswith(f"{SHORT_TAG}.poster.1.json") and len(sidecar.name) <= 255  # the rule, K kept
        document = json.loads(sidecar.read_text())
        assert document["output"]["shortened_from"] == f"{LONG_STEM}.poster.1.png"
        assert (tmp_path / "outbox" / document["image"]["file"]).is_file()
    finally:
        journal.close()


def test_a_folder_of_the_output_name_over_the_limit_is_shortened_instead_of_failing_the_input(
    clock: FakeClock, tmp_path: Path
) -> None:
    config, journal = long_named(tmp_path, clock, inbox={"output_name": "{stem}-{rule}-{date}/{n}.{ext}"})
    try:
        api = ScriptedApi()
        assert process(make_worker(journal, api, clock), config, claim(config, journal, f"{LONG_STEM}.jpg")) == "done"
        [folder] = (tmp_path / "outbox").iterdir()  # 264 bytes as the template renders it
        assert re.fullmatch(r"a+~[0-9a-f]{8}-[a-z-]*~[0-9a-f]{8}", folder.name) and len(folder.name) == 255
        document = json.loads((folder / "1.json").read_text())
        day = clock.utcnow().strftime("%Y-%m-%d")
        assert document["output"]["shortened_from"] == f"{LONG_STEM}-poster-{day}/1.png"
        assert api.sent == 1
    finally:
        journal.close()


def test_a_kept_download_beside_a_long_named_result_fits_too(clock: FakeClock, tmp_path: Path) -> None:
    """STEM.RULE.K.download.EXT was 9 bytes over NAME_MAX: paid for, then failed after an hour of retries."""
    config, journal = long_named(tmp_path, clock, extra={"outputs": {"format": "jpeg", "keep_download": True}})
    try:
        api = ScriptedApi()
        assert process(make_worker(journal, api, clock), config, claim(config, journal, f"{LONG_STEM}.jpg")) == "done"
        [sidecar] = (tmp_path / "outbox").glob("*.json")
        document = json.loads(sidecar.read_text())
        kept = tmp_path / "outbox" / document["output"]["download"]["file"]
        assert kept.is_file() and kept.name.endswith(f"{SHORT_TAG}.poster.1.download.png")
        assert clock.waits == []  # nothing was retried
    finally:
        journal.close()
