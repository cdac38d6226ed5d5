"""The test suite where a developer waits, warm (environments reused, images and base images
cached): `nox -R -s tests` (every test, real parts included, with the coverage gate) beside
the logic lane `nox -R -s logic` (no Docker, local API, binaries or UI) and the real-helm lane
(`-m cluster`: real helm 3 and 4 and kubectl against the local Kubernetes API, no coverage
gate on a part of the suite). All run on [tool.aegis.gates] test_workers pytest-xdist
processes; `--baseline` first measures the full suite in one process (`-- --numprocesses 0`),
as it ran before the workers.

Usage: python benchmarks/suite.py [--baseline] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.report import write_results  # noqa: E402

NOX = str(Path(sys.executable).parent / "nox")
# Issue 28's goals, on a 2-core machine: (what, nox session, its pytest arguments, seconds).
LANES = (
    ("`nox -R -s tests`", "tests", (), 180.0),
    ("`nox -R -s logic`", "logic", (), 30.0),
    (
        "real helm: `nox -R -s tests -- -m cluster --no-cov`",
        "tests",
        ("-m", "cluster", "--no-cov"),
        90.0,
    ),
)


def timed(session: str, *pytest_arguments: str) -> tuple[float, str]:
    started = time.perf_counter()
    argv = [NOX, "-R", "-s", session, *(("--", *pytest_arguments) if pytest_arguments else ())]
    result = subprocess.run(
        argv, cwd=REPOSITORY, capture_output=True, text=True, check=False,
        env={**os.environ, "CI": "true"},
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"nox -s {session} failed ({result.returncode}):\n{output[-3000:]}")
    counted = re.findall(r"(\d+ passed.*?) in [\d.]+s", output)
    return elapsed, counted[-1] if counted else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPOSITORY / "benchmarks/results/suite.md")
    parser.add_argument("--baseline", action="store_true", help="also the suite in one process")
    options = parser.parse_args()
    rows = []
    if options.baseline:  # first: it also warms what the measured runs reuse
        elapsed, counted = timed("tests", "--numprocesses", "0")
        rows.append(
            f"| baseline: `nox -R -s tests -- --numprocesses 0` (one process) | "
            f"{elapsed:.1f} s ({counted}) | reported |"
        )
    for what, session, arguments, goal in LANES:
        elapsed, counted = timed(session, *arguments)
        verdict = "met" if elapsed <= goal else "NOT met"
        rows.append(f"| {what} | {elapsed:.1f} s ({counted}) | <= {goal:.0f} s: {verdict} |")
    lines = [
        "# The test suite, warm",
        "",
        f"Measured with `python benchmarks/suite.py`, {time.strftime('%Y-%m-%d')}, CI=true "
        f"(a missing real part fails instead of skipping), {os.cpu_count()} cores.",
        "",
        "| what | measured | goal |",
        "|---|---|---|",
        *rows,
    ]
    write_results(lines, options.output)


if __name__ == "__main__":
    main()
