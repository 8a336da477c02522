"""Faults injected into the sandbox, end to end through the service: what each one costs, and how it ends.

Every test runs the real service against the sandbox over loopback, built by `tuned` from parts some of which
the test chose: a fake clock that drives the production retry policy's backoff in milliseconds, a limiter that
records its ceiling.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog

from remixd.clock import Clock
from remixd.config.load import load_config
from remixd.daemon.parts import build_parts
from remixd.daemon.service import Mode, Service
from remixd.journal.sqlite import JOURNAL_NAME, SqliteJournal
from remixd.sandbox.options import SandboxOptions
from remixd.sandbox.server import SandboxServer
from remixd.work.retry import UNKNOWN_OUTCOME_HINT, InflightLimiter, Pause, RetryPolicy
from tests.helpers import TEST_KEY, FakeClock, make_image, sidecars, wait_for, write_config

ENV = {"IDEOGRAM_API_KEY": TEST_KEY}
POLICY = RetryPolicy()  # what build_parts uses: the fake clock, not a shorter backoff, makes its waits quick
IDLE_S = 0.05  # real time a wait gives the service's threads before the fake clock moves (helpers.FakeClock)


class RecordingLimiter(InflightLimiter):
    """The real limiter, keeping every ceiling it moved to."""

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum)
        self.ceilings = [maximum]

    def on_inflight_limit(self) -> None:
        super().on_inflight_limit()
        self.ceilings.append(self.ceiling)

    def on_success(self) -> None:
        before = self.ceiling
        super().on_success()
        if self.ceiling != before:
            self.ceilings.append(self.ceiling)


class Shifted(Clock):
    """Real time, with the wall clock moved on by `offset_s` (tomorrow, for the budget's day)."""

    offset_s = 0.0

    def wall(self) -> float:
        return super().wall() + self.offset_s

    def utcnow(self) -> datetime:
        return super().utcnow() + timedelta(seconds=self.offset_s)


def tuned(
    config_path: Path,
    *,
    mode: Mode = "once",
    clock: Clock | None = None,
    environ: dict[str, str] | None = None,
    session: requests.Session | None = None,
) -> Service:
    """The service with the parts these tests change: a fake clock unless the test brings a clock (a storm of
    retries with the production policy takes minutes of its time and milliseconds of the test's), and a
    limiter that records its ceiling."""
    config = load_config(config_path)
    parts = build_parts(
        config,
        environ=environ or ENV,
        session=session,
        clock=clock or FakeClock(idle_s=IDLE_S),
        limiter=RecordingLimiter(config.api.max_in_flight_images),
    )
    return Service(parts, mode=mode)


@pytest.fixture
def running() -> Iterator[Callable[[Service], Service]]:
    """Start a `run`-mode service on a thread; always stopped (twice: paused jobs do not hold it) at the end."""
    started: list[tuple[Service, threading.Thread]] = []

    def start(service: Service) -> Service:
        thread = threading.Thread(target=service.run, name="test-service")
        thread.start()
        started.append((service, thread))
        wait_for(service.ready.is_set, message="the service to start")
        return service

    yield start
    for service, thread in started:
        service.request_stop()
        service.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive()


def remixd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remixd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
        check=False,
    )


def error_file(tmp_path: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((tmp_path / "failed" / f"{name}.error.json").read_text())
    return document


def spent_today(tmp_path: Path, service: Service) -> tuple[int, float]:
    """What the journal counts as spent on the service's day (its clock's, fake or not)."""
    journal = SqliteJournal(tmp_path / "state" / JOURNAL_NAME)
    try:
        spend = journal.spent(service.clock.utcnow().date())
    finally:
        journal.close()
    return spend.images, spend.usd


def drop(tmp_path: Path, count: int) -> list[str]:
    names = [f"in-{number:02d}.jpg" for number in range(count)]
    for number, name in enumerate(names):
        make_image(tmp_path / "inbox" / name, color=(number * 9 % 256, 90, 200 - number))
    return names


# -- 429: the organisation's in-flight limit ---------------------------------------------------------------


def test_a_429_storm_halves_the_ceiling_then_it_creeps_back_and_every_input_is_done(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url, api={"max_in_flight_images": 4})
    drop(tmp_path, 12)
    sandbox.set_faults(rate_limit_next=8, latency_s=0.05)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 12}
    statuses = [r.status for r in sandbox.received]
    assert statuses.count(429) == 8 and statuses.count(200) == 12
    assert sandbox.ledger.requests == 12  # a 429 never ran and was never billed
    ceilings = service.limiter.ceilings  # type: ignore[attr-defined]
    assert min(ceilings) == 1  # halved on each inflight_limit, never below one request
    assert ceilings.index(1) < len(ceilings) - 1  # ... and raised again afterwards, one place at a time
    after = ceilings[ceilings.index(1) :]
    assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(after))
    assert service.limiter.ceiling == 4


