"""The ``--json`` documents as models, their published JSON Schemas, and the compatibility rule.

Every document a task prints with ``--json`` carries ``schema`` (``SCHEMA_VERSION``): fields are
added within a version, never renamed or removed; a change that would rename or remove one
raises the version. Each command's success document has its model below (``PUBLISHED`` names
them); a failure's is a ``Failure`` with what the command had found (a failed scan's whole
result, a failed deploy's step and phases, a failed gate's figures). The
schemas under ``docs/schemas/`` are generated from these models (`python -m
aegis_delivery.documents docs/schemas`), and a test fails when they drift. This module is for
programs and tests: tasks never import it (pydantic stays out of `invoke --list`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aegis_delivery.cluster.diff import ImageChange
from aegis_delivery.cluster.helm import Revision
from aegis_delivery.cluster.history import AuditEntry
from aegis_delivery.console import JSON_SCHEMA_VERSION
from aegis_delivery.documents_preview import (
    ConfigPreview,
    Document,
    PreviewDocument,
    PreviewListDocument,
)
from aegis_delivery.documents_preview import Open as _Open
from aegis_delivery.release.attestation import Verdict
from aegis_delivery.release.record import ReleaseRecord, StagedPlatform
from aegis_delivery.verification import PodVerdict

SCHEMA_VERSION = JSON_SCHEMA_VERSION  # one number: the console writes it into every document


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


class ConfigApp(_Open):
    context: str
    dockerfile: str
    platforms: list[str]


class ConfigEnvironment(_Open):
    namespace: str
    kube_context: str
    timeout: str
    history_max: int
    lock_wait: str


class ConfigGates(_Open):
    annotation_coverage: float
    annotation_paths: list[str]


class ConfigDocument(Document):
    """`invoke config --json`: the settings, paths relative to the repository."""

    source: str
    registry: str
    repository: str
    default_branch: str
    chart: str
    release: str
    gates: ConfigGates
    apps: dict[str, ConfigApp]
    environments: dict[str, ConfigEnvironment]
    preview: ConfigPreview | None = Field(default=None, description="None: previews are off")


class ToolState(_Open):
    ok: bool
    path: str | None
    version: str
    needed_for: str


class CaBundleState(_Open):
    ok: bool
    path: str | None
    source: str | None
    problem: str | None = Field(description="why the bundle cannot be used (exit 2)")


class DoctorDocument(Document):
    """`invoke doctor --json`: every tool, and the CA bundle image builds would trust."""

    tools: dict[str, ToolState]
    ca_bundle: CaBundleState


class TagsDocument(Document):
    """`invoke tags --json`: the references this commit's images get, and why."""

    tag: str = Field(description="the release's own tag, deployed and verified")
    tags: list[str]
    publish: bool
    reason: str
    sha: str
    ref: str
    images: dict[str, list[str]] = Field(description="per app, the full references")


class ReleaseDocument(ReleaseRecord):
    """`invoke push --json`: the release record as written (or, in a dry run, planned)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    release_file: str


class StagedDocument(Document):
    """`invoke push --stage --json`: a platform job's images under their staging tags."""

    staged: list[StagedPlatform]


class SbomDocument(Document):
    """`invoke sbom --json`: the SBOM attached to an app's image, summarised."""

    app: str
    image: str = Field(description="the image, by digest")
    sbom_manifest: str
    sbom_sha256: str
    format: str
    components: int
    output: str | None = Field(description="the file written, when --output asked for one")


class Check(_Open):
    check: str
    ok: bool | None = Field(description="None: planned in a dry run")
    detail: str


class VerifyDocument(Document):
    """`invoke verify --json`: every check, in order."""

    environment: str
    verify: list[Check]


class ProvenanceGate(_Open):
    required: bool = Field(description="the environment's policy requires a verified provenance")
    verified: list[Verdict]
    unverified: list[str] = Field(description="apps deployed with --allow-unverified (recorded)")


