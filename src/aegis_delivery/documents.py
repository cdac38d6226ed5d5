"""The ``--json`` documents as models, their published JSON Schemas, and the compatibility rule.

Every document a task prints with ``--json`` carries ``schema`` (``SCHEMA_VERSION``): fields are
added within a version, never renamed or removed; a change that would rename or remove one
raises the version. A failure's document is a ``Failure`` (with what the command had found: a
failed scan's whole result, a failed deploy's phases); a scan's is a ``ScanDocument``. The
schemas under ``docs/schemas/`` are generated from these models (`python -m
aegis_delivery.documents docs/schemas`), and a test fails when they drift. This module is for
programs and tests: tasks never import it (pydantic stays out of `invoke --list`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aegis_delivery.console import JSON_SCHEMA_VERSION

SCHEMA_VERSION = JSON_SCHEMA_VERSION  # one number: the console writes it into every document


class Document(BaseModel):
    """What every document holds; the rest is the command's own result."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = Field(alias="schema", ge=1, description="the compatibility version")


class Failure(Document):
    """A failed task's one document: the error line, the exit code, what had been found."""

    status: Literal["failed"]
    error: str = Field(description="the one-line error (masked)")
    exit_code: int = Field(description="the documented exit code (docs/exit-codes.md)")
    completed: list[str] | None = Field(default=None, description="stages done before it failed")


class ScanFinding(BaseModel):
    model_config = ConfigDict(extra="allow")
    identifier: str
    severity: str
    kind: str
    package: str
    installed: str
    fixed: str
    title: str
    target: str


class FailingFinding(ScanFinding):
    artifact: str = Field(description="the image or Dockerfile it was found in")


class DroppedFinding(ScanFinding):
    reason: Literal["ignore file", "unfixed"] = Field(description="why the policy let it through")


class ScanReportDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    artifact: str
    passed: bool
    counts: dict[str, int] = Field(description="every finding per severity, before policy")
    failing: list[FailingFinding]
    dropped: list[DroppedFinding]
    expired_ignores: list[str]
    report: str = Field(description="Trivy's own JSON report")


class ScanDocument(Document):
    """`invoke scan --json` (and a failed scan's failure document, beside its error)."""

    passed: bool
    vulnerability_scanning: bool
    counts: dict[str, int] = Field(description="every finding per severity, all artifacts")
    sarif: str | None = Field(description="the SARIF file, when --sarif asked for one")
    reports: list[ScanReportDocument]


class ScanFailure(Failure, ScanDocument):
    """A scan that found problems: exit 3, and the whole result."""


PUBLISHED: dict[str, type[BaseModel]] = {
    "failure": Failure,
    "scan": ScanDocument,
    "scan-failure": ScanFailure,
}


def json_schemas() -> dict[str, str]:
    """{file name: JSON Schema text} for every published document."""
    texts: dict[str, str] = {}
    for name, model in PUBLISHED.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$id"] = f"{name}.v{SCHEMA_VERSION}.json"  # relative: where docs/schemas/ is served
        texts[f"{name}.v{SCHEMA_VERSION}.json"] = json.dumps(schema, indent=2, sort_keys=True)
    return {name: text + "\n" for name, text in texts.items()}


def main(arguments: Sequence[str]) -> int:
    directory = Path(arguments[0]) if arguments else Path("docs/schemas")
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in json_schemas().items():
        (directory / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {directory / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
