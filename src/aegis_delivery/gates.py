"""The quality gate as the task runner sees it: one ``nox`` command, the same one CI runs.

With ``--json`` the gate also says what it measured: nox writes each session's result
(``--report``), and the sessions with a threshold their figures (gate_figures.py).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery import clock
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import GateFailed
from aegis_delivery.gate_figures import (
    ANNOTATION_FIGURE,
    COVERAGE_FIGURE,
    FIGURES_ENV,
    Figure,
    read_figures,
    read_json,
)
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import beside_interpreter

NOX_REPORT = "nox-report.json"
PASSED = ("success", "skipped")  # nox's other results: failed, aborted (session.error)


def nox_command() -> str:
    """The nox installed beside this Python (`.venv/bin/nox`, no activation needed), else PATH's."""
    beside = beside_interpreter("nox")
    return str(beside) if beside is not None else "nox"


def nox_step(sessions: Sequence[str], figures: Path | None = None) -> Step:
    """``nox`` runs every default session; named sessions narrow it (``-s lint tests``).
    With *figures*, nox reports each session's result there and the sessions their figures."""
    argv: tuple[str, ...] = (nox_command(),)
    env: dict[str, str] = {}
    if figures is not None:
        argv += ("--report", str(figures / NOX_REPORT))
        env[FIGURES_ENV] = str(figures)
    if sessions:
        argv += ("--sessions", *sessions)
    return Step(argv=argv, purpose="quality gates", env=env)


def coverage_threshold(config: DeliveryConfig) -> float:
    """[tool.coverage.report] fail_under: coverage's own setting, read where it is kept."""
    settings = tomllib.loads(config.source.read_text(encoding="utf-8"))
    return float(
        settings.get("tool", {}).get("coverage", {}).get("report", {}).get("fail_under", 0)
    )


@dataclass(frozen=True)
class GateResult:
    """Each session's (name, nox's result, seconds) and each figure the sessions wrote."""

    sessions: tuple[tuple[str, str, float], ...]
    figures: tuple[Figure, ...]

    @property
    def failed(self) -> list[str]:
        """What failed, in one line's words: sessions, then figures below their thresholds."""
        return [name for name, result, _ in self.sessions if result not in PASSED] + [
            f"{figure.gate} below its threshold" for figure in self.figures if not figure.passed
        ]

    @property
    def passed(self) -> bool:
        return bool(self.sessions) and not self.failed

    def document(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "sessions": [
                {"session": name, "result": result, "seconds": seconds}
                for name, result, seconds in self.sessions
            ],
            "figures": [figure.document() for figure in self.figures],
        }


def gate_result(directory: Path, config: DeliveryConfig) -> GateResult:
    """What nox reported (``--report``) and what the sessions measured, read back."""
    report = read_json(directory / NOX_REPORT) or {}
    listed = report.get("sessions")
    sessions = tuple(
        (str(entry.get("name")), str(entry.get("result")),
         round(float(entry.get("duration") or 0), 1))
        for entry in (listed if isinstance(listed, list) else []) if isinstance(entry, dict)
    )  # fmt: skip
    return GateResult(sessions, tuple(read_figures(directory, coverage_threshold(config))))


def run_gates(runner: Runner, config: DeliveryConfig, sessions: Sequence[str]) -> None:
    """Run the gates; with --json, one document of results and figures (failed: exit 3)."""
    if not runner.console.json_mode:
        runner.run(nox_step(sessions))
        return
    directory = config.work("gates")
    if not runner.dry_run:  # the toolkit's own scratch space, not a change to plan
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (NOX_REPORT, ANNOTATION_FIGURE, COVERAGE_FIGURE):
            (directory / stale).unlink(missing_ok=True)  # a figure is this run's or none
    ran = runner.run(nox_step(sessions, directory), check=False)
    if not ran.ran:  # a dry run: the plan only
        return
    result = gate_result(directory, config)
    if ran.ok and result.passed:
        runner.console.emit_json(result.document())
        return
    what = ", ".join(result.failed) or f"nox exit {ran.returncode}"
    error = GateFailed(f"quality gates failed: {what}")
    error.details.update(result.document())
    raise error


GATE_RECORD = "gate-passed.json"  # in the work directory


def tree_fingerprint(runner: Runner, root: Path, own_outputs: Path) -> str:
    """A hash of every file git would see (tracked, or untracked and not ignored), by content.

    The quick gate's verdict depends on nothing else, so an equal fingerprint means the gate
    would pass again; any edit, added or deleted file changes it.
    """
    listed = runner.run(
        Step(
            (
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ),
            "list the files the gate checks",
            capture=True,
            changes=False,
        )
    ).stdout
    digest = hashlib.sha256()
    # The toolkit's own outputs (its work directory) are not inputs.
    own = f"{own_outputs.relative_to(root).as_posix()}/" if own_outputs.is_relative_to(root) else ""
    names = set(listed.split("\0"))
    for name in sorted(n for n in names if n and not (own and n.startswith(own))):
        digest.update(name.encode() + b"\0")
        try:
            digest.update(hashlib.sha256((root / name).read_bytes()).digest())
        except OSError:  # deleted from the tree, still in the index
            digest.update(b"\0missing")
    return digest.hexdigest()


def passed_before(record: Path, sessions: Sequence[str], fingerprint: str) -> str | None:
    """When these sessions last passed on exactly this tree (None: never, or a changed tree).

    The record is the toolkit's own cache: unreadable or foreign content just means "run it".
    """
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    same = document.get("fingerprint") == fingerprint and document.get("sessions") == list(sessions)
    passed_at = document.get("passed_at")
    return passed_at if same and isinstance(passed_at, str) else None


def remember_pass(runner: Runner, record: Path, sessions: Sequence[str], fingerprint: str) -> None:
    document = {
        "fingerprint": fingerprint,
        "sessions": list(sessions),
        "passed_at": clock.iso(),
    }
    runner.write_file(record, json.dumps(document) + "\n", "remember the gate passed")


def quick_gate(runner: Runner, root: Path, work: Path, sessions: Sequence[str]) -> bool:
    """Run the quick gate unless it passed on exactly this tree; whether it ran."""
    record = work / GATE_RECORD
    fingerprint = tree_fingerprint(runner, root, work)
    passed_at = passed_before(record, sessions, fingerprint)
    if passed_at is not None:
        runner.console.info(
            f"gate: {' '.join(sessions)} passed on exactly this tree at {passed_at}: not run "
            "again (any change runs it; --full-gate runs every gate)"
        )
        return False
    runner.run(nox_step(sessions))
    remember_pass(runner, record, sessions, fingerprint)
    return True
