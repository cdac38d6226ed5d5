"""Where the external tools come from, and whether they are there.

helm, kubectl and trivy are pinned binaries the project installs into ``.tools/bin``
(``scripts/install-tools``); that directory wins over PATH so a machine's own, unpinned
copies are never used by accident. ``AEGIS_TOOLS_DIR`` points elsewhere when needed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.errors import ToolUnavailable
from aegis_delivery.runner import Runner, Step

PINNED_TOOLS = ("helm", "helm3", "kubectl", "trivy")
INSTALL_HINTS: Mapping[str, str] = {
    "docker": "install Docker Engine and start dockerd (see README 'Troubleshooting')",
    "helm": "run scripts/install-tools to get the pinned helm into .tools/bin",
    "kubectl": "run scripts/install-tools to get the pinned kubectl into .tools/bin",
    "trivy": "run scripts/install-tools to get the pinned trivy into .tools/bin",
    "nox": "run scripts/bootstrap, then .venv/bin/nox",
    "git": "install git",
}
# How each tool reports its version, for `invoke doctor`.
VERSION_ARGUMENTS: Mapping[str, tuple[str, ...]] = {
    "git": ("--version",),
    "docker": ("version", "--format", "{{.Server.Version}}"),
    "helm": ("version", "--short"),
    "helm3": ("version", "--short"),
    "kubectl": ("version", "--client"),
    "trivy": ("--version",),
    "nox": ("--version",),
}


def tools_directory(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = env.get("AEGIS_TOOLS_DIR")
    return Path(configured) if configured else root / ".tools" / "bin"


@dataclass(frozen=True)
class ToolLocation:
    name: str
    path: Path | None

    @property
    def found(self) -> bool:
        return self.path is not None


def beside_interpreter(name: str) -> Path | None:
    """A tool installed in this Python's own environment (`.venv/bin/nox`): found without
    activating it, as the README's `.venv/bin/invoke ...` commands run."""
    beside = Path(sys.executable).parent / name
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None


def locate(name: str, root: Path, environ: Mapping[str, str] | None = None) -> ToolLocation:
    """The project's pinned copy first, then this environment's, then PATH (for tools the
    project does not pin)."""
    pinned = tools_directory(root, environ) / name
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return ToolLocation(name, pinned)
    if name in PINNED_TOOLS:
        return ToolLocation(name, None)
    if (own := beside_interpreter(name)) is not None:
        return ToolLocation(name, own)
    found = shutil.which(name)
    return ToolLocation(name, Path(found) if found else None)


def install_hint(tool: str) -> str:
    """How to get a missing tool (the runner's ``install_hint``: it knows no tool itself)."""
    return INSTALL_HINTS.get(tool.rstrip("3"), "install it or put it on PATH")


def require(name: str, root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The tool's path, or ``ToolUnavailable`` saying how to get it."""
    location = locate(name, root, environ)
    if location.path is None:
        raise ToolUnavailable(f"{name!r} is not available: {install_hint(name)}")
    return location.path


def version_step(name: str, path: Path) -> Step:
    """The read-only command that asks a tool for its version."""
    return Step(
        argv=(str(path), *VERSION_ARGUMENTS.get(name, ("--version",))),
        purpose=f"{name} version",
        capture=True,
    )


# Tools `invoke doctor` reports on, and what each is needed for.
DOCTOR_TOOLS: Mapping[str, str] = {
    "git": "tags from the local checkout",
    "nox": "the quality gates",
    "docker": "build, push, local pipeline",
    "helm": "deploy, rollback, status (helm 4)",
    "helm3": "chart gate (helm 3)",
    "kubectl": "deploy guards, verify, status",
    "trivy": "scan gate",
}


@dataclass(frozen=True)
class ToolStatus:
    name: str
    needed_for: str
    path: Path | None
    version: str

    @property
    def ok(self) -> bool:
        return self.path is not None and not self.version.startswith("error")


def check_tools(runner: Runner, root: Path) -> list[ToolStatus]:
    """Locate every tool and ask each for its version (read-only, so it runs in a dry run too)."""
    statuses: list[ToolStatus] = []
    for name, needed_for in DOCTOR_TOOLS.items():
        path = locate(name, root).path
        version = "missing"
        if path is not None:
            result = runner.probe(version_step(name, path))
            lines = (result.stdout or result.stderr).strip().splitlines()
            version = lines[0] if result.ok and lines else f"error (exit {result.returncode})"
        statuses.append(ToolStatus(name, needed_for, path, version))
    return statuses
