"""The figures the gates measure, each beside its threshold, for ``invoke gate --json``.

A session with a threshold writes what it measured into the directory ``FIGURES_ENV`` names
(``invoke gate --json`` sets it; a plain ``nox`` run writes nothing): the annotation gate its
figure here, the tests session pytest-cov's JSON report. The gate reads them back after the
run, so the document reports exactly what the run measured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

# Where the sessions write their figures; noxfile.py names the same variable and file.
FIGURES_ENV = "AEGIS_GATE_FIGURES"
ANNOTATION_FIGURE = "annotation-coverage.json"
COVERAGE_FIGURE = "coverage.json"  # pytest-cov's JSON report


@dataclass(frozen=True)
class Figure:
    """One measured figure beside the threshold it must reach."""

    gate: str
    figure: float
    threshold: float
    unit: str = "%"

    @property
    def passed(self) -> bool:
        return self.figure >= self.threshold

    def document(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def write_figure(directory: str | None, name: str, figure: Figure) -> None:
    """What a session with a threshold measured, for ``invoke gate --json`` (none unset)."""
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        text = json.dumps(figure.document()) + "\n"
        (Path(directory) / name).write_text(text, encoding="utf-8")


def read_json(path: Path) -> Mapping[str, object] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # that session did not run (or did not get that far)
    return loaded if isinstance(loaded, dict) else None


def read_figures(directory: Path, coverage_threshold: float) -> list[Figure]:
    """The figures the sessions that ran wrote; a session that did not run has none."""
    figures: list[Figure] = []
    annotation = read_json(directory / ANNOTATION_FIGURE)
    if annotation is not None:
        figures.append(
            Figure(str(annotation["gate"]), float(str(annotation["figure"])),
                   float(str(annotation["threshold"])), str(annotation.get("unit", "%")))
        )  # fmt: skip
    coverage = read_json(directory / COVERAGE_FIGURE)
    totals = coverage.get("totals") if coverage else None
    if isinstance(totals, dict) and "percent_covered" in totals:
        figures.append(
            Figure("test coverage", round(float(totals["percent_covered"]), 2), coverage_threshold)
        )
    return figures
