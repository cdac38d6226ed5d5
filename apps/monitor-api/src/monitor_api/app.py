"""The FastAPI application: liveness, readiness, version and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from monitor_api.checks import CheckResult, check_nats, check_postgres, run_check
from monitor_api.settings import Settings

KNOWN_PATHS = frozenset({"/healthz", "/readyz", "/version", "/metrics"})


class Metrics:
    """One registry per application, so tests and workers never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, path and status.",
            ("method", "path", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and path.",
            ("method", "path"),
            registry=self.registry,
        )
        self.check_up = Gauge(
            "readiness_check_up",
            "1 when the dependency's last readiness check passed, 0 when it failed.",
            ("dependency",),
            registry=self.registry,
        )
        self.check_latency = Gauge(
            "readiness_check_latency_seconds",
            "Latency of the dependency's last readiness check.",
            ("dependency",),
            registry=self.registry,
        )

    def record_check(self, result: CheckResult) -> None:
        if result.status == "not_configured":
            return
        self.check_up.labels(result.name).set(1 if result.status == "ok" else 0)
        if result.latency_ms is not None:
            self.check_latency.labels(result.name).set(result.latency_ms / 1000)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="monitor-api", version=settings.build.version, docs_url=None)
    metrics = Metrics()

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Unknown paths share one label, so a scanner cannot blow up the series count.
        path = request.url.path if request.url.path in KNOWN_PATHS else "other"
        started = time.perf_counter()
        response = await call_next(request)
        metrics.latency.labels(request.method, path).observe(time.perf_counter() - started)
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. No dependency is called."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: every configured dependency answers within the timeout."""
        results = await asyncio.gather(
            run_check("nats", settings.nats_url, check_nats, settings.check_timeout),
            run_check("postgres", settings.database_url, check_postgres, settings.check_timeout),
        )
        for result in results:
            metrics.record_check(result)
        ready = all(result.status != "failed" for result in results)
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": {result.name: result.as_dict() for result in results},
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/version")
    async def version() -> dict[str, str]:
        """Which build is running: baked in at build time, overridable by environment."""
        build = settings.build
        return {"version": build.version, "git_sha": build.git_sha, "image_tag": build.image_tag}

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
