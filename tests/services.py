"""Real services the tests start on loopback: nats-server and PostgreSQL from Debian's packages.

Where a service's binary is missing, a test is skipped with the reason on a laptop and fails
in CI (``CI=true``), where ``.ci/run`` installs everything: CI never silently skips.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest


# Debian 12 ships PostgreSQL 15, Ubuntu 24.04 16: the newest installed major version.
def _newest_postgres() -> Path:
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    return max(
        versions, key=lambda p: int(p.parent.name), default=Path("/usr/lib/postgresql/15/bin")
    )


POSTGRES_BIN = _newest_postgres()


def require(condition: bool, reason: str) -> None:
    """Skip when *condition* is false, except in CI, where it is a failure."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required in CI: {reason} (.ci/run installs it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


class NatsServer:
    """A real nats-server on a loopback port that survives stop/start (same port).

    Its monitoring port answers ``/varz``, which counts every connection ever accepted.
    """

    def __init__(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        require(Path(binary).exists(), "nats-server is not installed (apt-get install nats-server)")
        self.binary = binary
        self.port = free_port()
        self.monitor_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def connections_accepted(self) -> int:
        """Every client connection this server accepted since it started."""
        url = f"http://127.0.0.1:{self.monitor_port}/varz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(json.load(answer)["total_connections"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temporary directory, run as the postgres user."""

    def __init__(self) -> None:
        require((POSTGRES_BIN / "initdb").exists(), "PostgreSQL is not installed")
        require(os.geteuid() == 0 or _is_postgres_user(), "PostgreSQL tests run as root here")
        # Not under pytest's tmp_path: the postgres user must be able to reach the directory.
        self.directory = Path(tempfile.mkdtemp(prefix="aegis-postgres-"))
        self.directory.chmod(0o777)
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = free_port()
        self._as_postgres([str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust"])

    @property
    def _pg_ctl(self) -> list[str]:
        return [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data)]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, argv: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, cwd=self.directory)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c log_connections=on"
        )
        self._as_postgres(
            # -l: the server must not inherit our pipes, or capturing its output never ends.
            [*self._pg_ctl, "-l", str(self.log), "-o", options, "-w", "start"]
        )
        already = self.connections_received()
        wait_for_port(self.port)
        # That probe is a connection too: wait for its log line, so that a count read next
        # is not overtaken by it on a busy machine.
        deadline = time.monotonic() + 10
        while self.connections_received() <= already and time.monotonic() < deadline:
            time.sleep(0.05)

    def connections_received(self) -> int:
        """Every connection the server received (``log_connections`` writes one line each)."""
        return self.log.read_text(encoding="utf-8", errors="replace").count("connection received")

    def stop(self) -> None:
        self._as_postgres(
            [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]
        )

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _is_postgres_user() -> bool:
    return os.environ.get("USER") == "postgres"
