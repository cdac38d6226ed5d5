"""``python -m monitor_api``: validate settings, then serve with uvicorn.

uvicorn handles SIGTERM itself: it stops accepting connections, lets requests in flight
finish (up to the graceful timeout), runs shutdown and exits 0.
"""

from __future__ import annotations

import sys

import uvicorn

from monitor_api.app import create_app
from monitor_api.settings import SettingsError, load_settings

GRACEFUL_SHUTDOWN_SECONDS = 10


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.stderr.write(f"monitor-api: invalid configuration: {error}\n")
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
