"""A real Docker engine for the tests: availability, image builds from local bases, containers.

Images build from the locally made bases (scripts/local-base-images), since no registry can
be pulled from here; the host's CA bundle goes in as the ``ca_bundle`` build secret, exactly
as a developer behind a TLS-intercepting proxy would pass it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.services import require

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOCAL_BASES = {
    "monitor-api": "aegis-local/python:bookworm",
    "monitor-ui": "aegis-local/node:bookworm",
}


def docker(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *arguments], capture_output=True, text=True, check=check, timeout=900
    )


def require_engine() -> None:
    """Skip (locally) or fail (CI) unless an engine answers and buildx is installed."""
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", check=False)
        buildx = docker("buildx", "version", check=False)
    except FileNotFoundError:
        require(False, "the docker client is not installed")
        return
    require(info.returncode == 0, "no Docker engine answers (start dockerd)")
    require(buildx.returncode == 0, "the buildx plugin is missing (scripts/install-system)")


def require_image(name: str) -> None:
    found = docker("image", "inspect", name, check=False).returncode == 0
    require(found, f"the local base image {name} is missing (scripts/local-base-images)")


def build(
    context: Path, tag: str, base_image: str, build_args: Mapping[str, str] | None = None
) -> None:
    require_image(base_image)
    arguments = [
        "buildx",
        "build",
        "--load",
        "--tag",
        tag,
        "--build-arg",
        f"BASE_IMAGE={base_image}",
    ]
    for key, value in (build_args or {}).items():
        arguments += ["--build-arg", f"{key}={value}"]
    if CA_BUNDLE.exists():
        arguments += ["--secret", f"id=ca_bundle,src={CA_BUNDLE}"]
    result = docker(*arguments, str(context), check=False)
    if result.returncode != 0:
        raise AssertionError(f"docker build of {context} failed:\n{result.stderr[-4000:]}")


def inspect(name: str) -> dict[str, object]:
    document = json.loads(docker("image", "inspect", name).stdout)
    return dict(document[0])


def published_port(container: str, port: int) -> int:
    mapping = docker("port", container, str(port)).stdout.splitlines()[0]
    return int(mapping.rsplit(":", 1)[1])


def http_get(url: str, timeout: float = 60.0) -> tuple[int, str]:
    """GET *url*, retrying until the server answers (a container takes a moment to start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def run_container(name: str, image: str, options: Sequence[str] = ()) -> str:
    docker("rm", "--force", name, check=False)
    docker("run", "--detach", "--name", name, *options, image)
    return name
