"""Readiness checks of the real dependencies, each bounded by a short timeout.

Every probe opens a fresh connection and closes it: readiness must notice a dependency that
went away, and a hung dependency must cost at most the timeout, never hang the probe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg
import nats

Status = Literal["ok", "failed", "not_configured"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    latency_ms: float | None
    error: str | None = None
    checked_at: str | None = None  # ISO 8601 UTC, when the check started

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "checked_at": self.checked_at,
        }


async def check_nats(url: str, timeout: float) -> None:
    """Connect, round-trip a PING through ``flush``, disconnect."""
    client = await nats.connect(
        url,
        connect_timeout=timeout,
        allow_reconnect=False,
        max_reconnect_attempts=0,
    )
    try:
        # flush() takes whole seconds; the caller's wait_for enforces the precise bound.
        await client.flush(timeout=max(1, math.ceil(timeout)))
    finally:
        await client.close()


async def check_postgres(url: str, timeout: float) -> None:
    """Connect and run ``SELECT 1``."""
    connection = await asyncpg.connect(dsn=url, timeout=timeout)
    try:
        await connection.fetchval("SELECT 1", timeout=timeout)
    finally:
        await connection.close(timeout=timeout)


async def run_check(
    name: str,
    url: str | None,
    probe: Callable[[str, float], Awaitable[None]],
    timeout: float,
) -> CheckResult:
    if url is None:
        return CheckResult(name, "not_configured", None)
    checked_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.perf_counter()
    error: str | None = None
    try:
        await asyncio.wait_for(probe(url, timeout), timeout=timeout)
    except TimeoutError:
        error = f"no answer within {timeout:g}s"
    except Exception as failure:  # any failure of the dependency is a failed check
        error = f"{type(failure).__name__}: {failure}".strip()
    latency = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, "failed" if error else "ok", latency, error, checked_at)
