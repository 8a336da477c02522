"""RetryPolicy arithmetic, and the limiter and pause with real threads (every wait bounded)."""

# literal expectations read best here; random.Random is seeded jitter, not crypto

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable

import pytest

from remixd.errors import ApiUnavailable, JobFailed, Stopped
from remixd.work.retry import UNKNOWN_OUTCOME_HINT, InflightLimiter, Pause, RetryPolicy, retry_unavailable
from tests.helpers import FakeClock

WAIT_S = 5.0  # upper bound for anything a test waits on; success never takes this long


def _eventually(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    done = threading.Event()
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if condition():
                done.set()
                break
            deadline.wait(0.005)
    finally:
        timer.cancel()
    return done.is_set()


def _start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# --- RetryPolicy ----------------------------------------------------------------------------------


def test_backoff_doubles_within_jitter_bounds_and_is_capped() -> None:
    policy = RetryPolicy(base_s=1.0, max_backoff_s=10.0, jitter=0.25)
    rng = random.Random(1)
    for attempt, nominal in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]:
        for _ in range(200):
            assert nominal * 0.75 <= policy.delay(attempt, None, rng) <= nominal * 1.25
    for attempt in (5, 6, 50, 10_000):
        assert 7.5 <= policy.delay(attempt, None, rng) <= 10.0


def test_jitter_actually_spreads_delays() -> None:
    policy = RetryPolicy(jitter=0.25)
    rng = random.Random(2)
    assert len({policy.delay(3, None, rng) for _ in range(20)}) > 10


def test_no_jitter_gives_the_exact_sequence() -> None:
    policy = RetryPolicy(base_s=0.5, max_backoff_s=3.0, jitter=0.0)
    rng = random.Random(3)
    assert [policy.delay(attempt, None, rng) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_retry_after_longer_than_backoff_wins() -> None:
    policy = RetryPolicy(base_s=1.0, max_backoff_s=60.0, jitter=0.0)
    rng = random.Random(4)
    assert policy.delay(1, 30.0, rng) == 30.0
    assert policy.delay(1, 120.0, rng) == 120.0  # the server's word beats our own cap
    assert policy.delay(4, 2.0, rng) == 8.0  # shorter than our backoff: the larger is taken


def test_retry_after_is_bounded_by_total_time_and_junk_is_ignored() -> None:
    policy = RetryPolicy(base_s=1.0, total_s=100.0, jitter=0.0)
    rng = random.Random(5)
    assert policy.delay(1, 10_000.0, rng) == 100.0
    assert policy.delay(1, float("nan"), rng) == 1.0
    assert policy.delay(1, -5.0, rng) == 1.0


def test_gives_up_on_attempts_or_total_time() -> None:
    policy = RetryPolicy(max_attempts=3, total_s=60.0)
    assert not policy.gives_up(1, 0.0)
    assert not policy.gives_up(2, 59.9)
    assert policy.gives_up(3, 0.0)
    assert policy.gives_up(1, 60.0)


def test_a_retry_loop_driven_by_a_fake_clock_stays_within_the_total() -> None:
    policy = RetryPolicy(max_attempts=100, base_s=1.0, max_backoff_s=60.0, total_s=300.0)
    rng = random.Random(6)
    elapsed, attempt = 0.0, 0
    while True:
        attempt += 1  # an attempt that failed
        if policy.gives_up(attempt, elapsed):
            break
        elapsed += policy.delay(attempt, None, rng)
    assert 300.0 <= elapsed < 300.0 + 60.0 * 1.25
    assert attempt < 100


@pytest.mark.parametrize("arguments", [{"max_attempts": 0}, {"jitter": 1.5}, {"base_s": -1.0}, {"total_s": -1.0}])
def test_nonsense_policies_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**arguments)  # type: ignore[arg-type]


# --- InflightLimiter ------------------------------------------------------------------------------


def test_limiter_counts_images_not_requests() -> None:
    limiter = InflightLimiter(8)
    stop = threading.Event()
    assert limiter.acquire(4, stop)
    assert limiter.acquire(3, stop)
    assert limiter.in_flight == 7
    assert not limiter.acquire(2, stop, timeout=0.05)  # 9 > 8
    assert limiter.acquire(1, stop, timeout=0.05)
    limiter.release(4)
    assert limiter.in_flight == 4


def test_limiter_blocks_and_wakes_on_release() -> None:
    limiter = InflightLimiter(2)
    stop = threading.Event()
    assert limiter.acquire(2, stop)
    acquired = threading.Event()
    thread = _start(lambda: acquired.set() if limiter.acquire(1, stop, timeout=WAIT_S) else None)
    assert not acquired.wait(0.1)
    limiter.release(1)
    assert acquired.wait(WAIT_S)
    thread.join(WAIT_S)
    assert limiter.in_flight == 2


