"""What a scan's verdict looks like to others: SARIF for GitHub code scanning and the rows of
the step summary, both rendered from the gate's own verdicts (release/trivy.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aegis_delivery.release.trivy import ScanReport
from aegis_delivery.validation import SEVERITIES

SARIF_LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}


def sarif_document(reports: Sequence[ScanReport], trivy_version: str = "") -> dict[str, object]:
    """SARIF 2.1.0 for GitHub code scanning from the gate's own verdicts: exactly the findings
    that fail the gate (same severities, ignore files, expiry and fixed-only policy), so code
    scanning never shows a finding the gate accepted, nor hides one it failed on."""
    rules: dict[str, dict[str, object]] = {}
    results: list[dict[str, object]] = []
    for report in reports:
        for finding in report.failing:
            rules.setdefault(
                finding.identifier,
                {
                    "id": finding.identifier,
                    "shortDescription": {"text": finding.title or finding.identifier},
                    "properties": {"tags": [finding.kind, finding.severity]},
                },
            )
            detail = f" in {finding.package} {finding.installed}" if finding.package else ""
            fixed = f" (fixed in {finding.fixed})" if finding.fixed else ""
            results.append(
                {
                    "ruleId": finding.identifier,
                    "level": SARIF_LEVELS.get(finding.severity, "note"),
                    "message": {
                        "text": f"{finding.severity} {finding.title}{detail}{fixed}".strip()
                    },
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": finding.target or report.artifact}
                            },
                            "message": {"text": report.artifact},
                        }
                    ],
                }
            )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Trivy",
                        "version": trivy_version,
                        "informationUri": "https://github.com/aquasecurity/trivy",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }


def summary_rows(reports: Sequence[ScanReport], top: int = 5) -> list[tuple[str, ...]]:
    """One row per artifact (counts by severity, verdict), then its top failing findings."""
    rows: list[tuple[str, ...]] = []
    order = {severity: index for index, severity in enumerate(reversed(SEVERITIES))}
    for report in reports:
        verdict = "pass" if report.passed else f"FAIL ({len(report.failing)})"
        rows.append(
            (report.artifact, *(str(report.counts[s]) for s in reversed(SEVERITIES)), verdict)
        )
        for finding in sorted(report.failing, key=lambda f: order[f.severity])[:top]:
            detail = (
                f"{finding.package} {finding.installed} -> {finding.fixed or 'no fix'}"
                if finding.kind == "vulnerability"
                else finding.target
            )
            rows.append(
                (
                    f"  {finding.severity} {finding.identifier}",
                    detail,
                    finding.title[:60],
                    "",
                    "",
                    "",
                    "",
                )
            )
    return rows
