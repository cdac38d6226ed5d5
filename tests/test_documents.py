"""The --json documents against their published schemas (docs/schemas/, documents.py).

Validated with jsonschema against the committed files, so what programs read is what is
tested: a scan's success and failure documents, as the task frame prints them, and a real
entry point's failure.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from invoke.exceptions import Exit

from aegis_delivery import console as console_module
from aegis_delivery import documents
from aegis_delivery.errors import ExitCode, GateFailed
from aegis_delivery.masking import Masker
from aegis_delivery.release.scan_gate import raise_on_findings, scan_document
from aegis_delivery.release.trivy import ScanPolicy, apply_policy, load_ignores, parse_report
from aegis_delivery.session import fail
from tests.conftest import REPOSITORY, RecordingConsole
from tests.test_entry_points import invoke
from tests.test_scan import FIXTURE, TODAY

SCHEMAS = REPOSITORY / "docs" / "schemas"


def schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SCHEMAS / f"{name}.v1.json").read_text())
    return loaded


def test_the_published_schemas_are_the_models_own() -> None:
    generated = documents.json_schemas()
    committed = {path.name: path.read_text() for path in SCHEMAS.glob("*.json")}
    assert committed == generated, "run: python -m aegis_delivery.documents docs/schemas"


def test_every_document_carries_the_one_schema_version() -> None:
    assert console_module.JSON_SCHEMA_VERSION == documents.SCHEMA_VERSION
    console = RecordingConsole(Masker(), json_mode=True)
    console.emit_json({"tag": "main-1a2b3c4"})
    assert json.loads(console.stdout.getvalue()) == {"schema": 1, "tag": "main-1a2b3c4"}


def scan_report(tmp_path: Path, ignores: str = "") -> object:
    (tmp_path / ".trivyignore").write_text(ignores)
    policy = ScanPolicy(frozenset({"HIGH", "CRITICAL"}), ignore_unfixed=True, vulnerabilities=True)
    findings = parse_report(FIXTURE, "api:t")
    report = apply_policy("api:t", findings, policy, load_ignores(tmp_path), TODAY)
    return replace(report, report_file=str(tmp_path / "trivy-image-api_t.json"))


def test_a_failed_scan_prints_a_document_its_schema_accepts(tmp_path: Path) -> None:
    report = scan_report(tmp_path, "CVE-2026-0001 exp:2027-01-01\nCVE-2026-0003 exp:2026-01-01\n")
    console = RecordingConsole(Masker(), json_mode=True)
    with pytest.raises(GateFailed) as raised:
        raise_on_findings([report], True, tmp_path)  # type: ignore[list-item]
    with pytest.raises(Exit):
        fail(console, raised.value.message, raised.value.exit_code, raised.value.details)
    document = json.loads(console.stdout.getvalue())
    jsonschema.validate(document, schema("scan-failure"))
    jsonschema.validate(document, schema("failure"))
    assert document["exit_code"] == ExitCode.GATE_FINDINGS and document["schema"] == 1
    dropped = {finding["reason"] for finding in document["reports"][0]["dropped"]}
    assert dropped == {"ignore file", "unfixed"}


def test_a_passing_scan_document_matches_its_schema_and_a_broken_one_does_not(
    tmp_path: Path,
) -> None:
    report = replace(scan_report(tmp_path), failing=())  # type: ignore[type-var]
    console = RecordingConsole(Masker(), json_mode=True)
    console.emit_json(scan_document([report], True))  # type: ignore[list-item]
    document = json.loads(console.stdout.getvalue())
    jsonschema.validate(document, schema("scan"))
    del document["reports"][0]["failing"]
    with pytest.raises(jsonschema.ValidationError, match="'failing' is a required property"):
        jsonschema.validate(document, schema("scan"))


@pytest.mark.entry
@pytest.mark.parametrize(
    "arguments",
    [("deploy", "--env", "nowhere", "--json"), ("rollback", "--revision", "x", "--json")],
)
def test_a_real_failure_document_matches_the_failure_schema(arguments: tuple[str, ...]) -> None:
    result = invoke(*arguments)
    assert result.returncode == ExitCode.BAD_INPUT, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("failure"))
    assert document["status"] == "failed" and document["schema"] == 1
