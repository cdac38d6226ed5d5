"""Input validation that runs before any command: each failure names the value and the rule."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aegis_delivery.errors import InputError

# Docker's tag grammar: https://docs.docker.com/reference/cli/docker/image/tag/
_DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
PLATFORM_PATTERN = re.compile(r"^linux/(amd64|arm64|arm/v7|arm/v6|ppc64le|s390x|386|riscv64)$")


def docker_tag(value: str, *, what: str = "tag") -> str:
    """A valid Docker image tag, or an error that states the grammar."""
    if not _DOCKER_TAG.match(value):
        raise InputError(
            f"invalid {what} {value!r}: a Docker tag is 1 to 128 characters of letters, digits, "
            "'_', '.' and '-', and does not start with '.' or '-'"
        )
    return value


def positive_revision(value: str | int) -> int:
    """A Helm revision number: a positive integer (``--revision 3``)."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"invalid revision {value!r}: expected a positive integer like 3")
    return int(text)


def choice(value: str, allowed: Iterable[str], *, what: str) -> str:
    """One of a known set, or an error that lists the set."""
    options = sorted(allowed)
    if value not in options:
        raise InputError(f"unknown {what} {value!r}: expected one of {', '.join(options)}")
    return value


def platforms(value: str) -> tuple[str, ...]:
    """A comma-separated platform list like ``linux/amd64,linux/arm64``."""
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise InputError("no platform given: expected a list like linux/amd64,linux/arm64")
    for item in items:
        if not PLATFORM_PATTERN.match(item):
            raise InputError(
                f"unknown platform {item!r}: expected linux/amd64, linux/arm64, linux/arm/v7, ..."
            )
    return items


def non_empty(value: str | None, *, what: str, hint: str) -> str:
    """A required text (a reason, a secret): missing or blank is an error with *hint*."""
    if value is None or not value.strip():
        raise InputError(f"{what} is required: {hint}")
    return value.strip()
