"""How long to wait before trying again, and how many images may be in flight at once.

`RetryPolicy` is pure arithmetic; `retry_unavailable` is the one bounded loop that applies it, to a submission
and to a download alike, and the one place that refuses to resend a request whose outcome is unknown (README,
"Retries never pay twice"). `InflightLimiter` counts
images, not requests, because that is what Ideogram's in-flight limit counts ("a request for 4 images takes 4
places", reference §4.2); its ceiling backs off when Ideogram answers 429 `inflight_limit` and creeps back up
on success (AIMD), so a shared organisation limit is found instead of hammered. `Pause` holds every worker
while the key is rejected or the day's budget is spent.
"""

from __future__ import annotations

import collections
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from remixd.clock import SYSTEM_CLOCK, Clock
from remixd.errors import ApiUnavailable, JobFailed, Stopped, with_hint
from remixd.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")
UNKNOWN_OUTCOME_HINT = "check the API's usage page; `remixd retry` sends it again (it may be billed twice)"

POLL_S = 0.05  # how often a waiter re-checks its stop event; Condition.wait cannot also wait on an Event


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with proportional jitter, bounded by attempts and by total time."""

    max_attempts: int = 6
    base_s: float = 1.0
    max_backoff_s: float = 60.0
    total_s: float = 900.0
    jitter: float = 0.25  # each delay is drawn from backoff * [1 - jitter, 1 + jitter]
    after_crash: Literal["resend", "hold"] = "resend"  # api.after_crash: a request a crash caught in flight

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.max_backoff_s < 0 or self.total_s < 0:
            raise ValueError("max_attempts must be >= 1 and every duration >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one.

        Our own backoff is capped at `max_backoff_s`; a server's Retry-After wins when it asks for longer
        (sending earlier only earns another 429), but never beyond `total_s`, past which we give up anyway.
        """
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 seconds is already "forever"; avoids float overflow
        backoff = min(self.max_backoff_s, self.base_s * 2.0**exponent)
        jittered = min(self.max_backoff_s, backoff * rng.uniform(1 - self.jitter, 1 + self.jitter))
        if retry_after is not None and math.isfinite(retry_after) and retry_after > jittered:
            return min(retry_after, self.total_s)
        return jittered

    def gives_up(self, attempt: int, elapsed_s: float) -> bool:
        """True when `attempt` attempts have been made or the job has spent its whole time budget."""
        return attempt >= self.max_attempts or elapsed_s >= self.total_s


def retry_unavailable(
    attempt: Callable[[], T],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    sleep: Callable[[float], bool],
    on_error: Callable[[ApiUnavailable, bool], None],
    event: str,
) -> T:
    """`attempt()` until it returns, trying again after an ApiUnavailable within `policy`.

    `on_error(error, final)` journals each failure; a final one then raises JobFailed. `sleep(seconds)` waits
    out the backoff and says whether the daemon is stopping (then Stopped). A 5xx is retried: the reference
    says a generation that fails is not billed. A reset or timeout after sending (`sent`, no status) is never
    retried: Ideogram may have run and billed it, so the input fails with a way back instead of being resent
    behind the user's back. 429 `inflight_limit` answers (other clients of the organisation were busy,
    nothing ran) count against the time bound only, so a long shared-limit storm slows remixd down instead of
    failing inputs.
    """
    attempts = limited = 0
    first = clock.monotonic()
    while True:
        attempts += 1
        try:
            return attempt()
        except ApiUnavailable as error:
            limited += error.inflight_limit
            unknown = error.sent and error.http_status is None
            if unknown:
                error = with_hint(error, UNKNOWN_OUTCOME_HINT)
            if unknown or policy.gives_up(attempts - limited, clock.monotonic() - first):
                on_error(error, True)
                raise JobFailed(error.record()) from None
            on_error(error, False)
            delay = policy.delay(attempts, error.retry_after, rng)
            log.warning(event, status=error.http_status, attempt=attempts, delay_s=round(delay, 2), error=error.message)
            if sleep(delay):
                raise Stopped from None


