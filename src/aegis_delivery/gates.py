"""The quality gate as the task runner sees it: one ``nox`` command, the same one CI runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aegis_delivery.runner import Step


def nox_command() -> str:
    """The nox installed beside this Python (`.venv/bin/nox`, no activation needed), else PATH's."""
    beside = Path(sys.executable).parent / "nox"
    return str(beside) if beside.is_file() else "nox"


def nox_step(sessions: Sequence[str]) -> Step:
    """``nox`` runs every default session; named sessions narrow it (``-s lint tests``)."""
    argv: tuple[str, ...] = (nox_command(),)
    if sessions:
        argv += ("--sessions", *sessions)
    return Step(argv=argv, purpose="quality gates")
