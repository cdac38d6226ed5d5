"""What people and machines read: each report as lines (and Markdown) or as one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aegis_delivery import reports
from aegis_delivery.cluster.deploy import DeployOutcome
from aegis_delivery.cluster.diff import ImageChange, ManifestDiff
from aegis_delivery.cluster.history import AuditEntry, AuditTrail
from aegis_delivery.masking import Masker
from aegis_delivery.verification import VerifyReport
from tests.conftest import RecordingConsole
from tests.published import valid
from tests.records import DIGEST_API, release_record


@pytest.fixture(params=[False, True], ids=["text", "json"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> RecordingConsole:
    console = RecordingConsole(Masker(), json_mode=bool(request.param))
    console.summary_file = tmp_path / "summary.md"
    return console


def document_or_text(console: RecordingConsole) -> dict[str, object] | str:
    if console.json_mode:
        loaded: dict[str, object] = json.loads(console.stdout.getvalue())
        return loaded
    return console.text


def test_the_release(console: RecordingConsole) -> None:
    reports.show_release(console, release_record("v1.2.3"), Path(".aegis/release.json"))
    shown = document_or_text(console)
    if isinstance(shown, dict):
        valid("release", shown)
        assert shown["tag"] == "v1.2.3" and shown["release_file"] == ".aegis/release.json"
    else:
        assert (
            f"monitor-api: ghcr.io/aegistrader/aegistrader/monitor-api:v1.2.3 -> {DIGEST_API}"
            in shown
        )
    assert "| tag | v1.2.3 |" in (console.summary_file or Path()).read_text()


def test_the_diff(console: RecordingConsole) -> None:
    diff = ManifestDiff(images=[ImageChange("Deployment/api", "api", "r@sha256:1", "r@sha256:2")])
    reports.show_diff(console, "staging", diff)
    shown = document_or_text(console)
    if isinstance(shown, dict):
        valid("diff", shown)
        assert shown["empty"] is False and shown["images"] == [
            {"obj": "Deployment/api", "container": "api", "old": "r@sha256:1", "new": "r@sha256:2"}
        ]
    else:
        assert "image Deployment/api api: r@sha256:1 -> r@sha256:2" in shown


def test_the_history(console: RecordingConsole) -> None:
    entry = AuditEntry(
        2, "2026-11-27T08:00:00Z", "deployed", "emergency-fix", {"monitorApi": DIGEST_API},
        "ops", "hotfix INC-1", "tag=emergency-fix",
    )  # fmt: skip
    reports.show_history(console, AuditTrail("aegis", "aegis-staging", [entry]))
    shown = document_or_text(console)
    if isinstance(shown, dict):
        valid("history", shown)
        assert shown["revisions"] == [entry.document()]
    else:
        assert "emergency-fix" in shown and "hotfix INC-1" in shown and "aaaaaaaaaaaa" in shown


def test_an_outcome_with_planned_and_failed_checks(console: RecordingConsole) -> None:
    report = VerifyReport()
    report.add("pods", True, "4 pods ready")
    report.planned("helm test")
    report.add("nats", False, "no answer")
    outcome = DeployOutcome("staging", "t", "tag=t", {}, revision=3, verify=report)
    document = outcome.document()
    reports.show_outcome(console, outcome)
    shown = document_or_text(console)
    if isinstance(shown, dict):
        valid("deploy", shown)
        assert shown == {"schema": 1, **document}
    else:
        assert "ok: pods" in shown and "planned: helm test" in shown and "FAILED: nats" in shown
