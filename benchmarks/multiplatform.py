"""The two-platform publish of monitor-api, against a local registry, beside one platform.

`push --platform linux/amd64,linux/arm64` the way the toolkit does it everywhere: one build
per platform (arm64 under QEMU on this machine; native runners in CI), each loaded and
scanned, pushed under its staging tag, then merged into one index under the release tag.
Measured cold (build cache pruned) and after a one-line change to monitor-api, each beside
the same publish for linux/amd64 alone.

Usage: python benchmarks/multiplatform.py [--output FILE]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from aegis_delivery.config import load_config  # noqa: E402
from aegis_delivery.console import Console  # noqa: E402
from aegis_delivery.masking import Masker  # noqa: E402
from aegis_delivery.release import publish  # noqa: E402
from aegis_delivery.release.context import BuildContext  # noqa: E402
from aegis_delivery.runner import Runner  # noqa: E402
from benchmarks.report import write_results  # noqa: E402
from tests.docker_support import LocalRegistry  # noqa: E402

BASE = "monitor-api:BASE_IMAGE=aegis-local/python:3.13-{arch}"
EDITED = REPOSITORY / "apps/monitor-api/src/monitor_api/checks.py"


def publish_once(server: LocalRegistry, directory: Path, platforms: str) -> float:
    config = load_config(REPOSITORY / "pyproject.toml")
    config = replace(
        config,
        registry=server.host,
        scan=replace(config.scan, vulnerabilities=False),
        build=replace(config.build, release_file=directory / f"release-{uuid.uuid4().hex}.json"),
    )
    environ = {"REGISTRY_USER": server.USER, "REGISTRY_PASSWORD": server.PASSWORD}
    context = BuildContext("local", "local", "refs/heads/main", "0" * 40, "aegis/bench", "bench")
    plan = publish.plan_images(
        config, apps=["monitor-api"], tag="bench", platform=platforms, build_args=[BASE],
        environ=environ, context=context,
    )  # fmt: skip
    masker = Masker([server.PASSWORD])
    started = time.perf_counter()
    with (
        (directory / "publish.log").open("a", encoding="utf-8") as log,
        Runner(Console(masker, out=log, err=log, plain=True), masker) as runner,
    ):
        publish.release(runner, config, plan, force=True, environ=environ)
    return time.perf_counter() - started


def prune() -> None:
    subprocess.run(["docker", "builder", "prune", "--all", "--force"], check=True,
                   capture_output=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=REPOSITORY / "benchmarks/results/multiplatform.md"
    )
    options = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    original = EDITED.read_text()
    with tempfile.TemporaryDirectory(prefix="aegis-bench-mp-") as scratch:
        directory = Path(scratch)
        server = LocalRegistry(directory)
        server.start()
        try:
            prune()
            one_cold = publish_once(server, directory, "linux/amd64")
            prune()
            two_cold = publish_once(server, directory, "linux/amd64,linux/arm64")
            rows.append(("cold (build cache pruned)", two_cold, one_cold))
            EDITED.write_text(original + f"\n# benchmark edit {time.time()}\n")
            two_changed = publish_once(server, directory, "linux/amd64,linux/arm64")
            EDITED.write_text(original + f"\n# benchmark edit {time.time()}\n")
            one_changed = publish_once(server, directory, "linux/amd64")
            rows.append(("after a one-line change", two_changed, one_changed))
        finally:
            EDITED.write_text(original)
            server.stop()
    lines = [
        "# Two-platform publish of monitor-api (`push --platform linux/amd64,linux/arm64`)",
        "",
        f"Measured with `python benchmarks/multiplatform.py`, {time.strftime('%Y-%m-%d')}: "
        "build per platform (arm64 under QEMU here), scan, push, merge, SBOM, record.",
        "",
        "| when | linux/amd64 + linux/arm64 | linux/amd64 alone (baseline) | ratio |",
        "|---|---|---|---|",
        *(f"| {what} | {two:.1f} s | {one:.1f} s | {two / one:.2f}x |" for what, two, one in rows),
    ]
    write_results(lines, options.output)


if __name__ == "__main__":
    main()
