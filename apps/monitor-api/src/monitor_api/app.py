"""The FastAPI application: liveness, readiness, version and metrics.

Two promises to whoever can reach the service: no request, however made up, adds a metrics
series (methods outside a known set and paths outside the routes share one label each), and
no flood of ``/readyz`` calls costs the dependencies more than one check per interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal

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
from pydantic import BaseModel

from monitor_api.checks import CheckResult, check_nats, check_postgres, run_check
from monitor_api.settings import Settings

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


class Health(BaseModel):
    status: Literal["ok"]


class CheckReport(BaseModel):
    status: Literal["ok", "failed", "not_configured"]
    latency_ms: float | None
    error: str | None
    checked_at: str | None  # ISO 8601, UTC; None when not configured


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckReport]


class VersionInfo(BaseModel):
    version: str
    git_sha: str
    image_tag: str


class Metrics:
    """One registry per application, so tests and workers never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route and status.",
            ("method", "path", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route.",
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
        self.checks = Counter(
            "readiness_checks_total",
            "Dependency checks run (cached /readyz answers run none).",
            ("dependency",),
            registry=self.registry,
        )

    def record_check(self, result: CheckResult) -> None:
        if result.status == "not_configured":
            return
        self.checks.labels(result.name).inc()
        self.check_up.labels(result.name).set(1 if result.status == "ok" else 0)
        if result.latency_ms is not None:
            self.check_latency.labels(result.name).set(result.latency_ms / 1000)


def method_label(method: str) -> str:
    """The method as a label: made-up methods share one series."""
    return method if method in KNOWN_METHODS else OTHER


def route_label(request: Request) -> str:
    """The route template that answered (``/items/{id}``), or ``other`` when none matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else OTHER


class CachedReadiness:
    """The last readiness results, reused for ``interval`` seconds; one check at a time.

    Callers that arrive while a check runs wait for that check instead of starting their own,
    so a flood of probes costs each dependency at most one connection per interval.
    """

    def __init__(
        self,
        check: Callable[[], Awaitable[tuple[CheckResult, ...]]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._interval = interval
        self._clock = clock
        self._results: tuple[CheckResult, ...] | None = None
        self._checked_at = 0.0
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _fresh(self) -> tuple[CheckResult, ...] | None:
        if self._results is not None and self._clock() - self._checked_at < self._interval:
            return self._results
        return None

    def _lock(self) -> asyncio.Lock:
        # A lock belongs to one event loop; test clients may run each request in a new one.
        loop = asyncio.get_running_loop()
        if loop not in self._locks:
            self._locks = {loop: asyncio.Lock()}
        return self._locks[loop]

    async def results(self) -> tuple[tuple[CheckResult, ...], bool]:
        """The results and whether this call ran the checks."""
        cached = self._fresh()
        if cached is not None:
            return cached, False
        async with self._lock():
            cached = self._fresh()
            if cached is not None:
                return cached, False
            self._results = await self._check()
            self._checked_at = self._clock()
            return self._results, True


def create_app(settings: Settings) -> FastAPI:
    # No /docs, no /redoc: both load scripts from a CDN. /openapi.json describes the service.
    app = FastAPI(
        title="monitor-api", version=settings.build.version, docs_url=None, redoc_url=None
    )
    metrics = Metrics()

    async def check_dependencies() -> tuple[CheckResult, ...]:
        return tuple(
            await asyncio.gather(
                run_check("nats", settings.nats_url, check_nats, settings.check_timeout),
                run_check(
                    "postgres", settings.database_url, check_postgres, settings.check_timeout
                ),
            )
        )

    readiness = CachedReadiness(check_dependencies, settings.readiness_cache_seconds)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        method, path = method_label(request.method), route_label(request)
        metrics.latency.labels(method, path).observe(time.perf_counter() - started)
        metrics.requests.labels(method, path, str(response.status_code)).inc()
        return response

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Liveness: the process answers. No dependency is called."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A configured dependency failed"}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: every configured dependency answered within the timeout.

        Results are reused for ``READINESS_CACHE_SECONDS``; ``checked_at`` says when each ran.
        """
        results, ran = await readiness.results()
        if ran:
            for result in results:
                metrics.record_check(result)
        ready = all(result.status != "failed" for result in results)
        body = Readiness(
            status="ready" if ready else "not_ready",
            checks={r.name: CheckReport.model_validate(r.as_dict()) for r in results},
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/version", response_model=VersionInfo)
    async def version() -> VersionInfo:
        """Which build is running: baked in at build time, overridable by environment."""
        build = settings.build
        return VersionInfo(version=build.version, git_sha=build.git_sha, image_tag=build.image_tag)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
