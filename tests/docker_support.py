"""A real Docker engine for the tests: availability, image builds from local bases, containers.

Images build from the locally made bases (scripts/local-base-images), since no registry can
be pulled from here; the CA bundle goes in as the ``ca_bundle`` build secret chosen exactly as
the toolkit chooses it with nothing set (the system store here), so a broken default fails
the suite instead of hiding behind a bundle the tests pass themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from aegis_delivery.config import load_config
from aegis_delivery.release.trust import CaBundle, resolve_ca_bundle
from tests.conftest import REPOSITORY
from tests.services import require

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # the host's, for the UI tests' Node
# A working copy of the checkout (`shutil.copytree(REPOSITORY, ..., ignore=CHECKOUT_COPY)`):
# without the environments, tools, caches and outputs a clone would not have (.venv is 725 MB).
CHECKOUT_COPY = shutil.ignore_patterns(
    ".git", ".nox", ".venv", ".tools", ".aegis", "node_modules", ".next", "__pycache__", "*_cache"
)
# The offline bases, as the configuration names them ([tool.aegis.local] offline_bases).
LOCAL_BASES = dict(load_config(REPOSITORY / "pyproject.toml").local.offline_bases)


def default_ca_bundle() -> CaBundle | None:
    """The bundle `invoke build` takes when nothing names one (the variables are the
    environment's own: the suite runs without them, as a newcomer does)."""
    config = load_config(REPOSITORY / "pyproject.toml")
    return resolve_ca_bundle(None, os.environ, config.build.ca_bundle_env)


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
    bundle = default_ca_bundle()
    if bundle is not None:
        arguments += ["--secret", bundle.secret()]
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


class LocalRegistry:
    """The Distribution registry on loopback with htpasswd (bcrypt) authentication."""

    USER = "aegis"
    PASSWORD = "s3cret-registry-pass"  # noqa: S105 - a throw-away test registry

    def __init__(self, directory: Path) -> None:
        import shutil

        from tests.services import free_port

        binary = shutil.which("docker-registry")
        require(
            binary is not None, "docker-registry is not installed (apt-get install docker-registry)"
        )
        require(
            shutil.which("htpasswd") is not None,
            "htpasswd is missing (apt-get install apache2-utils)",
        )
        self.binary = str(binary)
        self.port = free_port()
        self.directory = directory
        htpasswd = directory / "htpasswd"
        subprocess.run(
            ["htpasswd", "-Bbc", str(htpasswd), self.USER, self.PASSWORD],
            check=True,
            capture_output=True,
        )
        self.config = directory / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            f"auth:\n  htpasswd:\n    realm: aegis-test\n    path: {htpasswd}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from tests.services import wait_for_port

        log = (self.directory / "registry.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", str(self.config)], stdout=log, stderr=log
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
