"""The local main job where people wait: `invoke pipeline --offline` to a verified stack.

Measured on a copy of this checkout (its own git history, so a change gets its own tag):
one unmeasured run to warm the caches, then the pipeline with nothing changed, then after a
one-line change to monitor-api (committed), each beside its goal. Every run ends with the
stack running and verified (the pipeline's own verify stage); `invoke down` stops it.

Usage: python benchmarks/pipeline.py [--output FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.report import write_results  # noqa: E402
from tests.docker_support import CHECKOUT_COPY  # noqa: E402

GOALS = {"nothing changed": 30.0, "one-line change to monitor-api": 90.0}


def git(checkout: Path, *arguments: str) -> None:
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.com")
    subprocess.run(["git", "-C", str(checkout), *identity, *arguments], check=True,
                   capture_output=True)  # fmt: skip


def pipeline(checkout: Path, environ: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "pipeline", "--offline"],
        cwd=checkout, env=environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "verify passed" not in result.stdout + result.stderr:
        raise SystemExit(f"pipeline failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=REPOSITORY / "benchmarks/results/pipeline.md"
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aegis-bench-") as scratch:
        checkout = Path(scratch) / "checkout"
        shutil.copytree(REPOSITORY, checkout, ignore=CHECKOUT_COPY, symlinks=True)
        git(checkout, "init", "-q", "-b", "main")
        git(checkout, "add", "-A")
        git(checkout, "commit", "-qm", "benchmark base")
        environ = {**os.environ, "AEGIS_TOOLS_DIR": str(REPOSITORY / ".tools/bin")}
        environ.pop("CI", None)  # a developer's run: the quick gate
        environ.pop("GITHUB_EVENT_NAME", None)
        try:
            warm = pipeline(checkout, environ)
            unchanged = pipeline(checkout, environ)
            app = checkout / "apps/monitor-api/src/monitor_api/app.py"
            text = app.read_text()
            if 'title="monitor-api"' not in text:
                raise SystemExit(f"{app} changed: pick another one-line change")
            app.write_text(text.replace('title="monitor-api"', 'title="monitor-api (bench)"', 1))
            git(checkout, "commit", "-qam", "a one-line change")
            changed = pipeline(checkout, environ)
        finally:
            subprocess.run([sys.executable, "-m", "invoke", "down"], cwd=checkout, env=environ,
                           capture_output=True, check=False)  # fmt: skip
    rows = [("nothing changed", unchanged), ("one-line change to monitor-api", changed)]
    lines = [
        "# `invoke pipeline --offline` (quick gate, build, scan, deploy, verify)",
        "",
        f"Measured with `python benchmarks/pipeline.py`; warm-up run (not a goal): {warm:.1f} s.",
        "",
        "| run | measured | goal |",
        "|---|---|---|",
        *(
            f"| {name} | {seconds:.1f} s | at most {GOALS[name]:.0f} s: "
            f"{'met' if seconds <= GOALS[name] else '**not met**'} |"
            for name, seconds in rows
        ),
    ]
    write_results(lines, options.output)


if __name__ == "__main__":
    main()
