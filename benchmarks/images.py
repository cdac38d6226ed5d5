"""Measure the production images with a real Docker engine, from the local base images.

For each app: cold build (build cache pruned), rebuild after a one-line source change
(goal: at most 15% of the cold build for monitor-api, 30% for monitor-ui), rebuild with
nothing changed (goal: under 3 s), and
the image's size above its base (goals: monitor-api under 60 MB, monitor-ui under 80 MB).

Usage: python benchmarks/images.py [--runs N] [--app APP] [--output FILE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.report import write_results  # noqa: E402
from tests.docker_support import LOCAL_BASES, build, inspect  # noqa: E402

# The file a developer edits, per app, and the size goal above the base image.
EDITED_FILE = {"monitor-api": "src/monitor_api/app.py", "monitor-ui": "app/page.tsx"}
SIZE_GOAL_MB = {"monitor-api": 60, "monitor-ui": 80}
REBUILD_GOAL_PERCENT = {"monitor-api": 15, "monitor-ui": 30}


@dataclass(frozen=True)
class ImageFigures:
    app: str
    cold: float
    source_change: float
    no_change: float
    size_above_base_mb: float

    def row(self) -> str:
        share = 100 * self.source_change / self.cold
        size_goal = SIZE_GOAL_MB[self.app]
        goal = REBUILD_GOAL_PERCENT[self.app]
        return (
            f"| {self.app} | {self.cold:.1f} s | {self.source_change:.1f} s ({share:.0f}% of "
            f"cold, goal <= {goal}%: {'met' if share <= goal else 'NOT met'}) | "
            f"{self.no_change:.2f} s "
            f"({'met' if self.no_change < 3 else 'NOT met'}) | {self.size_above_base_mb:.1f} MB "
            f"(< {size_goal} MB: {'met' if self.size_above_base_mb < size_goal else 'NOT met'}) |"
        )


def timed_build(app: str, tag: str) -> float:
    started = time.perf_counter()
    build(REPOSITORY / "apps" / app, tag, LOCAL_BASES[app])
    return time.perf_counter() - started


def measure(app: str, runs: int) -> ImageFigures:
    tag = f"aegis-bench/{app}:latest"
    colds: list[float] = []
    for _ in range(runs):
        subprocess.run(
            ["docker", "builder", "prune", "--all", "--force"], check=True, capture_output=True
        )
        subprocess.run(["docker", "image", "rm", "--force", tag], check=True, capture_output=True)
        colds.append(timed_build(app, tag))
    edited = REPOSITORY / "apps" / app / EDITED_FILE[app]
    original = edited.read_text()
    changes: list[float] = []
    try:
        for index in range(runs):
            edited.write_text(original + f"\n// benchmark edit {index} {time.time()}\n".replace(
                "//", "#" if edited.suffix == ".py" else "//"))  # fmt: skip
            changes.append(timed_build(app, tag))
    finally:
        edited.write_text(original)
    timed_build(app, tag)  # back to the committed source
    no_changes = [timed_build(app, tag) for _ in range(max(runs, 3))]
    size = int(str(inspect(tag)["Size"])) - int(str(inspect(LOCAL_BASES[app])["Size"]))
    return ImageFigures(
        app,
        statistics.median(colds),
        statistics.median(changes),
        statistics.median(no_changes),
        size / 1_000_000,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure the production images.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--app", action="append", choices=sorted(EDITED_FILE))
    parser.add_argument("--output", type=Path, default=REPOSITORY / "benchmarks/results/images.md")
    options = parser.parse_args(argv)
    figures = [measure(app, options.runs) for app in options.app or sorted(EDITED_FILE)]
    table = [
        f"Medians of {options.runs} runs; Docker {subprocess.run(['docker', 'version', '--format', '{{.Server.Version}}'], capture_output=True, text=True, check=True).stdout.strip()}, "  # noqa: E501
        f"buildx, local Debian bookworm bases; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| image | cold build | rebuild after a one-line change "
        "| rebuild, nothing changed (goal < 3 s) | size above base |",
        "|---|---|---|---|---|",
        *(figure.row() for figure in figures),
    ]
    write_results(table, options.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
