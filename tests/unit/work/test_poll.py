"""The poll schedule of one generation, once remixd has seen how long generations take, and what a poll
that sees it end does first."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remixd.config.state_values import BudgetConfig
from remixd.ideogram.multipart import Upload
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import GenerationState, PriceQuote, RemixResponse
from remixd.journal.records import JobSpec
from remixd.journal.sqlite import SqliteJournal
from remixd.work.budget import Budget
from remixd.work.gates import Gates
from remixd.work.poll import PollPacer, PollSettings
from remixd.work.prepare import prepare
from remixd.work.retry import InflightLimiter, Pause, RetryPolicy
from remixd.work.submit import Submitter
from tests.helpers import FakeClock, make_image


def seen(pacer: PollPacer, ends_s: list[float], rule: str = "r") -> tuple[list[float], list[int]]:
    """Generations of `rule` ending `ends_s` after they were accepted, each polled by the schedule until a poll
    at or after its end (what the pacer learns from it included): how late each was seen, and in how many
    polls."""
    lags, polls = [], []
    for end_s in ends_s:
        last_pending = None
        for count, at in enumerate(pacer.schedule(rule), start=1):
            if at >= end_s:
                pacer.observe(rule, last_pending, at)
                lags.append(at - end_s)
                polls.append(count)
                break
            last_pending = at
    return lags, polls


def test_generations_ending_as_steadily_as_the_sandboxs_are_seen_within_5_ms_in_three_polls() -> None:
    # A place at Ideogram stays idle from a generation's end until remixd sees it. The sandbox's 0.5 s
    # generations end 492-499 ms after remixd hears they were accepted; polls at 97% and then every 1.5%,
    # growing, saw some 16 ms late.
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    ends = [0.492 + 0.0005 * (n * 7 % 15) for n in range(150)]
    seen(pacer, ends[:50])  # learning how long they take
    lags, polls = seen(pacer, ends[50:])
    assert max(lags) <= 0.005
    assert max(polls) <= 3  # within what 800 polls per 10 s allow at 10 in flight of 0.5 s each (4)


def test_generations_ending_up_to_4_percent_off_the_usual_are_each_seen_within_12_ms() -> None:
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    ends = [0.48, 0.49, 0.5, 0.51]
    seen(pacer, ends * 10)
    lags, polls = seen(pacer, ends)
    assert max(lags) <= 0.012
    assert sum(polls) / len(polls) <= 4


def test_the_first_end_seen_teaches_when_generations_end_not_the_middle_of_the_coarse_polls() -> None:
    # Polls before any end was seen are api.poll_interval_s apart: one pending at 0.25 s and one completed at
    # 0.5 s said "ended at 0.375 s", and the next generations' polls came a fifth early and often.
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    assert list(itertools.islice(pacer.schedule("r"), 2)) == [0.25, 0.5]
    pacer.observe("r", 0.25, 0.5)
    assert 0.49 <= next(pacer.schedule("r")) < 0.5


def test_ends_seen_by_coarse_polls_do_not_drag_the_estimate_early() -> None:
    # The first ten generations of python -m bench --only async_v2 were all polled before any end was seen:
    # pending at 0.25 s, completed at 0.5 s. Taken as ending at 0.375 s, they brought the estimate to 0.39 s,
    # and the next generations took 5 to 14 polls each.
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    for _ in range(10):
        pacer.observe("r", 0.25, 0.5)
    lags, polls = seen(pacer, [0.497] * 5)
    assert max(lags) <= 0.005
    assert max(polls) <= 3


def test_each_rule_has_its_own_estimate() -> None:
    # A rule rendering at QUALITY takes longer than one at TURBO on the same route: one estimate for both
    # polled each early and often, or late.
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    seen(pacer, [0.497] * 10, rule="turbo")
    seen(pacer, [1.993] * 10, rule="quality")
    for _ in range(5):
        for rule, end in (("turbo", 0.497), ("quality", 1.993)):
            lags, polls = seen(pacer, [end], rule=rule)
            assert lags[0] <= 0.03 * end
            assert polls[0] <= 3


def test_a_slow_generation_is_polled_ever_less_often() -> None:
    pacer = PollPacer(FakeClock(), PollSettings(interval_s=0.25))
    pacer.observe("r", 0.45, 0.5)
    times = list(itertools.islice(pacer.schedule("r"), 40))
    waits = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(later >= earlier - 1e-9 for earlier, later in itertools.pairwise(waits[2:]))
    assert waits[-1] == pytest.approx(15.0)
    assert times[-1] > 60  # a minute pending costs tens of polls, not thousands


class Generations:
    """The API at the submitter's seam: each remix() is accepted as a generation, which a poll finds
    completed `ends_s` after it was accepted."""

    def __init__(self, clock: FakeClock, ends_s: float, poll_s: float = 0.0) -> None:
        self.clock, self.ends_s, self.poll_s = clock, ends_s, poll_s  # poll_s: each poll's round trip
        self.accepted_at = 0.0
        self.polled_at: list[float] = []

    def endpoint_url(self, request: RemixRequest) -> str:
        return "http://127.0.0.1:9" + request.endpoint_path()

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        return Upload(image, content_type)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        self.accepted_at = self.clock.monotonic()
        return RemixResponse.model_validate({"generation_id": "g1", "seed": 5})

    def generation(self, generation_id: str) -> GenerationState:
        self.polled_at.append(self.clock.monotonic())
        done = self.clock.monotonic() - self.accepted_at >= self.ends_s
        self.clock.advance(self.poll_s)
        data = [{"url": "http://127.0.0.1:9/r/1.png", "seed": 5}] if done else []
        return GenerationState.model_validate(
            {"generation_id": generation_id, "status": "completed" if done else "pending", "data": data}
        )

    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote:
        raise AssertionError("the submitter never asks a price")

    def download(self, url: str) -> bytes:
        raise AssertionError("the submitter never downloads")

    def check_key(self) -> None:
        raise AssertionError("the submitter never checks the key")

    def account(self) -> str:
        return "generations"


class SlowDisk(SqliteJournal):
    """The real journal, its commits of an accepted generation taking `commit_s` of the fake clock, and what
    the limiter held when a generation's answer was journalled."""

    def __init__(self, path: Path, clock: FakeClock, commit_s: float) -> None:
        super().__init__(path, clock)
        self.clock, self.commit_s = clock, commit_s
        self.limiter: InflightLimiter | None = None
        self.in_flight_at_answer: list[int] = []

    def record_generation(self, job_id: int, generation_id: str, seed: int | None, *, images: int) -> None:
        super().record_generation(job_id, generation_id, seed, images=images)
        self.clock.advance(self.commit_s)

    def record_answer(self, job_id: int, response: Mapping[str, Any], **kwargs: Any) -> None:
        assert self.limiter is not None
        self.in_flight_at_answer.append(self.limiter.in_flight)
        super().record_answer(job_id, response, **kwargs)


