"""Promotion: deploy to the target exactly the digests that run, verified, in the source.
It reads the source cluster, re-verifies it, writes a promoted release record and hands it to
the deploy flow; nothing is rebuilt or re-tagged. It crosses the cluster's floor (reading one
environment, deploying another), so it stands beside the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aegis_delivery.ci import current_user
from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster.access import connect_guarded, history
from aegis_delivery.cluster.deploy import DeployOutcome, DeployRequest, deploy
from aegis_delivery.cluster.description import RevisionNote
from aegis_delivery.cluster.history import deployed_values
from aegis_delivery.cluster.values import published_repository, values_key
from aegis_delivery.cluster.verify import verify_cluster
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.prompts import Prompter
from aegis_delivery.release import attestation
from aegis_delivery.release.record import ReleaseImage, ReleaseRecord, ScanVerdict
from aegis_delivery.release.tags import image_repository
from aegis_delivery.runner import Runner


@dataclass(frozen=True)
class PromoteRequest:
    source: str
    target: str
    yes: bool = False
    reason: str | None = None
    record_only: bool = False  # CI's first half: read and verify the source, write the record
    allow_unverified: bool = False  # only where the target's policy allows it (recorded)


def promotable(
    runner: Runner, config: DeliveryConfig, request: PromoteRequest, environ: Mapping[str, str]
) -> ReleaseRecord:
    """What runs, verified, in the source environment, as a release record for the target."""
    cluster = connect_guarded(runner, config, request.source, environ)
    revisions = history(runner, cluster)
    current = max(revisions, key=lambda r: r.revision, default=None)
    if current is None or current.status != "deployed":
        state = (
            f"is {current.status} at revision {current.revision}" if current else "has no release"
        )
        raise InputError(
            f"{request.source} {state}: only a deployed, verified release can be promoted"
        )
    values = runner.run(
        cluster.read(
            helm_cli.get_values_argv(cluster.helm, cluster.target, current.revision),
            f"values of {request.source} revision {current.revision}",
        )
    )
    tag, by_key = deployed_values(values.stdout)
    digests = {app: by_key[values_key(app)] for app in config.apps if values_key(app) in by_key}
    unpinned = sorted(set(config.apps) - set(digests))
    if tag is None or unpinned:
        raise InputError(
            f"{request.source} revision {current.revision} does not run every app pinned by "
            f"digest (missing: {', '.join(unpinned) or 'the tag'}): deploy a release record "
            "there first; promotion never re-tags or rebuilds"
        )
    try:
        verify_cluster(runner, tuple(config.apps), cluster, digests)
    except AegisError as error:
        raise AegisError(
            f"{request.source} is not healthy, nothing was promoted: {error.message}"
        ) from None
    sha = RevisionNote.parse(current.description).sha
    if sha is None:  # never a made-up commit: the record would name one nobody built
        raise InputError(
            f"{request.source} revision {current.revision} carries no toolkit description "
            f"({current.description!r}): deploy a release record there first"
        )
    repository = published_repository(config, environ)
    return ReleaseRecord.promoted(
        tag=tag,
        source_environment=request.source,
        revision=current.revision,
        sha=sha,
        repository=repository,
        actor=current_user(environ),
        reason=request.reason,
        images={
            app: ReleaseImage(
                repository=image_repository(config.registry, repository, app),
                digest=digest,
                platforms=config.app(app).platforms,
                tags=(f"{image_repository(config.registry, repository, app)}:{tag}",),
                # Only `invoke push` publishes, and only what passed the scan gate.
                scan=ScanVerdict(passed=True, vulnerability_scanning=config.scan.vulnerabilities),
            )
            for app, digest in digests.items()
        },
    )


def promote(
    runner: Runner,
    config: DeliveryConfig,
    request: PromoteRequest,
    environ: Mapping[str, str],
    *,
    prompter: Prompter | None = None,
) -> DeployOutcome | ReleaseRecord:
    """Deploy to the target exactly the digests running and verified in the source."""
    config.environment(request.source)
    config.environment(request.target)
    attestation.check_override(config, request.target, request.allow_unverified)
    if request.source == request.target:
        raise InputError(f"--from and --to are both {request.source!r}: promote between two")
    record = promotable(runner, config, request, environ)
    runner.write_file(config.build.release_file, record.text(), "record the promoted release")
    if request.record_only:
        return record
    deploy_request = DeployRequest(
        request.target, yes=request.yes, reason=request.reason,
        allow_unverified=request.allow_unverified,
    )  # fmt: skip
    return deploy(runner, config, deploy_request, environ, prompter=prompter, record=record)
