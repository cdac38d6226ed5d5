"""`invoke pipeline --env local` for real: built images, Compose, the verify checks, `invoke down`.

Trivy's vulnerability database cannot be fetched here, so these runs switch vulnerability
scanning off through the configuration (AEGIS_CONFIG; secret and misconfiguration scanning stay
on and the output says so loudly); with the default configuration the same run stops at scan.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY, commit_checkout
from tests.docker_support import CHECKOUT_COPY, LOCAL_BASES, docker, require_engine
from tests.services import free_port

pytestmark = pytest.mark.docker
BASES = [
    arg for app, base in LOCAL_BASES.items() for arg in ("--build-arg", f"{app}:BASE_IMAGE={base}")
]


def settings_for(
    root: Path, directory: Path, *, vulnerabilities: bool = False, verify_timeout: str = "90s"
) -> Path:
    """A copy of the settings pointing at *root*, with loopback ports and local images."""
    text = (REPOSITORY / "pyproject.toml").read_text()
    work = directory / "work"  # the Compose file, logs and scans: this test's own
    text = text.replace(
        "[tool.aegis]\n", f'[tool.aegis]\nroot = "{root}"\nwork_directory = "{work}"\n', 1
    )
    text = text.replace(
        'nats_image = "nats:2.10-alpine"', 'nats_image = "aegis-local/nats:bookworm"'
    )
    text = text.replace(
        'postgres_image = "postgres:15-bookworm"', 'postgres_image = "aegis-local/postgres:15"'
    )
    text = text.replace(
        "vulnerabilities = true", f"vulnerabilities = {str(vulnerabilities).lower()}"
    )
    text = text.replace('project = "aegis-local"', f'project = "aegis-test-{uuid.uuid4().hex[:6]}"')
    text = text.replace("api_port = 18000", f"api_port = {free_port()}")
    text = text.replace("ui_port = 13000", f"ui_port = {free_port()}")
    text = text.replace('verify_timeout = "90s"', f'verify_timeout = "{verify_timeout}"')
    path = directory / "aegis.toml"
    path.write_text(text)
    return path


def invoke(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    # No CA bundle named: the builds take the toolkit's default, as a newcomer's do.
    environ = {**os.environ, "AEGIS_CONFIG": str(config),
               "AEGIS_TOOLS_DIR": str(REPOSITORY / ".tools/bin"), "CI": "true"}  # fmt: skip
    environ.pop("GITHUB_EVENT_NAME", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *arguments],
        cwd=REPOSITORY, env=environ, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def engine() -> None:
    require_engine()
    for base in (*LOCAL_BASES.values(), "aegis-local/nats:bookworm", "aegis-local/postgres:15"):
        docker("image", "inspect", base)


def test_the_local_pipeline_runs_end_to_end_then_down_stops_it(tmp_path: Path) -> None:
    config = settings_for(REPOSITORY, tmp_path)
    try:
        result = invoke(config, "pipeline", "--env", "local", "--skip", "gate", *BASES)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "VULNERABILITY SCANNING IS OFF" in output
        # The BuildKit output is in the build's log, not on the console.
        ui_log = (tmp_path / "work" / "build-monitor-ui.log").read_text()
        assert "load build definition" in ui_log and "load build definition" not in output
        assert "EBADENGINE" not in ui_log  # the offline Node is the one the UI pins
        verified = next(line for line in output.splitlines() if line.startswith("ok: verify:"))
        for check in ("monitor-api /healthz", "monitor-api /readyz", "monitor-api /version",
                      "monitor-ui /api/health", "monitor-ui /"):  # fmt: skip
            assert check in verified
        assert "pipeline (local): build, scan, deploy, verify passed" in output
        # PostgreSQL is there as in staging, and its password is never printed
        password = (tmp_path / "work" / "local-postgres-password").read_text().strip()
        assert password and password not in output
        again = invoke(config, "verify", "--env", "local")
        assert again.returncode == 0, again.stdout + again.stderr
        assert re.search(r"ok: verify: .*monitor-api /readyz", again.stdout + again.stderr)
    finally:
        stopped = invoke(config, "down")
    assert stopped.returncode == 0, stopped.stderr
    project = next(
        line.split('"')[1]
        for line in config.read_text().splitlines()
        if line.startswith("project =")
    )
    label = f"label=com.docker.compose.project={project}"
    assert docker("ps", "--all", "--quiet", "--filter", label).stdout == ""
    assert docker("volume", "ls", "--quiet", "--filter", label).stdout == ""
    assert docker("network", "ls", "--quiet", "--filter", label).stdout == ""


def test_a_broken_api_image_fails_at_verify_with_the_check_named(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(REPOSITORY, checkout, ignore=CHECKOUT_COPY)
    app = checkout / "apps/monitor-api/src/monitor_api/app.py"
    healthy = 'return Health(status="ok")'
    assert healthy in app.read_text()  # the break below must really break /healthz
    app.write_text(app.read_text().replace(healthy, 'raise RuntimeError("broken build")'))
    commit_checkout(checkout, "broken")
    # /healthz answers 500 for good: verify retries it until its timeout, so keep that short.
    config = settings_for(checkout, tmp_path, verify_timeout="20s")
    try:
        result = invoke(config, "pipeline", "--env", "local", "--skip", "gate", *BASES)
    finally:
        invoke(config, "down")
    assert result.returncode == 3, (result.stdout + result.stderr)[-3000:]
    assert "stage verify failed: verify failed: monitor-api /healthz answered 500" in result.stderr


def test_with_the_default_configuration_the_pipeline_stops_at_scan(tmp_path: Path) -> None:
    config = settings_for(REPOSITORY, tmp_path, vulnerabilities=True)
    result = invoke(config, "pipeline", "--env", "local", "--skip", "gate", *BASES)
    assert result.returncode == 4, (result.stdout + result.stderr)[-3000:]
    assert "stage scan failed: trivy could not scan" in result.stderr
    assert "==> stage deploy" not in result.stdout + result.stderr
