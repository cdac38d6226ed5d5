"""`invoke build` of both apps concurrently against each alone, and the no-op rebuild of both.

Goals: concurrent wall time at most 1.25x the slower single build; no-op rebuild under 3 s.
Each cold build starts from a pruned build cache. Runs the real task, from the local bases.

Usage: python benchmarks/build_concurrency.py [--runs N] [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.report import write_results  # noqa: E402
from tests.docker_support import LOCAL_BASES  # noqa: E402

BASES = [
    arg for app, base in LOCAL_BASES.items() for arg in ("--build-arg", f"{app}:BASE_IMAGE={base}")
]


def invoke_build(apps: Sequence[str], cold: bool) -> float:
    if cold:
        subprocess.run(
            ["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True
        )
    argv = [sys.executable, "-m", "invoke", "build", "--tag", "bench", *BASES]
    for app in apps:
        argv += ["--app", app]
    env = {**os.environ, "CI": "true"}
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPOSITORY, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure concurrent builds.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=REPOSITORY / "benchmarks/results/build-concurrency.md"
    )
    options = parser.parse_args(argv)
    single = {
        app: statistics.median(invoke_build([app], cold=True) for _ in range(options.runs))
        for app in LOCAL_BASES
    }
    both = statistics.median(invoke_build([], cold=True) for _ in range(options.runs))
    noop = statistics.median(invoke_build([], cold=False) for _ in range(max(3, options.runs)))
    slower = max(single.values())
    ratio = both / slower
    table = [
        f"Medians of {options.runs} runs of `invoke build` (cold: build cache pruned); "
        f"measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| what | wall time | goal |",
        "|---|---|---|",
        *(f"| {app} alone, cold | {seconds:.1f} s | |" for app, seconds in single.items()),
        f"| both concurrently, cold | {both:.1f} s ({ratio:.2f}x the slower single) "
        f"| <= 1.25x: {'met' if ratio <= 1.25 else 'NOT met'} |",
        f"| both, nothing changed | {noop:.2f} s | < 3 s: {'met' if noop < 3 else 'NOT met'} |",
    ]
    write_results(table, options.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
