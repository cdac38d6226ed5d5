"""Retrying what a registry says is transient, never what it says is final.

Transient: 5xx, 429 (honouring Retry-After), connection reset/refused, timeouts, EOF.
Final: 401, 403, denied, unauthorized, manifest invalid, name unknown: retrying cannot help.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FINAL = re.compile(
    r"\b(401|403)\b|unauthorized|denied|authentication required|manifest invalid"
    r"|name unknown|no basic auth credentials",
    re.IGNORECASE,
)
TRANSIENT = re.compile(
    r"\b(5\d\d|429)\b|toomanyrequests|too many requests|connection reset|connection refused"
    r"|timeout|timed out|\bEOF\b|temporarily unavailable|broken pipe|server misbehaving"
    r"|bad gateway|service unavailable",
    re.IGNORECASE,
)
RETRY_AFTER = re.compile(r"retry-after:?\s*(\d+)", re.IGNORECASE)
MAX_DELAY_SECONDS = 60.0


def is_transient(message: str) -> bool:
    return not FINAL.search(message) and bool(TRANSIENT.search(message))


def delay_for(message: str, attempt: int, base_seconds: float, rng: random.Random) -> float:
    """Retry-After when the registry gave one; else exponential backoff with full jitter."""
    hinted = RETRY_AFTER.search(message)
    if hinted:
        return min(float(hinted.group(1)), MAX_DELAY_SECONDS)
    ceiling = min(base_seconds * 2**attempt, MAX_DELAY_SECONDS)
    return rng.uniform(ceiling / 2, ceiling)


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    base_seconds: float,
    describe: Callable[[BaseException], str],
    on_retry: Callable[[int, float, str], None],
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run *action*; retry a transient failure up to *attempts* times in all, then re-raise."""
    generator = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:
            message = describe(error)
            if attempt == attempts - 1 or not is_transient(message):
                raise
            delay = delay_for(message, attempt, base_seconds, generator)
            on_retry(attempt + 1, delay, message)
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