class InflightLimiter:
    """A counting semaphore in images with an AIMD ceiling; waiters are served first come, first served.

    FIFO order matters: without it a request for 8 images waiting for room would starve behind a stream of
    1-image requests that always fit. Only the first in line is woken when room may have come: woken all at
    once, every worker waiting for a place took the lock and the GIL in turn to find it was not its turn,
    while the one whose turn it was waited among them (python -m bench --only async_v2).
    """

    def __init__(self, maximum: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self._lock = threading.Lock()
        self._maximum = maximum
        self._ceiling = maximum
        self._in_flight = 0
        self._successes = 0  # since the ceiling last changed
        self._queue: collections.deque[threading.Condition] = collections.deque()  # each waiter's own turn

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def ceiling(self) -> int:
        with self._lock:
            return self._ceiling

    @property
    def maximum(self) -> int:
        with self._lock:
            return self._maximum

    def acquire(self, images: int, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block until `images` more fit under the ceiling; False when `stop` is set or `timeout` passes.

        A request larger than the ceiling runs alone once nothing else is in flight, so num_images: 8 still
        makes progress when 429s have halved the ceiling to 1.
        """
        if images < 1:
            raise ValueError("images must be at least 1")
        with self._lock:
            turn = threading.Condition(self._lock)
            self._queue.append(turn)
            try:
                if not _wait(self._clock, turn, lambda: self._queue[0] is turn and self._fits(images), stop, timeout):
                    return False
                self._in_flight += images
                return True
            finally:
                self._queue.remove(turn)
                self._wake_first()  # the next in line may fit now

    def _fits(self, images: int) -> bool:
        return self._in_flight == 0 or self._in_flight + images <= self._ceiling

    def _wake_first(self) -> None:
        """Inside the lock: room may have come; the first in line looks."""
        if self._queue:
            self._queue[0].notify()

    def release(self, images: int) -> None:
        with self._lock:
            if images > self._in_flight:
                raise ValueError(f"release({images}) with only {self._in_flight} images in flight")
            self._in_flight -= images
            self._wake_first()

    def on_inflight_limit(self) -> None:
        """Ideogram said 429 inflight_limit: someone else shares the organisation's places; halve."""
        with self._lock:
            self._ceiling = max(1, self._ceiling // 2)
            self._successes = 0

    def on_success(self) -> None:
        """Additive increase: one more place after a whole ceiling's worth of successes."""
        with self._lock:
            if self._ceiling >= self._maximum:
                return
            self._successes += 1
            if self._successes >= self._ceiling:
                self._ceiling += 1
                self._successes = 0
                self._wake_first()

    def set_maximum(self, maximum: int) -> None:
        """A reload changed max_in_flight_images. An unthrottled ceiling follows it; a throttled one stays."""
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        with self._lock:
            unthrottled = self._ceiling == self._maximum
            self._maximum = maximum
            self._ceiling = maximum if unthrottled else min(self._ceiling, maximum)
            self._wake_first()


class Pause:
    """A shared "stop submitting" switch with a reason: a rejected key, or the day's budget spent.

    `until` (a clock value) makes the pause lift by itself, e.g. at the next UTC midnight for the budget.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._condition = threading.Condition()
        self._reason: str | None = None
        self._until: float | None = None
        self._waiting = 0  # workers blocked in wait_while_paused: not in flight, a drain need not wait for them

    @property
    def waiting(self) -> int:
        with self._condition:
            return self._waiting

    @property
    def reason(self) -> str | None:
        """Why submissions are paused, or None when they are not."""
        with self._condition:
            self._expire()
            return self._reason

    @property
    def is_paused(self) -> bool:
        return self.reason is not None

    def pause(self, reason: str, until: float | None = None) -> bool:
        """Pause (or update the reason); True only for the call that paused it, so one caller says so."""
        with self._condition:
            self._expire()
            first = self._reason is None
            self._reason = reason
            self._until = until
            return first

    def resume(self) -> None:
        with self._condition:
            self._reason = None
            self._until = None
            self._condition.notify_all()

    def wait_while_paused(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block while paused. True when free to go; False when `stop` is set or `timeout` runs out first."""
        with self._condition:
            self._waiting += 1
            try:
                return _wait(self._clock, self._condition, self._free, stop, timeout)
            finally:
                self._waiting -= 1

    def _free(self) -> bool:
        self._expire()
        return self._reason is None

    def _expire(self) -> None:
        if self._until is not None and self._clock.wall() >= self._until:
            self._reason = None
            self._until = None


def _wait(
    clock: Clock,
    condition: threading.Condition,
    ready: Callable[[], bool],
    stop: threading.Event,
    timeout: float | None,
) -> bool:
    """Inside `with condition`: wait until `ready()`; False when `stop` is set or `timeout` passes first.

    Condition.wait cannot also wait on an Event, so the stop switch is looked at every POLL_S.
    """
    deadline = None if timeout is None else clock.monotonic() + timeout
    while not ready():
        if stop.is_set():
            return False
        wait_s = POLL_S
        if deadline is not None:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return False
            wait_s = min(wait_s, remaining)
        clock.wait(condition, wait_s)
    return not stop.is_set()
