"""Prometheus metrics, /healthz and /readyz on `metrics.listen` (loopback by default; off unless configured).

The API's latency and errors are observed by wrapping the client, so no stage knows about metrics; the rest is
read from the running service at scrape time (a custom collector), so nothing is counted twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from remixd import httpd
from remixd.clock import Clock
from remixd.config.model import MetricsConfig
from remixd.errors import ApiError, RemixdError
from remixd.ideogram.client import RemixApi
from remixd.ideogram.multipart import Upload
from remixd.ideogram.requests import RemixRequest
from remixd.ideogram.responses import GenerationState, PriceQuote, RemixResponse
from remixd.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180)


def serve(
    settings: MetricsConfig,
    api_metrics: ApiMetrics,
    snapshot: Callable[[], Snapshot],
    *,
    healthy: Callable[[], bool],
    ready: Callable[[], bool],
) -> MetricsServer:
    """Start serving on `settings.listen`: the API's metrics (observed by wrapping each client the builder
    makes) and the service's, read through `snapshot` at scrape time."""
    registry = api_metrics.registry
    registry.register(ServiceCollector(snapshot))
    try:
        server = MetricsServer(settings.host, settings.port, registry, healthy=healthy, ready=ready)
    except OSError as error:
        raise RemixdError(
            f"metrics cannot listen on {settings.listen}: {error.strerror}",
            "choose a free port in metrics.listen, or remove the metrics section",
        ) from None
    server.start()
    log.info("remixd.metrics.listening", listen=f"{settings.host}:{server.port}")
    return server


@dataclass(frozen=True)
class Snapshot:
    """What the service knows at scrape time."""

    discovered: dict[str, int]  # inbox -> files claimed
    missed_by_events: int
    outcomes: dict[str, int]
    queue_depth: int
    oldest_pending_age_s: float
    in_flight_images: int
    ceiling: int
    spend_usd_today: float
    spend_images_today: int
    paused: int
    state_free_bytes: int | None  # None: the state fs could not be asked


class ServiceCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        state = self._snapshot()
        discovered = CounterMetricFamily("remixd_files_discovered", "Files claimed from an inbox", labels=["inbox"])
        for inbox, count in sorted(state.discovered.items()):
            discovered.add_metric([inbox], count)
        yield discovered
        yield CounterMetricFamily(
            "remixd_rescan_found", "Files a rescan found that no event had announced", value=state.missed_by_events
        )
        outcomes = CounterMetricFamily("remixd_inputs", "Inputs finished, by outcome", labels=["outcome"])
        for outcome, count in sorted(state.outcomes.items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        yield GaugeMetricFamily("remixd_queue_depth", "Claimed inputs waiting for a worker", value=state.queue_depth)
        yield GaugeMetricFamily(
            "remixd_oldest_pending_age_seconds", "Age of the oldest unfinished input", value=state.oldest_pending_age_s
        )
        yield GaugeMetricFamily(
            "remixd_in_flight_images", "Images in progress at the API", value=state.in_flight_images
        )
        yield GaugeMetricFamily(
            "remixd_in_flight_ceiling", "remixd's own in-flight ceiling (AIMD)", value=state.ceiling
        )
        yield GaugeMetricFamily("remixd_spend_usd_today", "USD billed today (UTC)", value=state.spend_usd_today)
        yield GaugeMetricFamily(
            "remixd_spend_images_today", "Images billed today (UTC)", value=state.spend_images_today
        )
        yield GaugeMetricFamily("remixd_paused", "1 while submissions are paused", value=state.paused)
        if state.state_free_bytes is not None:
            yield GaugeMetricFamily(
                "remixd_state_free_bytes",
                "Free bytes on the state folder's file system (submissions pause below journal.min_free_mb)",
                value=state.state_free_bytes,
            )


class ApiMetrics:
    """The API's latency and errors; registered once, shared by every client a reload builds."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "remixd_api_latency_seconds", "API call duration", ["call"], buckets=LATENCY_BUCKETS, registry=registry
        )
        self.errors = Counter(
            "remixd_api_errors",
            "API errors, by call and HTTP status (none: no answer)",
            ["call", "status"],
            registry=registry,
        )


class MeteredClient:
    """The client, observed: every remix and download timed, every error counted by status."""

    def __init__(self, client: RemixApi, observed: ApiMetrics, clock: Clock) -> None:
        self._clock = clock
        self._client = client
        self._metrics = observed

    def endpoint_url(self, request: RemixRequest) -> str:
        return self._client.endpoint_url(request)

    def check_key(self) -> None:
        self._client.check_key()

    def account(self) -> str:
        return self._client.account()

    def upload(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> Upload:
        return self._client.upload(request, image, filename, content_type)

    def remix(self, request: RemixRequest, upload: Upload, *, rule: str | None = None) -> RemixResponse:
        return self._observe("remix", lambda: self._client.remix(request, upload, rule=rule))

    def generation(self, generation_id: str) -> GenerationState:
        return self._observe("poll", lambda: self._client.generation(generation_id))

    def quote(self, request: RemixRequest, image: bytes, filename: str, content_type: str) -> PriceQuote:
        return self._observe("quote", lambda: self._client.quote(request, image, filename, content_type))

    def download(self, url: str) -> bytes:
        return self._observe("download", lambda: self._client.download(url))

    def _observe(self, call: str, action: Callable[[], T]) -> T:
        started = self._clock.monotonic()
        try:
            return action()
        except ApiError as error:
            self._metrics.errors.labels(call, str(error.http_status or "none")).inc()
            raise
        finally:
            self._metrics.latency.labels(call).observe(self._clock.monotonic() - started)


class MetricsServer:
    """/metrics, /healthz (the daemon's threads are alive) and /readyz (READY=1 was sent) on one port."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, healthy: Callable[[], bool], ready: Callable[[], bool]
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path in ("/healthz", "/readyz"):
                    fine = healthy() if self.path == "/healthz" else ready()
                    self._answer(200 if fine else 503, b"ok\n" if fine else b"not ok\n", "text/plain")
                else:
                    self._answer(404, b"not found\n", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # scrapes every few seconds would drown the journal

        self._httpd = _Server((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="remixd-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Server(httpd.Server):
    client_gone = "remixd.metrics.client_gone"  # a scraper that gave up mid-request
