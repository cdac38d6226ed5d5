"""The endpoints, with dependencies unset, hung, or real (nats-server and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from monitor_api.app import create_app
from monitor_api.settings import Settings, SettingsError, load_settings

from tests.services import NatsServer, PostgresServer


def client_for(**environ: str) -> TestClient:
    return TestClient(create_app(load_settings(environ)))


def test_healthz_calls_no_dependency() -> None:
    client = client_for(NATS_URL="nats://127.0.0.1:1", CHECK_TIMEOUT_SECONDS="0.2")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unset_dependencies_are_not_configured_and_ready() -> None:
    response = client_for().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {
            "nats": {
                "status": "not_configured",
                "latency_ms": None,
                "error": None,
                "checked_at": None,
            },
            "postgres": {
                "status": "not_configured",
                "latency_ms": None,
                "error": None,
                "checked_at": None,
            },
        },
    }


def test_version_reports_the_build() -> None:
    client = client_for(APP_VERSION="1.4.0", GIT_SHA="0123abc", IMAGE_TAG="v1.4.0")
    assert client.get("/version").json() == {
        "version": "1.4.0",
        "git_sha": "0123abc",
        "image_tag": "v1.4.0",
    }


def test_a_refused_dependency_fails_readiness_with_its_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = client_for(DATABASE_URL=f"postgresql://u@127.0.0.1:{port}/db")
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["postgres"]
    assert check["status"] == "failed" and check["error"]
    assert response.json()["checks"]["nats"]["status"] == "not_configured"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: a hung dependency."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_hung_dependency_costs_at_most_the_timeout(silent_server: int) -> None:
    client = client_for(
        NATS_URL=f"nats://127.0.0.1:{silent_server}",
        DATABASE_URL=f"postgresql://u@127.0.0.1:{silent_server}/db",
        CHECK_TIMEOUT_SECONDS="0.5",
    )
    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    for name in ("nats", "postgres"):
        assert response.json()["checks"][name]["status"] == "failed"
    # Both checks run concurrently, each bounded by 0.5 s; generous margin for a loaded CI box.
    assert elapsed < 3.0


def test_metrics_count_requests_and_checks() -> None:
    client = client_for(DATABASE_URL="postgresql://u@127.0.0.1:1/db", CHECK_TIMEOUT_SECONDS="0.5")
    client.get("/healthz")
    client.get("/readyz")
    client.get("/no-such-page")
    text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",path="/healthz",status="200"} 1.0' in text
    assert 'http_requests_total{method="GET",path="/readyz",status="503"} 1.0' in text
    assert 'http_requests_total{method="GET",path="other",status="404"} 1.0' in text
    assert 'readiness_checks_total{dependency="postgres"} 1.0' in text
    assert 'readiness_check_up{dependency="postgres"} 0.0' in text
    assert "http_request_duration_seconds_bucket" in text


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    yield server
    server.stop()


def readiness(settings: Settings) -> tuple[int, dict[str, object]]:
    response = TestClient(create_app(settings)).get("/readyz")
    return response.status_code, response.json()["checks"]


def test_readiness_follows_a_real_nats_server_down_and_back(nats_server: NatsServer) -> None:
    settings = replace(load_settings({}), nats_url=nats_server.url, check_timeout=1.0)
    status, checks = readiness(settings)
    assert status == 200 and checks["nats"]["status"] == "ok"  # type: ignore[index]
    nats_server.stop()
    status, checks = readiness(settings)
    assert status == 503 and checks["nats"]["status"] == "failed"  # type: ignore[index]
    nats_server.start()
    status, _ = readiness(settings)
    assert status == 200


def test_readiness_follows_a_real_postgres_down_and_back() -> None:
    server = PostgresServer()
    server.start()
    try:
        settings = replace(load_settings({}), database_url=server.url, check_timeout=2.0)
        status, checks = readiness(settings)
        assert status == 200, checks
        assert checks["postgres"]["status"] == "ok"  # type: ignore[index]
        server.stop()
        status, checks = readiness(settings)
        assert status == 503 and checks["postgres"]["status"] == "failed"  # type: ignore[index]
        server.start()
        assert readiness(settings)[0] == 200
    finally:
        server.stop()
        server.remove()


def series(client: TestClient) -> set[str]:
    """Every metrics series (name and labels), without values or comments."""
    lines = client.get("/metrics").text.splitlines()
    return {line.rsplit(" ", 1)[0] for line in lines if line and not line.startswith("#")}


def test_made_up_methods_and_paths_add_no_series() -> None:
    client = client_for()
    client.request("ZZ0", "/healthz")
    client.request("ZZ0", "/made-up/0")
    series(client)  # the /metrics request itself is a series
    before = series(client)
    for number in range(1, 201):
        client.request(f"ZZ{number}", "/healthz")
        client.request(f"ZZ{number}", f"/made-up/{number}")
    after = series(client)
    assert after == before
    assert not any("ZZ" in line or "made-up" in line for line in after)
    assert 'http_requests_total{method="other",path="/healthz",status="405"}' in after


def test_a_check_result_says_when_it_ran() -> None:
    client = client_for(DATABASE_URL="postgresql://u@127.0.0.1:1/db", CHECK_TIMEOUT_SECONDS="0.5")
    checked_at = client.get("/readyz").json()["checks"]["postgres"]["checked_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", checked_at)


def flood(app: FastAPI, calls: int) -> list[httpx.Response]:
    """*calls* concurrent ``/readyz`` requests against the app, in one event loop."""

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://monitor") as client:
            return list(await asyncio.gather(*(client.get("/readyz") for _ in range(calls))))

    return asyncio.run(all_at_once())


INTERVAL = 5.0  # long enough for a flood of 100 calls on a busy 2-core machine


def test_a_flood_of_readiness_calls_costs_one_check_per_interval(
    nats_server: NatsServer,
) -> None:
    postgres = PostgresServer()
    postgres.start()
    try:
        settings = replace(
            load_settings({}),
            nats_url=nats_server.url,
            database_url=postgres.url,
            check_timeout=2.0,
            readiness_cache_seconds=INTERVAL,
        )
        app = create_app(settings)
        nats_before, postgres_before = (
            nats_server.connections_accepted(),
            postgres.connections_received(),
        )
        started = time.monotonic()
        responses = flood(app, 100)
        took = time.monotonic() - started
        assert took < INTERVAL, f"the flood took {took:.1f}s, longer than the interval"
        assert {response.status_code for response in responses} == {200}
        assert len({r.json()["checks"]["nats"]["checked_at"] for r in responses}) == 1
        time.sleep(0.5)  # the server logs a connection as it arrives; let the log catch up
        assert nats_server.connections_accepted() - nats_before == 1
        assert postgres.connections_received() - postgres_before == 1
        # The interval has passed: the next flood runs exactly one more check.
        time.sleep(max(0.0, started + took + INTERVAL + 0.1 - time.monotonic()))
        assert {response.status_code for response in flood(app, 100)} == {200}
        time.sleep(0.5)
        assert nats_server.connections_accepted() - nats_before == 2
        assert postgres.connections_received() - postgres_before == 2
    finally:
        postgres.stop()
        postgres.remove()


def test_the_cache_interval_is_validated_and_zero_means_every_call() -> None:
    assert load_settings({"READINESS_CACHE_SECONDS": "0"}).readiness_cache_seconds == 0
    for bad in ("-1", "31", "nan", "soon"):
        with pytest.raises(SettingsError, match="READINESS_CACHE_SECONDS"):
            load_settings({"READINESS_CACHE_SECONDS": bad})
