"""Asking an environment, never changing it: verify, status, diff and history, as typed
reports. Every command is a read-only step, so a dry run asks them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.access import Cluster, connect, connect_guarded, history
from aegis_delivery.cluster.diff import ManifestDiff, compare, parse_manifests
from aegis_delivery.cluster.history import AuditTrail, audit_trail
from aegis_delivery.cluster.values import (
    chosen_release,
    deployment_values,
    environment_values,
    merged,
    published_repository,
)
from aegis_delivery.cluster.verify import verify_cluster
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import CommandFailed
from aegis_delivery.release.record import ReleaseRecord, read_optional
from aegis_delivery.runner import Runner
from aegis_delivery.verification import PodVerdict, VerifyReport, parse_pods


@dataclass(frozen=True)
class StatusReport:
    """`invoke status`: the release's state and history, and its pods."""

    environment: str
    release: str
    namespace: str
    status: str | None
    history: tuple[helm_cli.Revision, ...]
    pods: tuple[PodVerdict, ...]

    def document(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "release": self.release,
            "namespace": self.namespace,
            "status": self.status,
            "history": [revision.__dict__ for revision in self.history],
            "pods": [pod.as_dict() for pod in self.pods],
        }


def release_diff(
    runner: Runner,
    config: DeliveryConfig,
    cluster: Cluster,
    tag: str,
    record: ReleaseRecord | None,
    environ: Mapping[str, str],
    extra: Mapping[str, object] | None = None,
) -> ManifestDiff:
    """The objects this release would render against the live release's, as objects."""
    import yaml  # deferred: keeps `invoke --list` fast

    # The values go in on stdin (`--values=-`): no scratch file two diffs at once could share.
    repository = published_repository(config, environ)
    document = merged(deployment_values(config, tag, record, repository), extra or {})
    chart_values = [*environment_values(config, cluster.environment.name), Path("-")]
    argv = helm_cli.template_argv(cluster.helm, cluster.target, config.chart, chart_values)
    values = yaml.safe_dump(document)
    rendered = runner.run(cluster.read(argv, "render the new release", stdin=values))
    live = runner.run(
        cluster.read(helm_cli.get_manifest_argv(cluster.helm, cluster.target), "live manifests"),
        check=False,
    )
    if live.ran and not live.ok and not helm_cli.release_missing(live.stderr):
        raise CommandFailed("helm get manifest", live.returncode, live.stderr.strip())
    live_text = live.stdout if live.ran and live.ok else ""
    return compare(
        parse_manifests(live_text, "the live release"),
        parse_manifests(rendered.stdout, "the rendered release"),
    )


def verify(
    runner: Runner,
    config: DeliveryConfig,
    environment: str,
    environ: Mapping[str, str],
    record: ReleaseRecord | None = None,
) -> VerifyReport:
    """Verify an environment against the release record (digests checked when there is one)."""
    record = record or read_optional(config.build.release_file)
    cluster = connect(runner, config, environment, environ)
    if record is None:
        runner.console.warn(
            f"no release record at {config.build.release_file}: the pods' digests are not checked"
        )
    digests = record.digests() if record else {}
    return verify_cluster(runner, tuple(config.apps), cluster, digests)


def status(
    runner: Runner, config: DeliveryConfig, environment_name: str, environ: Mapping[str, str]
) -> StatusReport:
    """The release, its history, its pods: questions only."""
    cluster = connect(runner, config, environment_name, environ)
    target, kubectl = cluster.target, cluster.kubectl
    state = runner.run(
        cluster.read(helm_cli.status_argv(cluster.helm, target), "release status"), check=False
    )
    revisions = history(runner, cluster)
    pods = runner.run(cluster.read(kube.pods_argv(kubectl, target), "pods"), check=False)
    services = runner.run(
        cluster.read(kube.services_argv(kubectl, target), "services"), check=False
    )
    for line in services.stdout.strip().splitlines():
        runner.console.output_line(line)
    return StatusReport(
        environment=environment_name,
        release=target.release,
        namespace=target.namespace,
        status=helm_cli.parse_status(state.stdout) if state.ok and state.ran else None,
        history=tuple(revisions),
        pods=tuple(parse_pods(pods.stdout)) if pods.ok and pods.ran else (),
    )


def diff(
    runner: Runner,
    config: DeliveryConfig,
    environment: str,
    environ: Mapping[str, str],
    tag: str | None = None,
) -> ManifestDiff:
    """`invoke diff`: the release record (or an explicit tag) against what runs; no change."""
    config.environment(environment)
    chosen, record = chosen_release(runner, config, tag)
    cluster = connect_guarded(runner, config, environment, environ)
    return release_diff(runner, config, cluster, chosen, record, environ)


def audit(
    runner: Runner, config: DeliveryConfig, environment: str, environ: Mapping[str, str]
) -> AuditTrail:
    """`invoke history`: every revision with its tag, digests, who and why."""
    cluster = connect_guarded(runner, config, environment, environ)
    return audit_trail(runner, cluster)