def test_a_long_shared_limit_storm_slows_an_input_down_instead_of_failing_it(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """429 inflight_limit means other clients hold the organisation's places: nothing ran, nothing was
    billed. Such answers count against the retry time bound only, not the attempts (6 here)."""
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(rate_limit_next=POLICY.max_attempts + 3)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 1}
    assert [r.status for r in sandbox.received] == [429] * (POLICY.max_attempts + 3) + [200]


def test_retry_after_on_a_429_is_honoured(tmp_path: Path) -> None:
    """The sandbox keeps the same fake clock, so the time between its two answers is the time remixd waited."""
    retry_after = 120  # the policy's own first backoff is at most 1.25 s: only Retry-After waits this long
    clock = FakeClock(idle_s=IDLE_S)
    options = SandboxOptions(api_keys=frozenset({TEST_KEY}), inflight_retry_after_s=retry_after)
    with SandboxServer(options, clock=clock) as sandbox:
        config = write_config(tmp_path, sandbox.base_url)
        drop(tmp_path, 1)
        sandbox.set_faults(rate_limit_next=1)

        service = tuned(config, clock=clock)
        service.run()

        assert service.outcomes == {"done": 1}
        limited, answered = sandbox.received
        assert (limited.status, answered.status) == (429, 200)
        assert answered.at - limited.at >= retry_after


# -- 5xx ---------------------------------------------------------------------------------------------------


def test_5xx_before_the_work_is_retried(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(fail_before_next=2, fail_before_status=503)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 1}
    assert [r.status for r in sandbox.received] == [503, 503, 200]
    assert sandbox.ledger.requests == 1
    assert spent_today(tmp_path, service) == (1, 0.08)


def test_5xx_retries_are_bounded_by_attempts(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(fail_before_next=POLICY.max_attempts + 5)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"failed": 1}
    assert [r.status for r in sandbox.received] == [503] * POLICY.max_attempts
    error = error_file(tmp_path, "in-00.jpg")
    assert error["error"]["http_status"] == 503 and error["attempts"] == POLICY.max_attempts
    assert sandbox.ledger.requests == 0


def test_500_after_the_work_is_retried_and_recorded_as_readme_says(tmp_path: Path, sandbox: SandboxServer) -> None:
    """README ("Retries never pay twice"): 5xx is retried because Ideogram bills no failed generation
    (reference §4, DOC-ERR: "A generation that fails is not billed"). remixd therefore records one paid
    answer: the sidecar and the day's spend show one image. The sandbox's `fail_after_next` bills the failed
    attempt anyway, to show what the retry would cost if the reference were wrong: one request more."""
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(fail_after_next=1)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 1}
    assert [r.status for r in sandbox.received] == [500, 200]
    assert sandbox.ledger.requests == 2  # the sandbox's worst case, not Ideogram's documented behaviour
    assert spent_today(tmp_path, service) == (1, 0.08)  # the journal rounds to micro-dollars
    (document,) = sidecars(tmp_path / "outbox")
    assert document["cost_usd"] == pytest.approx(0.08)


# -- connections, resets, downloads, expired links ---------------------------------------------------------


def test_a_refused_connection_is_retried_until_the_api_is_back(
    tmp_path: Path, running: Callable[[Service], Service]
) -> None:
    """Nothing left the machine, so resending cannot pay twice: retried with backoff until it answers."""
    with SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY}))) as probe:
        port = probe.port  # a port that was free a moment ago, and is closed now
    config = write_config(tmp_path, f"http://127.0.0.1:{port}")
    with structlog.testing.capture_logs() as logs:
        running(tuned(config, mode="run"))
        drop(tmp_path, 1)
        wait_for(lambda: any(e["event"] == "remixd.api.retry" for e in logs), message="the first retry")
        with SandboxServer(SandboxOptions(api_keys=frozenset({TEST_KEY})), port=port) as sandbox:
            wait_for(lambda: (tmp_path / "done/in-00.jpg").is_file(), message="the input once the API is back")
            assert [r.status for r in sandbox.received] == [200]
    retry = next(e for e in logs if e["event"] == "remixd.api.retry")
    assert "could not connect" in retry["error"]


