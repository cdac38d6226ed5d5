"""Both production images, built from local bases by a real engine and run as production runs them.

Read-only root filesystem with writable /tmp (and the Next.js cache), non-root fixed UID, OCI
labels from build args, the build identity at /version, graceful stop on SIGTERM.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REPOSITORY
from tests.docker_support import (
    LOCAL_BASES,
    build,
    docker,
    http_get,
    inspect,
    published_port,
    require_engine,
    run_container,
)

pytestmark = pytest.mark.docker
RUN = uuid.uuid4().hex[:8]
API_IMAGE = f"aegis-test/monitor-api:{RUN}"
UI_IMAGE = f"aegis-test/monitor-ui:{RUN}"
BUILD_ARGS = {
    "VERSION": "1.2.3",
    "REVISION": "0123456789abcdef0123456789abcdef01234567",
    "IMAGE_TAG": "main-0123456",
    "CREATED": "2026-11-26T00:00:00Z",
    "SOURCE": "https://github.com/aegistrader/aegistrader",
}
READ_ONLY = ("--read-only", "--tmpfs", "/tmp")


@pytest.fixture(scope="module")
def images() -> Iterator[None]:
    require_engine()
    build(REPOSITORY / "apps/monitor-api", API_IMAGE, LOCAL_BASES["monitor-api"], BUILD_ARGS)
    ui_args = {k: v for k, v in BUILD_ARGS.items() if k != "IMAGE_TAG"}
    build(REPOSITORY / "apps/monitor-ui", UI_IMAGE, LOCAL_BASES["monitor-ui"], ui_args)
    yield
    docker("image", "rm", "--force", API_IMAGE, UI_IMAGE, check=False)


@pytest.fixture
def network(images: None) -> Iterator[str]:
    name = f"aegis-test-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    yield name
    # Every container a test starts is named after the network, attached to it or not
    # (`-api2` is not): filtering by network alone left that one running.
    containers = docker("ps", "-aq", "--filter", f"name=^{name}-").stdout.split()
    if containers:
        docker("rm", "--force", *containers, check=False)
    docker("network", "rm", name, check=False)


@pytest.mark.parametrize(
    ("image", "title"), [(API_IMAGE, "monitor-api"), (UI_IMAGE, "monitor-ui")], ids=["api", "ui"]
)
def test_labels_user_and_no_build_leftovers(images: None, image: str, title: str) -> None:
    config = inspect(image)["Config"]
    assert isinstance(config, dict)
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == title
    assert labels["org.opencontainers.image.revision"] == BUILD_ARGS["REVISION"]
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.created"] == BUILD_ARGS["CREATED"]
    assert labels["org.opencontainers.image.source"] == BUILD_ARGS["SOURCE"]
    assert config["User"] == "10001:10001"
    probe = "ls -d /root/.cache /root/.npm /opt/venv/bin/pip /app/.next/cache 2>/dev/null; id -u"
    leftovers = docker("run", "--rm", "--entrypoint", "sh", image, "-c", probe).stdout.split()
    assert leftovers == ["10001"]


def test_the_api_runs_read_only_reports_its_build_and_stops_gracefully(network: str) -> None:
    name = run_container(
        f"{network}-api", API_IMAGE, (*READ_ONLY, "--network", network, "-p", "127.0.0.1::8000")
    )
    port = published_port(name, 8000)
    assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, '{"status":"ok"}')
    status, body = http_get(f"http://127.0.0.1:{port}/version")
    assert status == 200
    assert '"git_sha":"0123456789abcdef0123456789abcdef01234567"' in body
    assert '"image_tag":"main-0123456"' in body
    assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
    docker("stop", "--time", "20", name)
    state = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    logs = docker("logs", name).stderr
    assert state == "0"
    assert "Finished server process" in logs


def test_the_environment_overrides_the_baked_in_tag(network: str) -> None:
    name = run_container(
        f"{network}-api2",
        API_IMAGE,
        (*READ_ONLY, "-e", "IMAGE_TAG=emergency-fix", "-p", "127.0.0.1::8000"),
    )
    status, body = http_get(f"http://127.0.0.1:{published_port(name, 8000)}/version")
    assert status == 200 and '"image_tag":"emergency-fix"' in body


def test_the_ui_runs_read_only_and_shows_the_api(network: str) -> None:
    api_options = (*READ_ONLY, "--network", network, "--network-alias", "monitor-api")
    run_container(f"{network}-api", API_IMAGE, api_options)
    ui = run_container(
        f"{network}-ui",
        UI_IMAGE,
        (*READ_ONLY, "--tmpfs", "/app/.next/cache", "--network", network, "-p", "127.0.0.1::3000"),
    )
    base = f"http://127.0.0.1:{published_port(ui, 3000)}"
    assert http_get(f"{base}/api/health") == (200, '{"status":"ok"}')
    # The page asks the API when it renders; the API container may still be starting (its
    # interpreter under load takes seconds), so ask until it answers, as a reader would reload.
    deadline = time.monotonic() + 60
    status, page = http_get(f"{base}/")
    while "main-0123456" not in page and time.monotonic() < deadline:
        time.sleep(0.5)
        status, page = http_get(f"{base}/")
    assert status == 200
    assert "ready" in page and "main-0123456" in page
    assert http_get(f"{base}/favicon.svg")[0] == 200  # public/ is in the image
    chunk = page.split('src="/_next/static/', 1)[1].split('"', 1)[0]
    assert http_get(f"{base}/_next/static/{chunk}")[0] == 200  # so is .next/static
    docker("stop", f"{network}-api")
    status, page = http_get(f"{base}/")
    assert status == 200 and "API unreachable" in page


def test_the_offline_bases_run_the_runtimes_we_ship() -> None:
    """The Python minor of monitor-api's default base and the Node major of .nvmrc, not
    whatever the build machine's distribution has (Debian 12: Python 3.11, Node 18)."""
    require_engine()
    dockerfile = (REPOSITORY / "apps/monitor-api/Dockerfile").read_text()
    (python_minor,) = re.findall(r"^ARG BASE_IMAGE=python:(\d+\.\d+)", dockerfile, re.MULTILINE)
    node_major = (REPOSITORY / "apps/monitor-ui/.nvmrc").read_text().strip()
    python = docker("run", "--rm", LOCAL_BASES["monitor-api"], "python3", "--version").stdout
    node = docker("run", "--rm", LOCAL_BASES["monitor-ui"], "node", "--version").stdout
    npm = docker("run", "--rm", LOCAL_BASES["monitor-ui"], "npm", "--version").stdout
    assert python.startswith(f"Python {python_minor}."), python
    assert node.startswith(f"v{node_major}."), node
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", npm), npm
