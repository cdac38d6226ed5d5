"""Trivy: the command lines, the report schema, and the gate decided in Python.

Trivy is asked for *everything* (every severity, fixed or not, no ignore file) as one JSON
report; the policy (threshold, fixed-only, ignore entries with expiry) is applied here, so the
counts printed are exact and the decision is testable from recorded reports. The gate fails
closed: a scan that did not happen is "unavailable" (exit 4), never "no findings".
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.errors import InputError, ToolUnavailable
from aegis_delivery.validation import SEVERITIES

SUPPORTED_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class ScanPolicy:
    severities: frozenset[str]  # which severities fail the gate
    ignore_unfixed: bool
    vulnerabilities: bool  # off only where no vulnerability database can be reached
    secrets: bool = True
    db_repository: str = ""  # a mirror of Trivy's database (air-gapped users); "" = Trivy's own


@dataclass(frozen=True)
class Finding:
    kind: str  # vulnerability, secret, misconfiguration
    identifier: str
    severity: str
    target: str
    title: str
    package: str = ""
    installed: str = ""
    fixed: str = ""


@dataclass(frozen=True)
class IgnoreEntry:
    identifier: str
    expires: dt.date | None = None
    statement: str = ""

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today < self.expires


@dataclass(frozen=True)
class ScanReport:
    """One artifact's findings after policy: what fails the gate, and exact counts."""

    artifact: str
    counts: Mapping[str, int]  # every finding, per severity, before policy
    failing: tuple[Finding, ...]
    ignored: tuple[Finding, ...] = ()  # by an active entry of the ignore file
    unfixed: tuple[Finding, ...] = ()  # no fixed version, and the policy is fixed-only
    expired_ignores: tuple[str, ...] = ()  # entries past their date: they ignore nothing
    report_file: str = ""  # Trivy's own JSON report

    @property
    def passed(self) -> bool:
        return not self.failing

    @property
    def unfixed_skipped(self) -> int:
        return len(self.unfixed)

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(
            f"ignore entry {identifier} has expired" for identifier in self.expired_ignores
        )

    def as_dict(self) -> dict[str, object]:
        """The whole result, kept in a failure's --json document too (a bot comments from it)."""
        dropped = [{**finding.__dict__, "reason": "ignore file"} for finding in self.ignored]
        dropped += [{**finding.__dict__, "reason": "unfixed"} for finding in self.unfixed]
        return {
            "artifact": self.artifact,
            "passed": self.passed,
            "counts": dict(self.counts),
            "failing": [
                {**finding.__dict__, "artifact": self.artifact} for finding in self.failing
            ],
            "dropped": dropped,
            "expired_ignores": list(self.expired_ignores),
            "ignored": [finding.identifier for finding in self.ignored],
            "unfixed_skipped": self.unfixed_skipped,
            "notes": list(self.notes),
            "report": self.report_file,
        }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _items(result: Mapping[str, object], key: str, artifact: str) -> list[Mapping[str, object]]:
    """A result's list of findings; a report of another shape fails closed, never crashes."""
    value = result.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ToolUnavailable(f"trivy's report for {artifact} has {key} of an unknown shape")
    return value


