"""`invoke gate --json`: each nox session's result and each figure beside its threshold.

The gate runs the real nox on a small noxfile in a scratch repository, whose sessions write
their figures as the project's do (the annotation gate's own main, pytest-cov's JSON report
format), and the document is checked against its published schema.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery import annotation_coverage, gate_figures, gates
from aegis_delivery.config import load_config
from aegis_delivery.errors import ExitCode, GateFailed
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from tests.conftest import REPOSITORY, RecordingConsole
from tests.published import failure_printed, valid

NOXFILE = """
import json, os
import nox

@nox.session(venv_backend="none")
def tests(session):
    directory = os.environ["AEGIS_GATE_FIGURES"]
    with open(os.path.join(directory, "coverage.json"), "w") as report:
        json.dump({"totals": {"percent_covered": float(os.environ["COVERED"])}}, report)

@nox.session(venv_backend="none")
def lint(session):
    if os.environ.get("LINT_FINDS"):  # a command that fails, as ruff does on a finding
        session.run("python", "-c", "raise SystemExit(1)")
"""


def gate_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, covered: float,
             lint_finds: bool = False) -> tuple[RecordingConsole, GateFailed | None]:  # fmt: skip
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.coverage.report]\nfail_under = 80\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVERED", str(covered))
    monkeypatch.setenv("LINT_FINDS", "1" if lint_finds else "")
    config = replace(load_config(REPOSITORY / "pyproject.toml"), root=tmp_path, source=pyproject)
    console = RecordingConsole(Masker(), json_mode=True)
    try:
        with Runner(console, console.masker, grace_seconds=5) as runner:
            gates.run_gates(runner, config, ["tests", "lint"])
    except GateFailed as failed:
        return console, failed
    return console, None


def test_passing_gates_print_each_session_and_each_figure_beside_its_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    console, failed = gate_run(tmp_path, monkeypatch, covered=91.456)
    assert failed is None
    document = valid("gate", json.loads(console.stdout.getvalue()))
    assert document["passed"] is True
    assert [(s["session"], s["result"]) for s in document["sessions"]] == [
        ("tests", "success"), ("lint", "success"),
    ]  # fmt: skip
    assert document["figures"] == [{"gate": "test coverage", "figure": 91.46, "threshold": 80.0,
                                    "unit": "%", "passed": True}]  # fmt: skip


def test_coverage_below_its_threshold_fails_with_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, failed = gate_run(tmp_path, monkeypatch, covered=61.0)
    assert failed is not None and failed.exit_code == ExitCode.GATE_FINDINGS
    assert failed.message == "quality gates failed: test coverage below its threshold"
    document = failure_printed("gate-failure", failed)
    assert document["figures"][0]["figure"] == 61.0 and document["passed"] is False


def test_a_failed_session_is_named_and_a_stale_figure_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = tmp_path / ".aegis" / "gates"
    figures.mkdir(parents=True)
    stale = '{"gate": "annotation coverage", "figure": 12, "threshold": 100}'
    (figures / gate_figures.ANNOTATION_FIGURE).write_text(stale)
    _, failed = gate_run(tmp_path, monkeypatch, covered=90.0, lint_finds=True)
    assert failed is not None and failed.message == "quality gates failed: lint"
    document = failure_printed("gate-failure", failed)
    assert {s["session"]: s["result"] for s in document["sessions"]} == {
        "tests": "success", "lint": "failed",
    }  # fmt: skip
    assert [figure["gate"] for figure in document["figures"]] == ["test coverage"]


def test_the_annotation_gate_writes_its_figure_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "half.py"
    source.write_text("def typed(x: int) -> int:\n    return x\n\ndef untyped(x):\n    return x\n")
    monkeypatch.delenv(gate_figures.FIGURES_ENV, raising=False)
    assert annotation_coverage.main([str(source)]) == ExitCode.GATE_FINDINGS
    assert not list(tmp_path.glob("*.json"))
    monkeypatch.setenv(gate_figures.FIGURES_ENV, str(tmp_path / "figures"))
    annotation_coverage.main([str(source)])
    written = json.loads((tmp_path / "figures" / gate_figures.ANNOTATION_FIGURE).read_text())
    assert written == {"gate": "annotation coverage", "figure": 50.0, "threshold": 100.0,
                       "unit": "%", "passed": False}  # fmt: skip


def test_the_noxfile_writes_the_coverage_figure_where_the_gate_reads_it() -> None:
    noxfile = (REPOSITORY / "src/aegis_delivery/nox_sessions.py").read_text()
    assert f'os.environ.get("{gate_figures.FIGURES_ENV}")' in noxfile
    assert f"--cov-report=json:{{figures}}/{gate_figures.COVERAGE_FIGURE}" in noxfile
