"""The quality gate as the task runner sees it: one ``nox`` command, the same one CI runs."""

from __future__ import annotations

from collections.abc import Sequence

from aegis_delivery.runner import Step


def nox_step(sessions: Sequence[str]) -> Step:
    """``nox`` runs every default session; named sessions narrow it (``-s lint tests``)."""
    argv: tuple[str, ...] = ("nox",)
    if sessions:
        argv += ("--sessions", *sessions)
    return Step(argv=argv, purpose="quality gates")
