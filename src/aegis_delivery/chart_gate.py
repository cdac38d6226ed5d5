"""The chart gate: helm lint and helm template with helm 3 and helm 4 for every values file,
the rendered manifests validated offline against Kubernetes' schemas, and ``trivy config``
on the chart with the scan policy's severities. ``python -m aegis_delivery.chart_gate``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aegis_delivery.config import DeliveryConfig, load_config
from aegis_delivery.console import Console
from aegis_delivery.errors import AegisError, ExitCode, GateFailed, ToolUnavailable
from aegis_delivery.masking import Masker
from aegis_delivery.release.trivy import apply_policy, config_scan_argv, load_ignores, parse_report
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import install_hint, require

HELM_VERSIONS = ("helm", "helm3")  # helm 4 and helm 3, from .tools/bin
GATE_RELEASE = "gate"
GATE_TAG = "gate-check"


def values_files(chart: Path) -> list[Path]:
    """Every environment's values file; the generated deployment values are not a source."""
    return sorted(p for p in chart.glob("values.*.yaml") if p.name != "values.deployment.yaml")


def lint_step(helm: Path, chart: Path, values: Path | None) -> Step:
    argv = [str(helm), "lint", "--strict", str(chart), "--set", f"global.imageTag={GATE_TAG}"]
    if values is not None:
        argv += ["--values", str(values)]
    return Step(
        tuple(argv), f"{helm.name} lint {values.name if values else 'values.yaml'}", capture=True
    )


def template_step(helm: Path, chart: Path, values: Path | None) -> Step:
    argv = [str(helm), "template", GATE_RELEASE, str(chart), "--set", f"global.imageTag={GATE_TAG}"]
    if values is not None:
        argv += ["--values", str(values)]
    return Step(
        tuple(argv),
        f"{helm.name} template {values.name if values else 'values.yaml'}",
        capture=True,
    )


def untagged_step(helm: Path, chart: Path) -> Step:
    """A release without an image tag: the chart must refuse to render it."""
    return Step(
        (str(helm), "template", GATE_RELEASE, str(chart)),
        f"{helm.name} template without a tag (must be refused)",
        capture=True,
        changes=False,
    )


def refuse_untagged(runner: Runner, helm: Path, chart: Path) -> None:
    """Fail the gate when the chart renders a release without a tag (it would run ``latest``)."""
    result = runner.run(untagged_step(helm, chart), check=False)
    if result.ran and (result.ok or "imageTag" not in result.stderr):
        raise GateFailed(
            f"{helm.name} rendered the chart without global.imageTag: the chart must refuse a "
            "release without a tag (values.schema.json: global.imageTag minLength 1)"
        )


def run_gate(runner: Runner, config: DeliveryConfig, work: Path) -> None:
    chart = config.chart
    validator = shutil.which("kubernetes-validate")
    if validator is None:
        raise ToolUnavailable(
            "kubernetes-validate is not installed: pip install 'aegis-delivery[chart]'"
        )
    for name in HELM_VERSIONS:
        helm = require(name, config.root)
        refuse_untagged(runner, helm, chart)
        for values in (None, *values_files(chart)):
            runner.run(lint_step(helm, chart, values))
            rendered = runner.run(template_step(helm, chart, values)).stdout
            manifest = work / f"{name}-{values.stem if values else 'values'}.yaml"
            manifest.write_text(rendered, encoding="utf-8")
            runner.run(
                Step(
                    (validator, "--strict", "--quiet", str(manifest)),
                    f"validate {manifest.name}",
                    capture=True,
                )
            )
    trivy = str(require("trivy", config.root))
    report_file = work / "trivy-chart.json"
    empty = work / "empty.trivyignore"
    empty.write_text("", encoding="utf-8")
    runner.run(
        Step(
            config_scan_argv(trivy, chart, report_file, empty), "trivy config (chart)", capture=True
        )
    )
    policy_severities = config.scan.severity
    from aegis_delivery.release.scan_gate import policy_of

    report = apply_policy(
        str(chart.relative_to(config.root)),
        parse_report(report_file.read_text(encoding="utf-8"), "chart"),
        policy_of(config),
        load_ignores(config.root),
        dt.date.today(),
    )
    for finding in report.failing:
        runner.console.error(
            f"{finding.target}: {finding.severity} {finding.identifier} {finding.title}"
        )
    if not report.passed:
        raise GateFailed(
            f"trivy config found {len(report.failing)} misconfiguration(s) at "
            f"{','.join(sorted(policy_severities))} in the chart"
        )
    runner.console.success(
        f"chart: lint, template and schema validation with {', '.join(HELM_VERSIONS)} for "
        f"{1 + len(values_files(chart))} values sets; a release without a tag refused; "
        "trivy config clean at "
        f"{','.join(sorted(policy_severities))}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    masker = Masker.from_environment()
    console = Console(masker, plain=True)
    try:
        config = load_config()
        with (
            tempfile.TemporaryDirectory(prefix="aegis-chart-") as work,
            Runner(console, masker, install_hint=install_hint) as runner,
        ):
            run_gate(runner, config, Path(work))
    except AegisError as error:
        console.error(error.message)
        return int(error.exit_code)
    return int(ExitCode.OK)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
