"""Running the scan gate: Trivy via the runner, one JSON report per artifact, policy in Python."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import GateFailed, ToolUnavailable
from aegis_delivery.release.scan_output import sarif_document, summary_rows
from aegis_delivery.release.trivy import (
    ScanPolicy,
    ScanReport,
    apply_policy,
    config_scan_argv,
    image_scan_argv,
    load_ignores,
    parse_report,
)
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import require
from aegis_delivery.validation import SEVERITIES

SARIF_FILE = "trivy.sarif"
VULNERABILITIES_OFF = (
    "VULNERABILITY SCANNING IS OFF ([tool.aegis.scan] vulnerabilities = false): "
    "only secrets and misconfigurations are checked"
)


@dataclass(frozen=True)
class ScanTarget:
    kind: str  # "image" or "config"
    name: str  # image reference or path


def policy_of(config: DeliveryConfig) -> ScanPolicy:
    return ScanPolicy(
        severities=config.scan.severity,
        ignore_unfixed=config.scan.ignore_unfixed,
        vulnerabilities=config.scan.vulnerabilities,
        db_repository=config.scan.db_repository,
    )


def _report_path(directory: Path, target: ScanTarget) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in target.name)[-100:]
    return directory / f"trivy-{target.kind}-{safe}.json"


def scan(
    runner: Runner,
    config: DeliveryConfig,
    targets: Sequence[ScanTarget],
    output_directory: Path,
    sarif_directory: Path | None = None,
    today: dt.date | None = None,
    table_when_passed: bool = True,
) -> list[ScanReport]:
    """Scan every target and apply the policy; raise ``GateFailed`` when any finding remains.
    The table is shown unless everything passed and *table_when_passed* is False (a pipeline
    run, whose own table then says the scan passed)."""
    policy = policy_of(config)
    trivy = str(require("trivy", config.root))
    output_directory.mkdir(parents=True, exist_ok=True)
    empty_ignore = output_directory / "empty.trivyignore"
    empty_ignore.write_text("", encoding="utf-8")
    if not policy.vulnerabilities:
        runner.console.warn(VULNERABILITIES_OFF)
    ignores = load_ignores(config.root)
    reports: list[ScanReport] = []
    for target in targets:
        report_file = _report_path(output_directory, target)
        report_file.unlink(missing_ok=True)
        if target.kind == "image":
            argv = image_scan_argv(trivy, target.name, policy, report_file, empty_ignore)
        else:
            argv = config_scan_argv(trivy, Path(target.name), report_file, empty_ignore)
        result = runner.run(Step(argv, f"scan {target.name}", capture=True), check=False)
        if not result.ran:
            continue
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise ToolUnavailable(
                f"trivy could not scan {target.name} (exit {result.returncode}): "
                + " | ".join(said)
            )
        raw = report_file.read_text(encoding="utf-8") if report_file.exists() else ""
        findings = parse_report(raw, target.name)
        report = apply_policy(target.name, findings, policy, ignores, today or dt.date.today())
        reports.append(replace(report, report_file=str(report_file)))
    if sarif_directory is not None:
        sarif = sarif_directory / SARIF_FILE
        document = sarif_document(reports)
        runner.write_file(sarif, json.dumps(document, indent=2) + "\n", "write SARIF")
    for report in reports:
        for note in report.notes:
            runner.console.warn(f"{report.artifact}: {note}")
    passed = all(report.passed for report in reports)
    if reports and not runner.console.json_mode and (table_when_passed or not passed):
        runner.console.table(
            "scan (all findings by severity; verdict under the policy "
            f"{','.join(sorted(policy.severities))}"
            f"{', fixed only' if policy.ignore_unfixed else ''})",
            ("artifact", *reversed(SEVERITIES), "verdict"),
            summary_rows(reports),
        )
    return reports


def raise_on_findings(
    reports: Sequence[ScanReport], vulnerabilities: bool, sarif: Path | None = None
) -> None:
    """Exit 3 on findings; the --json failure document keeps the whole scan result."""
    failing = [report for report in reports if not report.passed]
    if failing:
        details = ", ".join(f"{r.artifact}: {len(r.failing)}" for r in failing)
        error = GateFailed(f"the scan gate found problems ({details})")
        error.details.update(scan_document(reports, vulnerabilities, sarif))
        raise error


def scan_document(
    reports: Sequence[ScanReport], vulnerabilities: bool, sarif: Path | None = None
) -> dict[str, object]:
    return {
        "passed": all(report.passed for report in reports),
        "vulnerability_scanning": vulnerabilities,
        "counts": {
            severity: sum(report.counts.get(severity, 0) for report in reports)
            for severity in SEVERITIES
        },
        "sarif": str(sarif / SARIF_FILE) if sarif is not None else None,
        "reports": [report.as_dict() for report in reports],
    }


def dump(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
