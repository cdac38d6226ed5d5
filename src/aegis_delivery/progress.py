"""Long work, one line each: what runs, for how long, and where its full output went.

A build, a gate run or ``helm upgrade --wait`` prints hundreds of lines nobody reads on
success. With a log directory set (every task, unless ``--verbose``), such a command's output
goes to ``.aegis/logs/PURPOSE.log``; at a terminal one live line shows what runs and the
elapsed time, and a one-line result with the duration ends it. Without a terminal (CI, a pipe,
``NO_COLOR``) the lines are plain and timestamped: one when it starts, one when it ends (and
the runner's heartbeat while it waits, so a CI log is never silent). On failure the error
quotes the last ``TAIL_LINES`` lines and names the log.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from aegis_delivery import clock
from aegis_delivery.console import Console

# Lines of a long command's output quoted when it fails (the rest is in its log).
TAIL_LINES = 30


def log_name(purpose: str) -> str:
    """``build monitor-api (linux/arm64)`` -> ``build-monitor-api-linux-arm64.log``."""
    return (re.sub(r"[^A-Za-z0-9.]+", "-", purpose).strip("-.").lower() or "command") + ".log"


def duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{seconds:.1f}s" if seconds < 60 else f"{whole // 60}m{whole % 60:02d}s"


def say_started(console: Console, purpose: str) -> None:
    """The plain start line (at a terminal the live line says it)."""
    if console.plain:
        console.info(f"{clock.now():%H:%M:%S} started: {purpose}")


def say_finished(console: Console, purpose: str, ok: bool, seconds: float, log_file: Path) -> None:
    """One line: the result, the duration and the log (timestamped when plain)."""
    stamp = f"{clock.now():%H:%M:%S} " if console.plain else ""
    where = f"(log: {console.relative(log_file)})"
    if ok:
        console.success(f"{stamp}{purpose}: done in {duration(seconds)} {where}")
    else:
        console.warn(f"{stamp}{purpose}: failed after {duration(seconds)} {where}")


class Stage:
    """One long command's output, kept in its log; the console shows only its progress."""

    def __init__(self, console: Console, purpose: str, log_file: Path) -> None:
        self.console = console
        self.purpose = purpose
        self.log_file = log_file
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._log: IO[str] | None = None
        self._started = 0.0

    @property
    def live(self) -> bool:
        """At a terminal the live line shows the elapsed time (no heartbeat lines needed)."""
        return not self.console.plain

    def write(self, line: str) -> None:
        if self._log is not None:
            self._log.write(line if line.endswith("\n") else line + "\n")
        self.tail.append(line.rstrip("\n"))

    @contextlib.contextmanager
    def running(self) -> Iterator[Stage]:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        say_started(self.console, self.purpose)
        with self.log_file.open("w", encoding="utf-8") as self._log, self._live_line():
            yield self
        self._log = None

    def finish(self, ok: bool) -> None:
        seconds = time.monotonic() - self._started
        say_finished(self.console, self.purpose, ok, seconds, self.log_file)

    @contextlib.contextmanager
    def _live_line(self) -> Iterator[None]:
        if not self.live:
            yield
            return
        with self.console.status(self.purpose) as update:
            done = threading.Event()

            def tick() -> None:
                while not done.wait(1.0):
                    update(f"{self.purpose} ({duration(time.monotonic() - self._started)})")

            ticker = threading.Thread(target=tick, daemon=True)
            ticker.start()
            try:
                yield
            finally:
                done.set()
                ticker.join()
