"""Ctrl-C (SIGINT) and SIGTERM stop a real `invoke build` within seconds, buildx included.

The build runs in python-on-whales' worker threads, so the runner owns no child of its own: it
forwards the signal to every process it started, kills what ignores it after the grace period,
and exits 130/143 saying what it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY, commit_checkout
from tests.docker_support import require_engine, require_image

pytestmark = pytest.mark.docker
BASE = "aegis-local/debian:bookworm"
# VERSION is the tag, new each run: a build that once ran to its end is never a cached layer.
SLOW_DOCKERFILE = f"FROM {BASE}\nARG VERSION\nRUN echo building-slowly $VERSION && sleep 300\n"


def slow_project(root: Path) -> Path:
    """A checkout with one app whose build takes five minutes, and its configuration."""
    (root / "slow").mkdir(parents=True)
    (root / "slow" / "Dockerfile").write_text(SLOW_DOCKERFILE)
    (root / "chart").mkdir()
    config = root / "pyproject.toml"
    config.write_text(f"""[tool.aegis]
registry = "localhost:5999"
repository = "aegis/interrupt"
default_branch = "main"
chart = "chart"
release = "aegis"
[tool.aegis.gates]
annotation_coverage = 100.0
annotation_paths = ["."]
dockerfile_failure_threshold = "warning"
[tool.aegis.scan]
severity = "HIGH,CRITICAL"
[tool.aegis.build]
ca_bundle_env = "AEGIS_CA_BUNDLE"
cache = "none"
retry_base_seconds = 0.1
release_file = ".aegis/release.json"
[tool.aegis.local]
project = "aegis-interrupt"
nats_image = "{BASE}"
[tool.aegis.apps.slow]
context = "slow"
dockerfile = "slow/Dockerfile"
platforms = ["linux/amd64"]
[tool.aegis.environments.staging]
namespace = "aegis-staging"
kube_context = "aegis-staging"
""")
    commit_checkout(root)
    return config


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = entry.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in command and "pytest" not in command:
            found.append(f"{entry.parent.name}: {command}")
    return found


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_stops_a_real_build_within_seconds(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    require_engine()
    require_image(BASE)
    config = slow_project(tmp_path / "checkout")
    tag = f"stop-{uuid.uuid4().hex[:10]}"
    environ = {**os.environ, "AEGIS_CONFIG": str(config), "CI": "true"}
    log = (tmp_path / "invoke.log").open("w+")
    build = subprocess.Popen(
        [sys.executable, "-m", "invoke", "build", "--tag", tag],
        cwd=REPOSITORY, env=environ, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        build_log = tmp_path / "checkout" / ".aegis" / "build-slow.log"  # BuildKit's output
        while not build_log.exists() or "building-slowly" not in build_log.read_text():
            assert build.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, Path(log.name).read_text()
            time.sleep(0.2)
        assert processes_mentioning(tag), "buildx is running the build"
        sent = time.monotonic()
        build.send_signal(signum)
        returncode = build.wait(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        if build.poll() is None:
            build.kill()
    output = Path(log.name).read_text()
    assert returncode == code, output
    assert stopped_in < 15, f"took {stopped_in:.1f}s"
    assert f"received {signum.name}: forwarded to" in output
    assert "Traceback" not in output
    time.sleep(1)
    assert processes_mentioning(tag) == []  # no buildx left behind
