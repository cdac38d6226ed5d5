"""AegisTrader quality gates. ``nox`` runs them all; ``nox -s NAME`` runs one.

The gates are the toolkit's (``aegis_delivery.nox_sessions``), registered the one way any
repository registers them; thresholds and tool settings live in pyproject.toml. What follows
``register()`` are the sessions only this repository has.
"""

from __future__ import annotations

import os

import nox

from aegis_delivery.nox_sessions import BYTECODE_CACHED, TOOLS_INSTALLER, install, register

register()


@nox.session(default=False)
def workflow(session: nox.Session) -> None:
    """The CI/CD workflow's jobs run for real by act on this machine, as the events GitHub
    sends (push to main, pull request, tag, dispatch); `-- --event pull_request` runs one."""
    install(session, "test")
    session.run(TOOLS_INSTALLER, external=True)
    session.run("python", "-m", "tests.workflow.act", *session.posargs, env=BYTECODE_CACHED)


@nox.session(default=False, venv_backend="none")
def system(session: nox.Session) -> None:
    """(root) Install and start what the real-part tests need: Docker plugins, registry, ...

    Not root: through sudo (a GitHub runner), so the workflow's step is one plain call."""
    command = ["scripts/install-system"]
    if os.geteuid() != 0:
        command = ["sudo", "--preserve-env=PATH", *command]
    session.run(*command, external=True)


@nox.session(default=False, venv_backend="none")
def tools(session: nox.Session) -> None:
    """Install the pinned helm 4, helm 3, kubectl and trivy into .tools/bin."""
    session.run(TOOLS_INSTALLER, external=True)


if __name__ == "__main__":
    nox.main()