class DeployDocument(VerifyDocument):
    """`invoke deploy`, `rollback` and `promote --json`: the revision made and its checks."""

    tag: str
    description: str = Field(description="the helm release description (who, why, from what)")
    digests: dict[str, str]
    revision: int | None = Field(description="None in a dry run")
    completed: list[str]
    provenance: ProvenanceGate


class ProvenanceDocument(Document):
    """`invoke provenance --json`: the newest statement as stored (decoded, not trusted) and
    whether the environment would deploy the image."""

    app: str
    image: str = Field(description="the image, by digest")
    environment: str
    verified: bool
    refused: str | None = Field(description="why it would be refused (exit 6), else None")
    verdict: Verdict | None
    statement: dict[str, Any] | None = Field(description="the in-toto Statement v1, as stored")


class KeygenDocument(Document):
    """`invoke keygen --json`: where the new pair went; the public half (never the private)."""

    private_key: str
    public_key: str
    public_pem: str
    trusted: bool = Field(description="the public key is already in [tool.aegis.trust] keys")
    signing_key_env: str


class UpgradePhase(_Open):
    status: Literal["failed"]
    error: str
    revision: int | None
    pods: list[str] = Field(description="the pods that could not run, with their reasons")


class RollbackPhase(_Open):
    to_revision: int | None = Field(description="None: a first install, uninstalled")
    revision: int | None
    status: str | None
    seconds: float
    timeout: str
    held: bool = Field(description="the previous revision is deployed with its pods ready")


class DeployFailure(Failure):
    """A failed deploy, rollback or promote: the step under way, what completed, and (when
    the upgrade failed) both phases."""

    environment: str
    tag: str
    digests: dict[str, str]
    revision: int | None
    failed_step: str
    upgrade: UpgradePhase | None = None
    rollback: RollbackPhase | None = None


class StatusDocument(Document):
    """`invoke status --json`: the release's state, its helm history and its pods."""

    environment: str
    release: str
    namespace: str
    status: str | None = Field(description="None: no release yet")
    history: list[Revision]
    pods: list[PodVerdict]


class HistoryDocument(Document):
    """`invoke history --json`: every revision with who, why and which digests."""

    release: str
    namespace: str
    revisions: list[AuditEntry]


class ObjectChange(_Open):
    changed_object: str = Field(alias="object", description="Kind/name")
    path: str
    old: Any
    new: Any


class DiffDocument(Document):
    """`invoke diff --json`: what a deploy would change, object by object."""

    environment: str
    empty: bool
    images: list[ImageChange]
    changed: list[ObjectChange]
    added: list[str]
    removed: list[str]


class GateFigure(_Open):
    gate: str
    figure: float
    threshold: float
    unit: str
    passed: bool


class GateSession(_Open):
    session: str
    result: str = Field(description="nox's result: success, skipped, failed, aborted")
    seconds: float


class GateDocument(Document):
    """`invoke gate --json`: each nox session's result and each figure beside its threshold."""

    passed: bool
    sessions: list[GateSession]
    figures: list[GateFigure]


class GateFailure(Failure, GateDocument):
    """Failed gates: exit 3, with every session's result and figure."""


PUBLISHED: dict[str, type[BaseModel]] = {
    "failure": Failure,
    "config": ConfigDocument,
    "doctor": DoctorDocument,
    "tags": TagsDocument,
    "scan": ScanDocument,
    "scan-failure": ScanFailure,
    "release": ReleaseDocument,
    "staged": StagedDocument,
    "sbom": SbomDocument,
    "deploy": DeployDocument,
    "provenance": ProvenanceDocument,
    "keygen": KeygenDocument,
    "deploy-failure": DeployFailure,
    "verify": VerifyDocument,
    "status": StatusDocument,
    "history": HistoryDocument,
    "diff": DiffDocument,
    "gate": GateDocument,
    "gate-failure": GateFailure,
    "preview": PreviewDocument,
    "previews": PreviewListDocument,
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
