"""Settings from environment variables, validated once at start-up.

A malformed value stops the process with a message naming the variable, instead of a
service that starts and then fails its probes for a reason nobody can see.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

NATS_SCHEMES = frozenset({"nats", "tls"})
DATABASE_SCHEMES = frozenset({"postgres", "postgresql"})
# In a container the service must listen on every interface; HOST narrows it elsewhere.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class BuildInfo:
    version: str
    git_sha: str
    image_tag: str


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    nats_url: str | None
    database_url: str | None
    check_timeout: float
    build: BuildInfo
    log_level: str
    # How long /readyz answers from its last check: a flood of probes costs one check.
    readiness_cache_seconds: float = 2.0


def _url(environ: Mapping[str, str], name: str, schemes: frozenset[str]) -> str | None:
    """An optional URL: unset or empty means "not configured", not "failed"."""
    value = environ.get(name, "").strip()
    if not value:
        return None
    expected = f"a URL like {sorted(schemes)[0]}://host:port"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as error:
        raise SettingsError(f"{name} is malformed ({error}): expected {expected}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(f"{name}={_redact(value)!r} is not valid: expected {expected}")
    if port is not None and not 0 < port < 65536:
        raise SettingsError(f"{name} has port {port}: expected 1 to 65535")
    return value


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, str(default)).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SettingsError(f"{name}={text!r} is not a port: expected an integer from 1 to 65535")
    return int(text)


def _seconds(
    environ: Mapping[str, str], name: str, default: float, *, zero_allowed: bool = False
) -> float:
    text = environ.get(name, str(default)).strip()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    lowest = "0" if zero_allowed else "above 0"
    if not (0 <= value <= 30 if zero_allowed else 0 < value <= 30):
        raise SettingsError(f"{name}={text!r} is not valid: expected seconds, {lowest}, up to 30")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting; raise ``SettingsError`` naming the first bad variable."""
    env = os.environ if environ is None else environ
    level = env.get("LOG_LEVEL", "info").strip().lower()
    if level not in {"critical", "error", "warning", "info", "debug"}:
        raise SettingsError(f"LOG_LEVEL={level!r} is not valid: expected info, debug, warning, ...")
    return Settings(
        host=env.get("HOST", "").strip() or ALL_INTERFACES,
        port=_port(env, "PORT", 8000),
        nats_url=_url(env, "NATS_URL", NATS_SCHEMES),
        database_url=_url(env, "DATABASE_URL", DATABASE_SCHEMES),
        check_timeout=_seconds(env, "CHECK_TIMEOUT_SECONDS", 2.0),
        build=BuildInfo(
            version=env.get("APP_VERSION", "0.0.0-dev"),
            git_sha=env.get("GIT_SHA", "unknown"),
            image_tag=env.get("IMAGE_TAG", "unknown"),
        ),
        log_level=level,
        readiness_cache_seconds=_seconds(env, "READINESS_CACHE_SECONDS", 2.0, zero_allowed=True),
    )
