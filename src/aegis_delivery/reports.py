"""Typed results turned into what people and machines read: tables and JSON documents."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.console import Console
from aegis_delivery.errors import InputError, ToolUnavailable
from aegis_delivery.session import TaskSession
from aegis_delivery.tools import ToolStatus, check_tools

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aegis_delivery.cluster.deploy import DeployOutcome
    from aegis_delivery.cluster.diff import ManifestDiff
    from aegis_delivery.cluster.history import AuditTrail
    from aegis_delivery.cluster.inspect import StatusReport
    from aegis_delivery.preview_flow import PreviewList, PreviewOutcome
    from aegis_delivery.release.attestation import Inspection
    from aegis_delivery.release.keygen import NewKey
    from aegis_delivery.release.publish import ImagePlan
    from aegis_delivery.release.record import ReleaseRecord, StagedPlatform
    from aegis_delivery.release.sbom import FetchedSbom
    from aegis_delivery.release.trivy import ScanReport
    from aegis_delivery.release.trust import CaBundle
    from aegis_delivery.verification import VerifyOutcome


def config_document(config: DeliveryConfig) -> dict[str, Any]:
    """The settings as plain data, paths relative to the repository."""

    def relative(path: object) -> str:
        return str(path).removeprefix(str(config.root) + "/")

    return {
        "source": str(config.source),
        "registry": config.registry,
        "repository": config.repository,
        "default_branch": config.default_branch,
        "chart": relative(config.chart),
        "release": config.release,
        "gates": {
            "annotation_coverage": config.gates.annotation_coverage,
            "annotation_paths": list(config.gates.annotation_paths),
        },
        "apps": {
            app.name: {
                "context": relative(app.context),
                "dockerfile": relative(app.dockerfile),
                "platforms": list(app.platforms),
            }
            for app in config.apps.values()
        },
        "environments": {
            env.name: {
                "namespace": env.namespace,
                "kube_context": env.kube_context,
                "timeout": env.timeout.text,
                "history_max": env.history_max,
                "lock_wait": env.lock_wait.text,
            }
            for env in config.environments.values()
        },
        "preview": _preview_settings(config),
    }


def _preview_settings(config: DeliveryConfig) -> dict[str, Any] | None:
    """Every [tool.aegis.preview] setting as written (durations as their text)."""
    if config.preview is None:
        return None
    values = {f.name: getattr(config.preview, f.name) for f in fields(config.preview)}
    return {key: getattr(value, "text", value) for key, value in values.items()}


def show_config(console: Console, config: DeliveryConfig) -> None:
    document = config_document(config)
    if console.json_mode:
        console.emit_json(document)
        return
    console.info(f"settings from {document['source']}")
    console.info(f"images: {config.registry}/{config.repository}/<app>; chart {document['chart']}")
    console.table(
        "apps",
        ("app", "context", "dockerfile", "platforms"),
        [
            (name, app["context"], app["dockerfile"], ",".join(app["platforms"]))
            for name, app in document["apps"].items()
        ],
    )
    console.table(
        "environments",
        ("environment", "namespace", "kube context", "timeout", "history max"),
        [
            (name, env["namespace"], env["kube_context"], env["timeout"], str(env["history_max"]))
            for name, env in document["environments"].items()
        ],
    )


def tools_document(
    statuses: list[ToolStatus], trust: CaBundle | None = None, trust_problem: str | None = None
) -> dict[str, Any]:
    return {
        "tools": {
            status.name: {
                "ok": status.ok,
                "path": str(status.path) if status.path else None,
                "version": status.version,
                "needed_for": status.needed_for,
            }
            for status in statuses
        },
        "ca_bundle": {
            "ok": trust_problem is None,
            "path": str(trust.path) if trust else None,
            "source": trust.source if trust else None,
            "problem": trust_problem,
        },
    }


def show_tools(session: TaskSession, ca_bundle: str | None = None) -> None:
    """Report every tool and the CA bundle image builds would trust; unavailable tools exit
    'unavailable', an unusable bundle 'bad input' (as the build itself would)."""
    from aegis_delivery.release.trust import resolve_ca_bundle

    statuses = check_tools(session.runner, session.config.root)
    trust: CaBundle | None = None
    problem: InputError | None = None
    try:
        trust = resolve_ca_bundle(ca_bundle, os.environ, session.config.build.ca_bundle_env)
    except InputError as error:
        problem = error
    if session.console.json_mode:
        session.console.emit_json(
            tools_document(statuses, trust, problem.message if problem else None)
        )
    else:
        session.console.table(
            "tools",
            ("tool", "version", "needed for", "path"),
            [(s.name, s.version, s.needed_for, str(s.path or "")) for s in statuses],
        )
        if trust:
            session.console.info(f"image builds trust the CA bundle {trust.describe()}")
        elif problem is None:
            session.console.info("image builds get no CA bundle (none set, no system store)")
    missing = [status.name for status in statuses if not status.ok]
    if missing:
        raise ToolUnavailable(
            f"not available: {', '.join(missing)} (scripts/install-tools installs the pinned ones)"
        )
    if problem:
        raise problem


def show_tags(console: Console, plan: ImagePlan) -> None:
    document = plan.document()
    console.summarize("Image tags", document)
    if console.json_mode:
        console.emit_json(document)
        return
    verdict = "published" if plan.decision.publish else "NOT published (build only)"
    console.info(f"{plan.decision.reason}; {verdict}")
    rows = [(app, reference) for app, refs in plan.references.items() for reference in refs]
    console.table(
        f"images for {plan.context.ref} @ {plan.context.source_sha[:7]}", ("app", "reference"), rows
    )


def show_scan(console: Console, found: list[ScanReport], vulnerabilities: bool) -> None:
    from aegis_delivery.release.scan_gate import scan_document

    document = scan_document(found, vulnerabilities)
    console.summarize("Scan", document)
    if console.json_mode:
        console.emit_json(document)


def show_release(console: Console, record: ReleaseRecord, file: Path) -> None:
    """What push published: the release record (or, in a dry run, its plan)."""
    document = {"release_file": str(file), **record.document()}
    console.summarize(f"Release {record.tag}", document)
    if console.json_mode:
        console.emit_json(document)
        return
    for app, image in record.images.items():
        console.success(f"{app}: {', '.join(image.tags)} -> {image.digest or '(planned)'}")
        for platform, digest in image.platform_digests.items():
            console.info(f"{app} {platform}: {digest}")
    console.info(f"release record: {file}")


def show_sbom(console: Console, fetched: FetchedSbom, output: str | None) -> None:
    """The SBOM itself on stdout (unless written to a file or --json), a summary for people."""
    summary = {**fetched.summary(), "output": output}
    if console.json_mode:
        console.emit_json(summary)
        return
    if output is None:
        console.data(fetched.document.decode())
    console.success(
        f"{fetched.app}: {summary['format']}, {summary['components']} components, "
        f"attached to {fetched.image} as {fetched.manifest}"
    )


def show_provenance(console: Console, found: Inspection) -> None:
    """The statement as stored and the verdict; a refusal is exit 6 (``Untrusted``), its
    failure document carrying the same fields."""
    import json

    from aegis_delivery.errors import Untrusted

    document = found.document()
    if found.refused is not None:
        if found.statement is not None and not console.json_mode:
            console.data(json.dumps(found.statement, indent=2, sort_keys=True))
        failure = Untrusted(found.refused)
        failure.details.update(document)
        raise failure
    console.summarize(f"provenance of {found.app}", document)
    if console.json_mode:
        console.emit_json(document)
        return
    if found.statement is not None:
        console.data(json.dumps(found.statement, indent=2, sort_keys=True))
    if found.verdict is not None:
        verdict = found.verdict
        console.success(
            f"{found.app}: provenance verified for {found.environment} ({verdict.key}; "
            f"{verdict.repository} {verdict.ref} at {verdict.commit[:7]}; {verdict.builder})"
        )


def show_keygen(console: Console, made: NewKey) -> None:
    """Where the pair went and what to do with each half; the private half never shown."""
    if console.json_mode:
        console.emit_json(made.document())
        return
    console.data(made.public_pem.rstrip())
    console.success(f"private key: {made.private_key} (mode 0600); public key: {made.public_key}")
    console.info(
        f"store the private key as the {made.signing_key_env} secret (e.g. `gh secret set "
        f"{made.signing_key_env} < {made.private_key}`), then delete it here"
    )
    if not made.trusted:
        console.info(f"commit {made.public_key} and list it in [tool.aegis.trust] keys")


def show_published(
    console: Console,
    result: ReleaseRecord | Sequence[StagedPlatform] | DeployOutcome,
    release_file: Path,
) -> None:
    """What push (a release, or a platform job's staged images) or promote produced."""
    from aegis_delivery.cluster.deploy import DeployOutcome
    from aegis_delivery.release.record import ReleaseRecord

    if isinstance(result, DeployOutcome):
        show_outcome(console, result)
    elif isinstance(result, ReleaseRecord):
        show_release(console, result, release_file)
    else:
        show_staged(console, result)


def show_staged(console: Console, staged: Sequence[StagedPlatform]) -> None:
    """What a platform job pushed under its staging tags, for the merge job."""
    document = {"staged": [image.model_dump(mode="json") for image in staged]}
    console.summarize("Staged platform images", document)
    if console.json_mode:
        console.emit_json(document)
        return
    for image in staged:
        console.success(f"{image.app} {image.platform}: {image.repository}@{image.digest}")


def show_diff(console: Console, environment: str, diff: ManifestDiff) -> None:
    if console.json_mode:
        console.summarize(f"Deploy diff ({environment})", {"changes": diff.summary(50)})
        console.emit_json({"environment": environment, "empty": diff.empty, **diff.document()})
        return
    diff.show(console, environment, limit=1000)


def show_history(console: Console, trail: AuditTrail) -> None:
    document = trail.document()
    console.summarize(f"History of {trail.release} in {trail.namespace}", document)
    if console.json_mode:
        console.emit_json(document)
        return
    rows = [
        (
            str(entry.revision), entry.updated[:19], entry.status, entry.tag or "",
            " ".join(f"{app}={digest.removeprefix('sha256:')[:12]}"
                     for app, digest in sorted(entry.digests.items())),
            entry.by or "", entry.reason or entry.promoted_from or "",
        )
        for entry in trail.entries
    ]  # fmt: skip
    console.table(
        f"{trail.release} in {trail.namespace}",
        ("revision", "time", "status", "tag", "digests", "who", "why"),
        rows,
    )


def show_outcome(console: Console, outcome: DeployOutcome | StatusReport | VerifyOutcome) -> None:
    """A deploy, rollback, verify or status result: JSON for machines, lines for people."""
    from aegis_delivery.cluster.deploy import DeployOutcome
    from aegis_delivery.cluster.inspect import StatusReport

    document = outcome.document()
    console.summarize(outcome.environment, document)
    if console.json_mode:
        console.emit_json(document)
        return
    if isinstance(outcome, StatusReport):
        for pod in outcome.pods:
            state = "ready" if pod.ready else pod.problem or "not ready"
            console.info(f"pod {pod.name}: {state} {pod.image}")
        console.info(f"release {outcome.release} in {outcome.namespace}: {outcome.status}")
        return
    report = outcome.verify if isinstance(outcome, DeployOutcome) else outcome.report
    for check in report.checks if report is not None else []:
        mark = {True: "ok", False: "FAILED"}.get(check["ok"], "planned")  # type: ignore[call-overload]
        console.info(f"{mark}: {check['check']}: {check['detail']}")
    if isinstance(outcome, DeployOutcome) and outcome.revision:
        console.success(
            f"{outcome.environment}: revision {outcome.revision} ({outcome.description})"
        )


def show_preview(console: Console, outcome: PreviewOutcome) -> None:
    """A preview created, refreshed, skipped (a fork) or removed: its URL first."""
    document = outcome.document()
    console.summarize(f"Preview of #{outcome.number}", document)
    if console.json_mode:
        console.emit_json(document)
        return
    if outcome.deployed is not None:
        show_outcome(console, outcome.deployed)
    planned = " (planned: dry run)" if outcome.dry_run else ""
    if outcome.status in ("created", "refreshed"):
        console.success(
            f"preview #{outcome.number} {outcome.status}{planned}: {outcome.url} (namespace "
            f"{outcome.namespace}, expires {outcome.expires_at})"
        )
    elif outcome.status == "removed":
        console.success(f"preview #{outcome.number} removed{planned}: namespace "
                        f"{outcome.namespace} and its release")  # fmt: skip
    else:
        console.info(outcome.note)


def show_previews(console: Console, found: PreviewList) -> None:
    """Every preview (`preview-list`) or what gc did with each (`preview-gc`)."""
    document = found.document()
    console.summarize("Previews", document)
    if console.json_mode:
        console.emit_json(document)
        return
    rows = found.rows()
    if not rows:
        console.info("no previews")
        return
    column = "gc" if found.decisions else "status"
    console.table("previews", ("pr", "sha", "age", "expires", "url", column), rows)
    if found.decisions:
        removed = sum(d.remove for d in found.decisions)
        console.success(f"preview-gc: {removed} removed, {len(found.decisions) - removed} kept")