def test_a_reset_after_the_work_fails_with_an_unknown_outcome_and_retry_sends_it_again(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(reset_after_next=1)

    first = tuned(config)
    first.run()

    assert first.outcomes == {"failed": 1}
    assert len(sandbox.received) == 1  # not resent behind the user's back
    error = error_file(tmp_path, "in-00.jpg")
    assert "outcome is unknown" in error["error"]["message"]
    assert error["error"]["hint"] == UNKNOWN_OUTCOME_HINT
    retried = remixd("retry", "-c", str(config))
    assert retried.returncode == 0, retried.stderr
    assert "retrying in-00.jpg" in retried.stdout
    assert (tmp_path / "inbox/in-00.jpg").is_file() and not (tmp_path / "failed/in-00.jpg.error.json").exists()

    second = tuned(config)
    second.run()

    assert second.outcomes == {"done": 1}
    assert [r.status for r in sandbox.received] == [None, 200]
    assert (tmp_path / "outbox/in-00.poster.1.png").is_file()


def test_truncated_downloads_are_retried_and_complete(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(truncate_downloads_next=2)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 1}
    assert [d.truncated for d in sandbox.downloads] == [True, True, False]
    assert len(sandbox.received) == 1  # a download is retried, the request never
    (document,) = sidecars(tmp_path / "outbox")
    import hashlib

    image = (tmp_path / "outbox" / document["image"]["file"]).read_bytes()
    assert hashlib.sha256(image).hexdigest() == document["image"]["sha256"]


class ExpiringSession(requests.Session):
    """Moves the sandbox clock a day and a half on before the first download: the links have expired."""

    def __init__(self, sandbox: SandboxServer) -> None:
        super().__init__()
        self._sandbox = sandbox
        self._expired = False

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        if not self._expired:
            self._sandbox.advance_clock(36 * 3600)
            self._expired = True
        return super().get(url, **kwargs)


def test_expired_links_fail_with_the_reason_and_retry_sends_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)

    first = tuned(config, session=ExpiringSession(sandbox))
    first.run()

    assert first.outcomes == {"failed": 1}
    error = error_file(tmp_path, "in-00.jpg")
    assert error["error"]["kind"] == "url_expired" and error["error"]["http_status"] == 410
    assert "expired" in error["error"]["hint"] and "remixd retry" in error["error"]["hint"]
    assert len(sandbox.received) == 1  # remixd never re-buys on its own
    assert remixd("retry", "-c", str(config)).returncode == 0

    second = tuned(config)
    second.run()

    assert second.outcomes == {"done": 1}
    assert len(sandbox.received) == 2 and sandbox.ledger.requests == 2  # the retry paid again, as README says


# -- answers that end the input at once ----------------------------------------------------------------------


def test_unsafe_results_get_sidecars_and_the_input_is_done(tmp_path: Path, sandbox: SandboxServer) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    drop(tmp_path, 1)
    sandbox.set_faults(unsafe_next=1)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"done": 1}
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["in-00.poster.1.json"]
    (document,) = sidecars(tmp_path / "outbox")
    assert document["image"] is None and document["result"]["is_image_safe"] is False
    assert document["cost_usd"] == pytest.approx(0.08)  # withheld images are billed


def test_a_422_fails_at_once_with_the_apis_message(tmp_path: Path, sandbox: SandboxServer) -> None:
    rules = [{"name": "risky", "match": ["*.jpg"], "request": {"prompt": "FORBIDDEN_422 {stem}"}}]
    config = write_config(tmp_path, sandbox.base_url, rules=rules)
    drop(tmp_path, 1)

    service = tuned(config)
    service.run()

    assert service.outcomes == {"failed": 1}
    assert [r.status for r in sandbox.received] == [422]
    error = error_file(tmp_path, "in-00.jpg")
    assert error["error"]["http_status"] == 422 and error["attempts"] == 1
    assert error["error"]["response"] == {
        "error": "Prompt provided failed safety check due to the inclusion of prohibited content."
    }
    assert error["error"]["response"]["error"] in error["error"]["message"]


# -- pauses: a wrong key, the budget -------------------------------------------------------------------------