def test_stop_event_releases_waiters_with_false() -> None:
    limiter = InflightLimiter(1)
    stop = threading.Event()
    assert limiter.acquire(1, stop)
    results: list[bool] = []
    threads = [_start(lambda: results.append(limiter.acquire(1, stop))) for _ in range(3)]
    assert _eventually(lambda: all(thread.is_alive() for thread in threads))
    stop.set()
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert results == [False, False, False]
    assert limiter.in_flight == 1
    assert not limiter.acquire(1, stop)  # nothing new starts once stopping


def test_aimd_halves_with_a_floor_of_one_and_grows_back_additively() -> None:
    limiter = InflightLimiter(8)
    limiter.on_inflight_limit()
    assert limiter.ceiling == 4
    for expected in (2, 1, 1):
        limiter.on_inflight_limit()
        assert limiter.ceiling == expected
    limiter.on_success()
    assert limiter.ceiling == 2  # one success at ceiling 1 earns a place
    limiter.on_success()
    assert limiter.ceiling == 2
    limiter.on_success()
    assert limiter.ceiling == 3
    for _ in range(3 + 4 + 5 + 6 + 7 + 8 + 20):
        limiter.on_success()
    assert limiter.ceiling == 8  # never above the maximum


def test_a_big_request_runs_alone_under_a_lowered_ceiling() -> None:
    limiter = InflightLimiter(8)
    for _ in range(3):
        limiter.on_inflight_limit()
    assert limiter.ceiling == 1
    stop = threading.Event()
    assert limiter.acquire(1, stop)
    assert not limiter.acquire(8, stop, timeout=0.05)  # something else is in flight
    limiter.release(1)
    assert limiter.acquire(8, stop, timeout=WAIT_S)  # alone: no deadlock
    assert limiter.in_flight == 8
    assert not limiter.acquire(1, stop, timeout=0.05)
    limiter.release(8)


def test_a_waiting_big_request_is_not_starved_by_small_ones() -> None:
    limiter = InflightLimiter(4)
    stop = threading.Event()
    assert limiter.acquire(2, stop)
    big_acquired = threading.Event()
    _start(lambda: big_acquired.set() if limiter.acquire(4, stop, timeout=WAIT_S) else None)
    assert _eventually(lambda: len(limiter._queue) == 1)  # the big one is queued first
    assert not limiter.acquire(1, stop, timeout=0.1)  # would fit, but waits its turn behind the big one
    limiter.release(2)
    assert big_acquired.wait(WAIT_S)
    assert limiter.in_flight == 4


def test_many_threads_never_exceed_the_ceiling() -> None:
    limiter = InflightLimiter(5)
    stop = threading.Event()
    peak = 0
    lock = threading.Lock()
    current = 0

    failures: list[int] = []

    def work(images: int) -> None:
        nonlocal peak, current
        for _ in range(20):
            if not limiter.acquire(images, stop, timeout=WAIT_S):
                failures.append(images)  # an assert here would die with the thread, unseen
                return
            with lock:
                current += images
                peak = max(peak, current)
            with lock:
                current -= images
            limiter.release(images)

    threads = [_start(functools.partial(work, images)) for images in (1, 2, 3, 1, 2, 3)]
    for thread in threads:
        thread.join(WAIT_S * 2)
        assert not thread.is_alive()
    assert failures == []
    assert 1 <= peak <= 5
    assert limiter.in_flight == 0


def test_set_maximum_follows_an_unthrottled_ceiling_and_caps_a_throttled_one() -> None:
    limiter = InflightLimiter(8)
    limiter.set_maximum(12)
    assert (limiter.maximum, limiter.ceiling) == (12, 12)
    limiter.on_inflight_limit()
    limiter.set_maximum(16)
    assert (limiter.maximum, limiter.ceiling) == (16, 6)
    limiter.set_maximum(4)
    assert (limiter.maximum, limiter.ceiling) == (4, 4)


def test_releasing_more_than_held_is_a_bug_and_says_so() -> None:
    limiter = InflightLimiter(2)
    with pytest.raises(ValueError, match="release"):
        limiter.release(1)


# --- Pause ----------------------------------------------------------------------------------------


