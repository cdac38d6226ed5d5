"""Image builds trust what this machine trusts, with nothing set, and keep the bundle out of
the image: `invoke build --no-cache` for real, in an environment without any CA variable.

A warm build cache hides a missing CA (the docker driver reuses the `pip install` layer it
built before with a bundle), so these builds are cold. Behind this machine's
TLS-intercepting proxy a build without the system bundle fails at `pip install`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from aegis_delivery.config import load_config
from aegis_delivery.release.trust import resolve_ca_bundle
from tests.conftest import REPOSITORY
from tests.docker_support import LOCAL_BASES, docker, require_engine, require_image

pytestmark = pytest.mark.docker
CA_VARIABLES = ("AEGIS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE")
CONFIG = load_config(REPOSITORY / "pyproject.toml")
IMAGE = f"{CONFIG.registry}/{CONFIG.repository}/monitor-api"


def settings(directory: Path) -> Path:
    text = (REPOSITORY / "pyproject.toml").read_text()
    text = text.replace(
        "[tool.aegis]\n",
        f'[tool.aegis]\nroot = "{REPOSITORY}"\nwork_directory = "{directory}"\n',
        1,
    )
    path = directory / "aegis.toml"
    path.write_text(text)
    return path


def newcomer_build(directory: Path, tag: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`invoke build` as a newcomer runs it: no CA variable, not CI, no Actions variables."""
    environ = {k: v for k, v in os.environ.items()
               if k not in CA_VARIABLES and not k.startswith(("GITHUB_", "RUNNER_"))}  # fmt: skip
    environ.update(AEGIS_CONFIG=str(settings(directory)))
    environ.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", "build", "--app", "monitor-api", "--tag", tag,
         "--no-cache", "--build-arg", f"monitor-api:BASE_IMAGE={LOCAL_BASES['monitor-api']}",
         *extra],
        cwd=REPOSITORY, env=environ, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def certificates(pem: bytes) -> set[bytes]:
    """Each certificate's base64 body, one line, as it would appear in any file of a layer."""
    found, body, inside = set(), b"", False
    for line in pem.splitlines():
        if line.startswith(b"-----BEGIN CERTIFICATE-----"):
            inside, body = True, b""
        elif line.startswith(b"-----END CERTIFICATE-----"):
            found.add(body)
            inside = False
        elif inside:
            body += line.strip()
    return found


def image_files(reference: str) -> bytes:
    """Every file of every layer of the image, and its config, concatenated (docker save)."""
    saved = subprocess.run(["docker", "save", reference], capture_output=True, check=True)
    content = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(saved.stdout)) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member) if member.isfile() else None
            if data is None:
                continue
            blob = data.read()
            if member.name.endswith("layer.tar") or tarfile.is_tarfile(io.BytesIO(blob)):
                with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                    for entry in layer.getmembers():
                        inner = layer.extractfile(entry) if entry.isfile() else None
                        if inner is not None:
                            content.write(inner.read().replace(b"\n", b""))
            else:
                content.write(blob)
    return content.getvalue()


def marker_bundle(directory: Path, system: Path) -> tuple[Path, bytes]:
    """The system bundle plus a certificate made for this test: a CA only the bundle holds."""
    key, cert = directory / "marker.key", directory / "marker.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         f"/CN=aegis-test-{uuid.uuid4().hex[:8]}", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, check=True,
    )  # fmt: skip
    bundle = directory / "bundle.pem"
    bundle.write_bytes(system.read_bytes() + b"\n" + cert.read_bytes())
    (marker,) = certificates(cert.read_bytes())
    return bundle, marker


def pip_cache_mounts() -> list[str]:
    """The build cache records of monitor-api's pip cache mount (`docker buildx du`)."""
    listing = docker("buildx", "du", "--verbose").stdout
    found, current = [], ""
    for line in listing.splitlines():
        key, _, value = line.partition(":")
        if key == "ID":
            current = value.strip()
        elif key == "Description" and value.strip().startswith("cached mount /root/.cache/pip"):
            found.append(current)
    return found


@pytest.fixture(autouse=True)
def engine() -> None:
    require_engine()
    require_image(LOCAL_BASES["monitor-api"])


def test_a_cold_build_with_nothing_set_trusts_the_system_store(tmp_path: Path) -> None:
    tag = f"cold-{uuid.uuid4().hex[:8]}"
    # --no-cache rebuilds every step, but BuildKit keeps `RUN --mount=type=cache` directories
    # (pip's HTTP cache): a fresh machine has none, so neither may this build. Only pip's is
    # dropped: the other modules' builds keep theirs (npm's, Next.js's).
    for record in pip_cache_mounts():
        docker("buildx", "prune", "--force", "--filter", f"id={record}")
    try:
        result = newcomer_build(tmp_path, tag)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "--no-cache" in output and "--secret id=ca_bundle,src=" in output
        log = (tmp_path / "build-monitor-api.log").read_text()
        pip_step = log.split("pip install", 1)[1]
        # cold: pip fetched every wheel through the proxy (no layer, no cache mount reused)
        assert "Downloading fastapi" in pip_step and "Using cached" not in pip_step
        # Every certificate this machine trusts beyond the base image's own (the proxy's CA,
        # behind a TLS-intercepting proxy) must be in no layer of the image.
        bundle = resolve_ca_bundle(None, {}, "AEGIS_CA_BUNDLE")
        assert bundle is not None, "this machine has no system CA store"
        base_store = docker(
            "run", "--rm", "--entrypoint", "cat", LOCAL_BASES["monitor-api"],
            "/etc/ssl/certs/ca-certificates.crt", check=False,
        ).stdout.encode()  # fmt: skip
        host_only = certificates(bundle.path.read_bytes()) - certificates(base_store)
        files = image_files(f"{IMAGE}:{tag}")
        assert not [c for c in host_only if c in files]
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", f"{IMAGE}:{tag}")
        assert str(bundle.path) not in history.stdout
    finally:
        docker("image", "rm", "--force", f"{IMAGE}:{tag}", check=False)


def test_the_bundle_reaches_the_build_as_a_secret_and_no_layer_holds_it(tmp_path: Path) -> None:
    system = resolve_ca_bundle(None, {}, "AEGIS_CA_BUNDLE")
    assert system is not None, "this machine has no system CA store"
    bundle, marker = marker_bundle(tmp_path, system.path)
    tag = f"secret-{uuid.uuid4().hex[:8]}"
    try:
        result = newcomer_build(tmp_path, tag, "--ca-bundle", str(bundle))
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        reference = f"{IMAGE}:{tag}"
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", reference).stdout
        assert str(bundle) not in history and marker.decode()[:40] not in history
        assert marker not in image_files(reference)
        inspect = docker("image", "inspect", reference).stdout
        assert str(bundle) not in inspect and "PIP_CERT" not in inspect
    finally:
        docker("image", "rm", "--force", f"{IMAGE}:{tag}", check=False)


def test_a_bundle_that_is_not_pem_stops_before_any_build(tmp_path: Path) -> None:
    bad = tmp_path / "proxy-ca.crt"
    bad.write_text("not a certificate\n")
    result = newcomer_build(tmp_path, "never-built", "--ca-bundle", str(bad))
    assert result.returncode == 2
    assert f"CA bundle {bad} (from --ca-bundle): holds no PEM certificate" in result.stderr
    assert "docker buildx build" not in result.stdout + result.stderr
