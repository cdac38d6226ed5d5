"""Measure the toolkit's own overhead, over repeated runs, and write a small table.

- `invoke --list` against a bare Invoke on a one-task file (goal: <= 1.5x, < 0.35 s median);
- warm `nox -R -s lint` against bare `ruff check .` in the same environment (goal: <= 1.3x);
- creating the tests environment with nox's uv backend against virtualenv + pip (reported).

Usage: python benchmarks/toolkit.py [--runs N] [--env-runs N] [--output FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.report import write_results  # noqa: E402

BARE_TASKS = 'from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n'


@dataclass(frozen=True)
class Comparison:
    name: str
    subject: str
    baseline: str
    subject_seconds: float
    baseline_seconds: float
    goal: str

    @property
    def ratio(self) -> float:
        return self.subject_seconds / self.baseline_seconds

    def row(self) -> str:
        return (
            f"| {self.name} | `{self.subject}` {self.subject_seconds:.3f} s "
            f"| `{self.baseline}` {self.baseline_seconds:.3f} s "
            f"| {self.ratio:.2f}x | {self.goal} |"
        )


def median_seconds(argv: Sequence[str], cwd: Path, runs: int, warmup: int = 2) -> float:
    """Median wall time of *runs* executions after *warmup* unmeasured ones."""
    samples: list[float] = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        if index >= warmup:
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def invoke_list(runs: int) -> Comparison:
    invoke = [sys.executable, "-m", "invoke", "--list"]
    with tempfile.TemporaryDirectory() as bare:
        (Path(bare) / "tasks.py").write_text(BARE_TASKS)
        baseline = median_seconds(invoke, Path(bare), runs)
    subject = median_seconds(invoke, REPOSITORY, runs)
    verdict = "met" if subject / baseline <= 1.5 and subject < 0.35 else "NOT met"
    return Comparison(
        "startup", "invoke --list", "invoke --list (bare)", subject, baseline,
        f"<= 1.5x and < 0.35 s: {verdict}",
    )  # fmt: skip


def nox_lint(runs: int) -> Comparison:
    nox = shutil.which("nox") or "nox"
    subprocess.run([nox, "-s", "lint"], cwd=REPOSITORY, check=True, capture_output=True)
    ruff = REPOSITORY / ".nox" / "lint" / "bin" / "ruff"
    subject = median_seconds([nox, "-R", "-s", "lint"], REPOSITORY, runs)
    baseline = median_seconds([str(ruff), "check", "."], REPOSITORY, runs)
    verdict = "met" if subject / baseline <= 1.3 else "NOT met"
    return Comparison(
        "lint gate", "nox -R -s lint", "ruff check .", subject, baseline, f"<= 1.3x: {verdict}"
    )


def environment_creation(runs: int) -> Comparison:
    nox = shutil.which("nox") or "nox"

    def create(backend: str) -> float:
        with tempfile.TemporaryDirectory() as envdir:
            argv = [nox, "-s", "tests", "--install-only", "-db", backend, "--envdir", envdir]
            started = time.perf_counter()
            subprocess.run(argv, cwd=REPOSITORY, check=True, capture_output=True)
            return time.perf_counter() - started

    create("uv")  # warm the package caches both backends read from
    create("virtualenv")
    uv = statistics.median(create("uv") for _ in range(runs))
    virtualenv = statistics.median(create("virtualenv") for _ in range(runs))
    return Comparison(
        "tests env", "nox -db uv", "nox -db virtualenv", uv, virtualenv, "reported only"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--env-runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPOSITORY / "benchmarks/results/toolkit.md")
    options = parser.parse_args(argv)
    comparisons = [
        invoke_list(options.runs),
        nox_lint(options.runs),
        environment_creation(options.env_runs),
    ]
    table = [
        f"Medians; {options.runs} runs ({options.env_runs} for environments); "
        f"Python {sys.version.split()[0]}; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| what | subject | baseline | ratio | goal |",
        "|---|---|---|---|---|",
        *(comparison.row() for comparison in comparisons),
    ]
    write_results(table, options.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