def test_a_wrong_key_pauses_says_so_once_and_resumes_when_the_key_works(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    config = write_config(tmp_path, sandbox.base_url)
    wrong = "wrong-key-4b7d21e9"
    with structlog.testing.capture_logs() as logs:
        service = running(tuned(config, mode="run", environ={"IDEOGRAM_API_KEY": wrong}))
        drop(tmp_path, 2)
        wait_for(lambda: service.gates.auth.is_paused, message="the auth pause")
        # The housekeeping writes status.json (what `remixd status` shows) every few seconds.
        status = tmp_path / "state/status.json"

        def paused_in_status() -> bool:
            service.intake.wake()
            return bool(status.exists() and json.loads(status.read_text())["paused"])

        wait_for(paused_in_status, timeout=10, message="the pause in status.json")
        assert "refused the key" in json.loads(status.read_text())["paused"][0]
        assert (tmp_path / "inbox/in-00.jpg").is_file() and not list((tmp_path / "failed").iterdir())
        # The key starts working (the account was fixed): the sandbox now accepts it, too.
        sandbox._sandbox.options = sandbox._sandbox.options.replace(api_keys=frozenset({TEST_KEY, wrong}))

        def finished() -> bool:
            service.intake.wake()  # the loop probes the key between steps
            return (tmp_path / "done/in-00.jpg").is_file() and (tmp_path / "done/in-01.jpg").is_file()

        wait_for(finished, timeout=20, message="the inputs after the key works")
    assert not service.gates.auth.is_paused
    assert [e["event"] for e in logs].count("remixd.api.paused") == 1
    assert any(e["event"] == "remixd.api.resumed" for e in logs)
    assert service.outcomes["failed"] == 0
    assert wrong not in json.dumps(logs, default=str)


def test_the_daily_image_budget_pauses_until_the_next_utc_day(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    config = write_config(
        tmp_path, sandbox.base_url, extra={"budget": {"max_images_per_day": 2}}, api={"max_in_flight_images": 1}
    )
    clock = Shifted()
    today = clock.utcnow()
    service = running(tuned(config, mode="run", clock=clock))
    drop(tmp_path, 3)

    def paused_in_status() -> bool:
        service.intake.wake()
        status = tmp_path / "state/status.json"
        return bool(status.exists() and json.loads(status.read_text())["paused"])

    wait_for(paused_in_status, timeout=10, message="the budget pause in status.json")
    # The third input was refused while the first two were still on their way: let them land.
    wait_for(lambda: len(list((tmp_path / "done").iterdir())) == 2, message="the two inputs within budget")
    report = remixd("status", "-c", str(config))
    assert report.returncode == 0, report.stderr
    assert "PAUSED: the daily budget of 2 images is spent" in report.stdout
    assert "submissions resume at " + (today + timedelta(days=1)).date().isoformat() in report.stdout
    assert "spent today (UTC): 2 images, $0.16" in report.stdout
    assert len(sandbox.received) == 2 and len(list((tmp_path / "inbox").iterdir())) == 1

    clock.offset_s = (timedelta(days=1) - timedelta(hours=today.hour, minutes=today.minute - 1)).total_seconds()
    wait_for(lambda: len(list((tmp_path / "done").iterdir())) == 3, message="the next day's submission")
    assert not service.gates.budget_pause.is_paused
    assert len(sandbox.received) == 3
    for document in sidecars(tmp_path / "outbox"):
        assert document["cost_usd"] == pytest.approx(0.08)


# -- the output folder -------------------------------------------------------------------------------------


def test_an_unusable_output_folder_makes_the_job_wait_until_it_is_fixed(
    tmp_path: Path, sandbox: SandboxServer, running: Callable[[Service], Service]
) -> None:
    """Tests run as root, whom permissions do not stop: a file where the output folder should be does."""
    config = write_config(tmp_path, sandbox.base_url)
    (tmp_path / "outbox").write_text("not a folder")
    with structlog.testing.capture_logs() as logs:
        service = running(tuned(config, mode="run"))
        drop(tmp_path, 1)
        wait_for(lambda: any(e["event"] == "remixd.output.blocked" for e in logs), message="the blocked log line")
        blocked = next(e for e in logs if e["event"] == "remixd.output.blocked")
        assert blocked["hint"] == f"{tmp_path / 'outbox'} is a file where remixd needs a folder; move it aside"
        assert (tmp_path / "inbox/in-00.jpg").is_file()  # untouched while it waits
        assert not list((tmp_path / "failed").iterdir()) and not list((tmp_path / "done").iterdir())
        assert len(sandbox.received) == 1  # paid once; the answer is kept while the folder is fixed

        (tmp_path / "outbox").unlink()
        (tmp_path / "outbox").mkdir()
        # The outcome is counted after the input reached done/: wait for the count, then look at the disk.
        wait_for(lambda: service.outcomes["done"] == 1, message="the job after the fix")
    assert (tmp_path / "done/in-00.jpg").is_file()
    assert (tmp_path / "outbox/in-00.poster.1.png").is_file()
    assert len(sandbox.received) == 1
    assert any(e["event"] in ("remixd.folder.unusable", "remixd.folder.not_writable") for e in logs)


def test_only_the_call_that_pauses_is_told_to_say_so() -> None:
    """Several workers hear the same 401 at once; the log says it once (the pause returns who paused)."""
    pause = Pause()
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(pause.pause("the key was refused"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(results) == [False] * 7 + [True]
    pause.resume()
    assert pause.pause("again") is True
