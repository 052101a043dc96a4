"""Prometheus metrics and one structured log line per request, with a request id.

HTTP traffic is counted as it passes; what the registry holds (clips, jobs, deployments,
stage durations) and the GPU's load are read when Prometheus scrapes, so every process
that writes the registry (the API, the workers) is reflected without shared state.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waketrain.jobs.telemetry import gpu_telemetry
from waketrain.store.registry import Registry
from waketrain.store.stats import registry_stats

log = structlog.get_logger("waketrain.http")
REQUEST_ID_HEADER = "x-request-id"
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # echoed into logs: keep it tame
UPLOAD_ROUTE = "/datasets/{dataset_id}/recordings"
QUIET_PATHS = ("/healthz", "/metrics")  # polled by machines: logged at debug only


class RegistryCollector:
    """Gauges of the registry's contents, read at scrape time."""

    def __init__(self, get_registry: Callable[[], Registry | None]) -> None:
        self._get_registry = get_registry

    def collect(self) -> Iterator[Metric]:
        registry = self._get_registry()
        if registry is None:  # scraped before start-up finished
            return
        stats = registry_stats(registry)
        clips = GaugeMetricFamily(
            "waketrain_dataset_clips",
            "Active clips per dataset and label.",
            labels=["dataset", "label"],
        )
        for (dataset, label), n in sorted(stats.clips.items()):
            clips.add_metric([dataset, label], n)
        jobs = GaugeMetricFamily("waketrain_jobs", "Training jobs by status.", labels=["status"])
        for status, n in sorted(stats.jobs.items()):
            jobs.add_metric([status], n)
        deploys = CounterMetricFamily(
            "waketrain_deployments", "Deployments to the board by outcome.", labels=["status"]
        )
        for status, n in sorted(stats.deployments.items()):
            deploys.add_metric([status], n)
        stages = GaugeMetricFamily(
            "waketrain_job_stage_seconds_sum",
            "Seconds spent in each stage, summed over succeeded jobs.",
            labels=["stage"],
        )
        stage_jobs = GaugeMetricFamily(
            "waketrain_job_stage_seconds_count", "Succeeded jobs timed per stage.", labels=["stage"]
        )
        for stage, (seconds, count) in sorted(stats.stage_seconds.items()):
            stages.add_metric([stage], seconds)
            stage_jobs.add_metric([stage], count)
        yield from (clips, jobs, deploys, stages, stage_jobs)
        gpu = gpu_telemetry("cuda")
        if gpu.get("available"):
            utilisation = GaugeMetricFamily(
                "waketrain_gpu_utilization_percent", f"GPU 0 load ({gpu['source']})."
            )
            utilisation.add_metric([], float(gpu["utilization_percent"]))
            yield utilisation


class ServiceMetrics:
    """The app's own metrics registry (one per app, so test apps never collide)."""

    def __init__(self, get_registry: Callable[[], Registry | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "waketrain_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "waketrain_http_request_duration_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "waketrain_uploads",
            "Recording uploads by outcome (stored or refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(RegistryCollector(get_registry))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestObserver:
    """ASGI middleware: request id, request metrics, and one log line per request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if VALID_REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        status = 500  # if the app fails before answering
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, observed_send)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        if method == "POST" and route == UPLOAD_ROUTE:
            self.metrics.uploads.labels("stored" if status == 201 else "refused").inc()
        principal = scope.get("state", {}).get("principal")
        emit = log.debug if scope["path"] in QUIET_PATHS else log.info
        emit(
            "request",
            method=method,
            path=scope["path"],  # never the query string: it may carry a token
            route=route,
            status=status,
            ms=round(seconds * 1000, 1),
            user=getattr(principal, "username", None),
        )