def test_pause_holds_workers_until_resumed() -> None:
    pause = Pause()
    stop = threading.Event()
    assert pause.wait_while_paused(stop, timeout=0.01)
    pause.pause("the API key was rejected (401)")
    assert pause.reason == "the API key was rejected (401)"
    released = threading.Event()
    _start(lambda: released.set() if pause.wait_while_paused(stop, timeout=WAIT_S) else None)
    assert not released.wait(0.1)
    pause.resume()
    assert released.wait(WAIT_S)
    assert not pause.is_paused


def test_pause_until_lifts_itself_when_the_clock_passes_it() -> None:
    clock = FakeClock()
    pause = Pause(clock)
    stop = threading.Event()
    pause.pause("daily budget spent", until=clock.wall() + 600)  # the budget waits for midnight
    assert not pause.wait_while_paused(stop, timeout=300)  # half way there: still paused
    assert pause.reason == "daily budget spent"
    assert pause.wait_while_paused(stop, timeout=600)
    assert pause.reason is None
    assert clock.now == pytest.approx(600, abs=0.1)  # it waited out the pause, no longer


def test_stop_releases_a_paused_waiter_with_false() -> None:
    pause = Pause()
    stop = threading.Event()
    pause.pause("budget")
    results: list[bool] = []
    thread = _start(lambda: results.append(pause.wait_while_paused(stop)))
    stop.set()
    thread.join(WAIT_S)
    assert results == [False]


# --- the retry loop, on a fake clock with the production policy -------------------------------------


DEFAULT = RetryPolicy()  # what remixd runs with: 6 attempts, 1 s doubling, 15 minutes in all


class Script:
    """An attempt that fails with each of `errors` in turn, then returns "answered"."""

    def __init__(self, *errors: ApiUnavailable) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.journalled: list[tuple[str, bool]] = []

    def attempt(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answered"

    def on_error(self, error: ApiUnavailable, final: bool) -> None:
        self.journalled.append((error.message, final))


def _run(script: Script, clock: FakeClock, policy: RetryPolicy = DEFAULT) -> str:
    stop = threading.Event()
    return retry_unavailable(
        script.attempt,
        policy=policy,
        clock=clock,
        rng=random.Random(7),
        sleep=lambda seconds: clock.wait(stop, seconds),
        on_error=script.on_error,
        event="test.retry",
    )


def _failed(status: int) -> ApiUnavailable:
    return ApiUnavailable(f"the API failed ({status})", http_status=status, sent=True)


def test_a_5xx_is_retried_with_backoff_until_it_is_answered() -> None:
    clock = FakeClock()
    script = Script(_failed(503), _failed(502))
    assert _run(script, clock, RetryPolicy(jitter=0.0)) == "answered"
    assert script.calls == 3 and clock.waits == [1.0, 2.0]
    assert script.journalled == [("the API failed (503)", False), ("the API failed (502)", False)]


def test_the_loop_gives_up_after_the_policy_s_attempts_and_journals_the_last_error_as_final() -> None:
    clock = FakeClock()
    script = Script(*[_failed(500) for _ in range(10)])
    with pytest.raises(JobFailed) as failed:
        _run(script, clock)
    assert script.calls == DEFAULT.max_attempts
    assert failed.value.error.kind == "api_unavailable" and failed.value.error.http_status == 500
    assert [final for _message, final in script.journalled] == [False] * 5 + [True]
    assert 0 < clock.now < DEFAULT.total_s  # an hour of real backoff would have passed; the test took none


def test_an_unknown_outcome_is_never_resent() -> None:
    clock = FakeClock()
    reset = ApiUnavailable("the connection broke after the request was sent", sent=True)  # no status: unknown
    script = Script(reset)
    with pytest.raises(JobFailed) as failed:
        _run(script, clock)
    assert script.calls == 1 and clock.waits == []  # not sent again, not even after a pause
    assert failed.value.error.hint == UNKNOWN_OUTCOME_HINT
    assert script.journalled == [(reset.message, True)]


def test_inflight_limit_answers_count_against_time_not_attempts() -> None:
    clock = FakeClock()
    busy = [
        ApiUnavailable("busy (429 inflight_limit)", http_status=429, sent=False, inflight_limit=True) for _ in range(9)
    ]
    script = Script(*busy)
    assert _run(script, clock) == "answered"  # nine 429s, more than max_attempts: the shared limit at work
    assert script.calls == 10


def test_a_stop_during_the_backoff_ends_the_loop() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        retry_unavailable(
            Script(_failed(503)).attempt,
            policy=DEFAULT,
            clock=FakeClock(),
            rng=random.Random(7),
            sleep=lambda seconds: FakeClock().wait(stop, seconds),
            on_error=lambda _error, _final: None,
            event="test.retry",
        )