def learn(pacer: PollPacer) -> PollPacer:
    """The pacer, having seen ten generations of rule "r" end between 495 and 500 ms after they were accepted."""
    for _ in range(10):
        pacer.observe("r", 0.495, 0.5)
    return pacer


def submit_one(tmp_path: Path, clock: FakeClock, api: Generations, commit_s: float) -> SlowDisk:
    """One job submitted and polled to its end, once generations have been seen to take 0.5 s."""
    journal = SlowDisk(tmp_path / "journal.sqlite3", clock, commit_s)
    limiter = InflightLimiter(4, clock)
    journal.limiter = limiter
    gates = Gates(threading.Event(), Pause(clock), Pause(clock), limiter, Budget(BudgetConfig(), journal, clock), clock)
    submitter = Submitter(journal, api, gates, RetryPolicy(), clock=clock, rng=random.Random(1))
    learn(submitter.pacer)
    source = make_image(tmp_path / "a.jpg")
    request = RemixRequest.model_validate({"model": "ideogram-4", "prompt": "a", "num_images": 2})
    input_id = journal.claim(str(tmp_path), "a.jpg", source.stat().st_size, source.stat().st_mtime_ns)
    assert input_id is not None
    wire = request.model_dump(mode="json", exclude_unset=True)
    spec = JobSpec("r", request.fingerprint(), request.endpoint_path(), wire, 2, request.cost_usd())
    (job,) = journal.add_jobs(input_id, [spec])
    submitter.submit(job, request, prepare(source))
    return journal


def test_polls_are_timed_from_when_ideogram_accepted_not_from_after_the_commit(tmp_path: Path) -> None:
    # Timed from after the generation id's commit, every poll came as late as the disk was slow, and each
    # place at the API stood idle that much longer after its generation ended.
    clock = FakeClock()
    api = Generations(clock, ends_s=0.5)
    journal = submit_one(tmp_path, clock, api, commit_s=0.1)
    try:
        first = api.polled_at[0] - api.accepted_at
        assert first == pytest.approx(next(learn(PollPacer(clock)).schedule("r")))
        assert api.polled_at[-1] - api.accepted_at - 0.5 <= 0.012
    finally:
        journal.close()


def test_each_poll_leaves_at_its_time_whatever_the_round_trips_of_the_polls_before(tmp_path: Path) -> None:
    # Waiting a fixed time after each answer, polls drifted later by every round trip (a few ms each on a
    # loaded machine), and the poll that saw the end came that much later.
    clock = FakeClock()
    api = Generations(clock, ends_s=0.5, poll_s=0.004)
    journal = submit_one(tmp_path, clock, api, commit_s=0.0)
    try:
        departures = [at - api.accepted_at for at in api.polled_at]
        planned = list(itertools.islice(learn(PollPacer(clock)).schedule("r"), len(departures)))
        assert len(departures) >= 2
        assert departures == pytest.approx(planned)
    finally:
        journal.close()


def test_a_generation_frees_its_places_when_a_poll_sees_it_end_before_its_answer_is_journalled(
    tmp_path: Path,
) -> None:
    # The download holds no place at Ideogram: the next upload may take it while the answer is written.
    clock = FakeClock()
    api = Generations(clock, ends_s=0.5)
    journal = submit_one(tmp_path, clock, api, commit_s=0.0)
    try:
        assert journal.in_flight_at_answer == [0]
        assert journal.limiter is not None and journal.limiter.in_flight == 0
        assert journal.get_job(1).state == "answered"
    finally:
        journal.close()
