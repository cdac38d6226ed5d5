"""The audit trail: every revision of a release with its tag, digests, who and why.

Read from the cluster only: ``helm history`` for revisions, times and statuses, each
revision's values (``helm get values --revision N``: the tag and the digests the toolkit
set), the description the toolkit wrote (``tag=... sha=... by=WHO reason=WHY``), and, for
rollbacks (helm takes no description there), the toolkit's ``aegis-audit-RELEASE-vN``
ConfigMaps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.access import Cluster, history
from aegis_delivery.cluster.description import RevisionNote
from aegis_delivery.runner import Runner


@dataclass(frozen=True)
class AuditEntry:
    revision: int
    updated: str
    status: str
    tag: str | None
    digests: Mapping[str, str]
    by: str | None
    reason: str | None
    description: str
    promoted_from: str | None = None

    def document(self) -> dict[str, object]:
        return {**self.__dict__, "digests": dict(self.digests)}


def deployed_values(raw: str) -> tuple[str | None, dict[str, str]]:
    """(tag, {app-key: digest}) from ``helm get values -o json``; {} values read as none."""
    values = helm_cli.parse_values(raw)
    global_values = values.get("global")
    tag = global_values.get("imageTag") if isinstance(global_values, dict) else None
    digests: dict[str, str] = {}
    apps = values.get("apps")
    for key, app in (apps.items() if isinstance(apps, dict) else ()):
        image = app.get("image") if isinstance(app, dict) else None
        digest = image.get("digest") if isinstance(image, dict) else None
        if isinstance(digest, str) and digest:
            digests[str(key)] = digest
    return (str(tag) if tag else None), digests


@dataclass
class AuditTrail:
    release: str
    namespace: str
    entries: list[AuditEntry] = field(default_factory=list)

    def document(self) -> dict[str, object]:
        return {
            "release": self.release,
            "namespace": self.namespace,
            "revisions": [entry.document() for entry in self.entries],
        }


def _audit_records(runner: Runner, cluster: Cluster) -> dict[int, dict[str, str]]:
    argv = (str(cluster.kubectl), *kube.kubectl_flags(cluster.target), "get", "configmaps",
            "--selector", f"{kube.AUDIT_LABEL}=true", "--output", "json")  # fmt: skip
    result = runner.run(cluster.read(argv, "rollback audit records"), check=False)
    found: dict[int, dict[str, str]] = {}
    if not (result.ran and result.ok):
        return found
    try:
        items = json.loads(result.stdout).get("items") or []
    except (ValueError, AttributeError):
        return found
    for item in items:
        data = item.get("data") if isinstance(item, dict) else None
        if isinstance(data, dict) and str(data.get("revision", "")).isdigit():
            found[int(data["revision"])] = {str(k): str(v) for k, v in data.items()}
    return found


def audit_trail(runner: Runner, cluster: Cluster) -> AuditTrail:
    """Newest revision first."""
    trail = AuditTrail(cluster.target.release, cluster.target.namespace)
    audits = _audit_records(runner, cluster)
    for revision in sorted(history(runner, cluster), key=lambda r: -r.revision):
        step = cluster.read(
            helm_cli.get_values_argv(cluster.helm, cluster.target, revision.revision),
            f"values of revision {revision.revision}",
        )
        result = runner.run(step, check=False)
        tag, digests = deployed_values(result.stdout) if result.ran and result.ok else (None, {})
        described = revision.description
        audit = audits.get(revision.revision, {})
        note = RevisionNote.parse(described)
        by = audit.get("by") or note.by
        reason = audit.get("reason") or note.reason
        trail.entries.append(
            AuditEntry(
                revision=revision.revision,
                updated=revision.updated,
                status=revision.status,
                tag=tag or note.tag,
                digests=digests,
                by=by,
                reason=reason,
                description=described,
                promoted_from=note.promoted_from,
            )
        )
    return trail
