"""The scan gate decided in Python from Trivy-shaped JSON reports, and its fail-closed cases."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aegis_delivery.errors import ExitCode, GateFailed, InputError, ToolUnavailable
from aegis_delivery.release.scan_gate import raise_on_findings
from aegis_delivery.release.scan_output import summary_rows
from aegis_delivery.release.trivy import (
    IgnoreEntry,
    ScanPolicy,
    apply_policy,
    load_ignores,
    parse_report,
)
from aegis_delivery.validation import parse_severities

FIXTURE = (Path(__file__).parent / "fixtures" / "trivy-image.json").read_text()
TODAY = dt.date(2026, 11, 26)
STRICT = ScanPolicy(frozenset({"HIGH", "CRITICAL"}), ignore_unfixed=False, vulnerabilities=True)


def test_exact_counts_per_severity_and_the_failing_findings() -> None:
    report = apply_policy("api", parse_report(FIXTURE, "api"), STRICT, [], TODAY)
    assert report.counts == {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 1, "HIGH": 3, "CRITICAL": 1}
    assert [f.identifier for f in report.failing] == [
        "CVE-2026-0001", "CVE-2026-0002", "CVE-2026-0003", "private-key",
    ]  # fmt: skip
    assert not report.passed
    secret = report.failing[-1]
    assert (secret.kind, secret.target) == ("secret", "/app/monitor_api/keys.py:3")


def test_fixed_only_skips_unfixed_vulnerabilities_never_secrets() -> None:
    policy = ScanPolicy(frozenset({"HIGH", "CRITICAL"}), ignore_unfixed=True, vulnerabilities=True)
    report = apply_policy("api", parse_report(FIXTURE, "api"), policy, [], TODAY)
    assert [f.identifier for f in report.failing] == [
        "CVE-2026-0001",
        "CVE-2026-0003",
        "private-key",
    ]
    assert report.unfixed_skipped == 1


def test_ignore_entries_and_their_expiry(tmp_path: Path) -> None:
    (tmp_path / ".trivyignore").write_text(
        "# accepted until the base image moves\n"
        "CVE-2026-0001 exp:2027-01-01\n"
        "CVE-2026-0003 exp:2026-01-01\n"
    )
    (tmp_path / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n"
        "  - id: CVE-2026-0002\n"
        "    statement: not reachable from our code\n"
        "    expired_at: 2025-06-01\n"
        "secrets:\n"
        "  - id: private-key\n"
        "    statement: test fixture key\n"
    )
    ignores = load_ignores(tmp_path)
    assert IgnoreEntry("CVE-2026-0001", dt.date(2027, 1, 1)) in ignores
    report = apply_policy("api", parse_report(FIXTURE, "api"), STRICT, ignores, TODAY)
    # 0001 and the key are suppressed; 0003 (.trivyignore) and 0002 (yaml) expired and count again.
    assert sorted(f.identifier for f in report.failing) == ["CVE-2026-0002", "CVE-2026-0003"]
    assert sorted(f.identifier for f in report.ignored) == ["CVE-2026-0001", "private-key"]
    assert "ignore entry CVE-2026-0002 has expired" in report.notes


def test_below_threshold_passes_with_counts_kept() -> None:
    policy = ScanPolicy(frozenset({"CRITICAL"}), ignore_unfixed=False, vulnerabilities=True)
    findings = [f for f in parse_report(FIXTURE, "api") if f.severity != "CRITICAL"]
    report = apply_policy("api", findings, policy, [], TODAY)
    assert report.passed and report.counts["HIGH"] == 3
    assert report.as_dict()["passed"] is True


def test_a_result_without_vulnerabilities_counts_zero() -> None:
    raw = json.dumps({"SchemaVersion": 2, "Results": [{"Target": "x", "Class": "os-pkgs"}]})
    report = apply_policy("x", parse_report(raw, "x"), STRICT, [], TODAY)
    assert report.passed and sum(report.counts.values()) == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "produced no report"),
        ("not json", "is not JSON"),
        ("[]", "not a JSON object"),
        ('{"SchemaVersion": 1, "Results": []}', "SchemaVersion 1"),
        ('{"Results": []}', "SchemaVersion None"),
    ],
    ids=["empty", "garbage", "array", "schema-1", "no-schema"],
)
def test_a_scan_that_did_not_happen_fails_closed(raw: str, message: str) -> None:
    with pytest.raises(ToolUnavailable, match=message) as raised:
        parse_report(raw, "api")
    assert raised.value.exit_code == ExitCode.UNAVAILABLE


def test_misconfigurations_that_pass_are_not_findings() -> None:
    raw = json.dumps(
        {
            "SchemaVersion": 2,
            "Results": [
                {
                    "Target": "Dockerfile",
                    "Misconfigurations": [
                        {"ID": "DS002", "Severity": "HIGH", "Status": "FAIL", "Title": "root user"},
                        {
                            "ID": "DS026",
                            "Severity": "LOW",
                            "Status": "PASS",
                            "Title": "healthcheck",
                        },
                    ],
                }
            ],
        }
    )
    findings = parse_report(raw, "Dockerfile")
    assert [(f.kind, f.identifier) for f in findings] == [("misconfiguration", "DS002")]


def test_severity_lists_and_summary_rows() -> None:
    assert parse_severities("high, critical") == {"HIGH", "CRITICAL"}
    with pytest.raises(ValueError, match="severities must be"):
        parse_severities("HIGH,URGENT")
    report = apply_policy("api", parse_report(FIXTURE, "api"), STRICT, [], TODAY)
    rows = summary_rows([report], top=2)
    assert rows[0] == ("api", "1", "3", "1", "1", "0", "FAIL (4)")
    assert rows[1][0] == "  CRITICAL CVE-2026-0001"
    assert rows[1][1] == "openssl 3.0.15-1~deb12u1 -> 3.0.16-1~deb12u1"
    assert len(rows) == 3


def test_bad_expiry_is_named(tmp_path: Path) -> None:
    (tmp_path / ".trivyignore").write_text("CVE-1 exp:someday\n")
    with pytest.raises(InputError, match="expiry of 'CVE-1' is not a date"):
        load_ignores(tmp_path)


def test_sarif_and_the_gate_agree_on_the_same_report_and_ignore_files(tmp_path: Path) -> None:
    """Code scanning shows exactly what fails the gate: never an accepted finding."""
    from aegis_delivery.release.scan_output import sarif_document

    (tmp_path / ".trivyignore").write_text("CVE-2026-0001 exp:2027-01-01\n")
    (tmp_path / ".trivyignore.yaml").write_text(
        "vulnerabilities:\n  - id: CVE-2026-0002\n    statement: unreachable\n"
        "    expired_at: 2027-06-01\n"
    )
    ignores = load_ignores(tmp_path)
    report = apply_policy("api", parse_report(FIXTURE, "api"), STRICT, ignores, TODAY)
    document = sarif_document([report])
    run = document["runs"][0]  # type: ignore[index]
    results = {result["ruleId"] for result in run["results"]}
    assert results == {finding.identifier for finding in report.failing}
    assert results == {"CVE-2026-0003", "private-key"}  # the two ignored ones are not there
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} == results
    assert document["version"] == "2.1.0"
    json.dumps(document)  # serialisable as it is written


def test_a_failed_gate_keeps_the_whole_result_for_its_json_document(tmp_path: Path) -> None:
    (tmp_path / ".trivyignore").write_text(
        "CVE-2026-0001 exp:2027-01-01\nCVE-2026-0003 exp:2026-01-01\n"
    )
    policy = ScanPolicy(frozenset({"HIGH", "CRITICAL"}), ignore_unfixed=True, vulnerabilities=True)
    report = replace(
        apply_policy(
            "api:t", parse_report(FIXTURE, "api:t"), policy, load_ignores(tmp_path), TODAY
        ),
        report_file="/w/.aegis/scan/trivy-image-api_t.json",
    )
    with pytest.raises(GateFailed) as raised:
        raise_on_findings([report], True, Path("/w/.aegis/sarif"))
    document = raised.value.details
    assert raised.value.exit_code == ExitCode.GATE_FINDINGS
    assert document["passed"] is False and document["sarif"] == "/w/.aegis/sarif/trivy.sarif"
    assert document["counts"] == {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 1, "HIGH": 3, "CRITICAL": 1}
    reports: Any = document["reports"]
    (only,) = reports
    assert only["report"] == "/w/.aegis/scan/trivy-image-api_t.json"
    failing = {finding["identifier"]: finding for finding in only["failing"]}
    assert set(failing) == {"CVE-2026-0003", "private-key"}  # 0003's ignore entry expired
    cve = failing["CVE-2026-0003"]
    assert cve["severity"] in {"HIGH", "CRITICAL"} and cve["artifact"] == "api:t"
    assert {"package", "installed", "fixed", "kind", "title", "target"} <= set(cve)
    reasons = {finding["identifier"]: finding["reason"] for finding in only["dropped"]}
    assert reasons == {"CVE-2026-0001": "ignore file", "CVE-2026-0002": "unfixed"}
    assert only["expired_ignores"] == ["CVE-2026-0003"]
    json.dumps(document)  # one JSON document, as --json prints it
