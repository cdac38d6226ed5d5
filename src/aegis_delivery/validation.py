"""Input validation that runs before any command: each failure names the value and the rule."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aegis_delivery.errors import InputError

# Docker's tag grammar: https://docs.docker.com/reference/cli/docker/image/tag/
_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Revisions and pull request numbers alike: 1 to 999999999, ASCII digits, no sign or zero pad.
_POSITIVE = re.compile(r"[1-9][0-9]{0,8}")
PLATFORM_PATTERN = re.compile(r"^linux/(amd64|arm64|arm/v7|arm/v6|ppc64le|s390x|386|riscv64)$")


def docker_tag(value: str, *, what: str = "tag") -> str:
    """A valid Docker image tag, or an error that states the grammar."""
    if not isinstance(value, str) or not _DOCKER_TAG.fullmatch(value):
        raise InputError(
            f"invalid {what} {value!r}: a Docker tag is 1 to 128 characters of letters, digits, "
            "'_', '.' and '-', and does not start with '.' or '-'"
        )
    return value


def positive_revision(value: str | int) -> int:
    """A Helm revision number: a positive integer (``--revision 3``)."""
    text = str(value).strip(" ")
    if not _POSITIVE.fullmatch(text):
        raise InputError(
            f"invalid revision {value!r}: expected a positive whole number in ASCII digits, like 3"
        )
    return int(text)


def pull_request_number(value: str | int) -> int:
    """A pull request number (``--pr 7``): 1 to 999999999 in ASCII digits, nothing else."""
    text = str(value)
    if not _POSITIVE.fullmatch(text):
        raise InputError(
            f"invalid pull request number {value!r}: expected a whole number from 1 to "
            "999999999 in ASCII digits, like 7"
        )
    return int(text)


def image_digest(value: str, *, what: str = "digest") -> str:
    """An image digest as registries serve it: ``sha256:`` and 64 lower-case hex digits."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise InputError(f"invalid {what} {value!r}: expected sha256: followed by 64 hex digits")
    return value


def printable_line(value: str, *, what: str, hint: str) -> str:
    """A required single line of printable text (a reason): recorded in helm descriptions."""
    text = non_empty(value, what=what, hint=hint)
    if any(not character.isprintable() for character in text) or len(text) > 200:
        raise InputError(f"{what} must be one line of at most 200 printable characters: {hint}")
    return text


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


# Trivy's severities, lowest first: the scan policy's grammar (config reads it, trivy uses it).
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def parse_severities(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip().upper() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(SEVERITIES))
    if not chosen or unknown:
        raise ValueError(f"severities must be a list of {', '.join(SEVERITIES)}; got {text!r}")
    return chosen


LATEST = "latest"  # main's moving tag: never a release alias
_ALIAS = re.compile(r"^(?:[A-Za-z0-9_.-]|\{(?:major|minor|patch)\})+$")


def check_alias(template: str) -> str:
    """A release alias template such as ``{major}.{minor}``; ``latest`` is main's, never one."""
    if not _ALIAS.match(template) or template == LATEST:
        raise ValueError(
            f"{template!r} is not a release alias: expected a tag template built from "
            "{major}, {minor}, {patch} and tag characters, e.g. '{major}.{minor}' (never 'latest')"
        )
    return template