def parse_report(raw: str, artifact: str) -> list[Finding]:
    """Trivy's JSON report (SchemaVersion 2) as findings; anything else fails closed."""
    if not raw.strip():
        raise ToolUnavailable(f"trivy produced no report for {artifact}: the scan did not happen")
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ToolUnavailable(f"trivy's report for {artifact} is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ToolUnavailable(f"trivy's report for {artifact} is not a JSON object")
    version = document.get("SchemaVersion")
    if version != SUPPORTED_SCHEMA_VERSION:
        raise ToolUnavailable(
            f"trivy's report for {artifact} has SchemaVersion {version!r}; "
            f"only {SUPPORTED_SCHEMA_VERSION} is understood"
        )
    findings: list[Finding] = []
    results = document.get("Results") or []
    if not isinstance(results, list):
        raise ToolUnavailable(f"trivy's report for {artifact} has Results of an unknown shape")
    for result in results:
        if not isinstance(result, dict):
            continue
        target = _text(result.get("Target"))
        for item in _items(result, "Vulnerabilities", artifact):
            findings.append(
                Finding(
                    "vulnerability",
                    _text(item.get("VulnerabilityID")),
                    _text(item.get("Severity")).upper() or "UNKNOWN",
                    target,
                    _text(item.get("Title")),
                    _text(item.get("PkgName")),
                    _text(item.get("InstalledVersion")),
                    _text(item.get("FixedVersion")),
                )
            )
        for item in _items(result, "Secrets", artifact):
            findings.append(
                Finding(
                    "secret",
                    _text(item.get("RuleID")),
                    _text(item.get("Severity")).upper() or "UNKNOWN",
                    f"{target}:{item.get('StartLine', '?')}",
                    _text(item.get("Title")),
                )
            )
        for item in _items(result, "Misconfigurations", artifact):
            if _text(item.get("Status")) == "PASS":
                continue
            findings.append(
                Finding(
                    "misconfiguration",
                    _text(item.get("ID")) or _text(item.get("AVDID")),
                    _text(item.get("Severity")).upper() or "UNKNOWN",
                    target,
                    _text(item.get("Title")),
                )
            )
    return findings


def _date(value: object, source: Path, identifier: str) -> dt.date | None:
    """An ignore entry's expiry: a YYYY-MM-DD date, or none."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InputError(
            f"{source}: the expiry of {identifier!r} is not a date like 2026-12-31: {value!r}"
        ) from None


def _text_of(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None


def _plain_ignores(path: Path) -> list[IgnoreEntry]:
    """``.trivyignore``: one ``ID [exp:YYYY-MM-DD]`` per line, ``#`` comments."""
    entries = []
    for number, line in enumerate(_text_of(path).splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        expiry = next((w.removeprefix("exp:") for w in words[1:] if w.startswith("exp:")), None)
        entries.append(IgnoreEntry(words[0], _date(expiry, Path(f"{path}:{number}"), words[0])))
    return entries


def _structured_ignores(path: Path) -> list[IgnoreEntry]:
    """``.trivyignore.yaml``: sections of ``{id, statement, expired_at}`` entries."""
    import yaml

    expected = "a mapping of vulnerabilities/secrets/misconfigurations to lists of {id: ...}"
    try:
        document = yaml.safe_load(_text_of(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}: not valid YAML{where}; expected {expected}") from None
    if document is None:
        return []
    if not isinstance(document, dict):
        raise InputError(f"{path}: is a {type(document).__name__}; expected {expected}")
    entries = []
    for section in ("vulnerabilities", "secrets", "misconfigurations"):
        items = document.get(section) or []
        if not isinstance(items, list):
            raise InputError(f"{path}: {section} must be a list of entries like {{id: CVE-...}}")
        for index, item in enumerate(items):
            identifier = item.get("id") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or not identifier.strip():
                raise InputError(f"{path}: {section}[{index}] needs an id, like id: CVE-2024-1234")
            entries.append(
                IgnoreEntry(
                    identifier,
                    _date(item.get("expired_at"), path, identifier),
                    str(item.get("statement") or ""),
                )
            )
    return entries


def load_ignores(directory: Path) -> list[IgnoreEntry]:
    """Entries of ``.trivyignore`` and ``.trivyignore.yaml``; a malformed file is an
    ``InputError`` naming the file (and line or key), never a traceback."""
    entries: list[IgnoreEntry] = []
    if (directory / ".trivyignore").is_file():
        entries += _plain_ignores(directory / ".trivyignore")
    if (directory / ".trivyignore.yaml").is_file():
        entries += _structured_ignores(directory / ".trivyignore.yaml")
    return entries


def apply_policy(
    artifact: str,
    findings: Iterable[Finding],
    policy: ScanPolicy,
    ignores: Sequence[IgnoreEntry],
    today: dt.date,
) -> ScanReport:
    """The gate: findings at the policy's severities, minus unfixed (if asked) and ignored."""
    findings = list(findings)
    counts = Counter(finding.severity for finding in findings)
    active = {entry.identifier for entry in ignores if entry.active(today)}
    expired = sorted({entry.identifier for entry in ignores if not entry.active(today)})
    failing: list[Finding] = []
    ignored: list[Finding] = []
    unfixed: list[Finding] = []
    for finding in findings:
        if finding.severity not in policy.severities:
            continue
        if finding.identifier in active:
            ignored.append(finding)
        elif policy.ignore_unfixed and finding.kind == "vulnerability" and not finding.fixed:
            unfixed.append(finding)
        else:
            failing.append(finding)
    return ScanReport(
        artifact,
        {severity: counts.get(severity, 0) for severity in SEVERITIES},
        tuple(failing),
        ignored=tuple(ignored),
        unfixed=tuple(unfixed),
        expired_ignores=tuple(expired),
    )


def image_scan_argv(
    trivy: str, image: str, policy: ScanPolicy, output: Path, empty_ignore_file: Path
) -> tuple[str, ...]:
    """Everything, as JSON, without Trivy's own filtering: the policy is applied in Python."""
    scanners = [name for name, on in (("vuln", policy.vulnerabilities), ("secret", True)) if on]
    return (
        trivy, "image",
        "--format", "json",
        "--output", str(output),
        "--scanners", ",".join(scanners),
        "--severity", ",".join(SEVERITIES),
        "--ignorefile", str(empty_ignore_file),
        "--exit-code", "0",
        "--quiet",
        *((f"--db-repository={policy.db_repository}",) if policy.db_repository else ()),
        image,
    )  # fmt: skip


def config_scan_argv(
    trivy: str, path: Path, output: Path, empty_ignore_file: Path
) -> tuple[str, ...]:
    """Misconfigurations (Dockerfile, Helm chart) with Trivy's built-in checks, offline."""
    return (
        trivy, "config",
        "--format", "json",
        "--output", str(output),
        "--severity", ",".join(SEVERITIES),
        "--ignorefile", str(empty_ignore_file),
        "--exit-code", "0",
        "--quiet",
        str(path),
    )  # fmt: skip
