"""The one "now" of the toolkit: aware UTC, whole seconds. Every timestamp it writes (the
release record's `created`, the gate's `passed_at`, the SBOM's annotation, the deploy lock's
renewals) comes from `now()`, so a test replaces a single function to fix time."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime | None = None) -> str:
    """ISO 8601 with the offset (`2026-12-07T01:00:00+00:00`): records and gate files."""
    return (moment or now()).isoformat()


def rfc3339(moment: dt.datetime | None = None) -> str:
    """RFC 3339 with `Z` (`2026-12-07T01:00:00Z`): OCI and namespace annotations; any offset
    is converted to UTC first, so the `Z` is always true."""
    return (moment or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
