"""The image tasks' flow: tags -> build -> scan -> login -> publish -> verify -> release record.

No public tag ever points at an unscanned image: a single-platform image is built and loaded,
scanned locally, then pushed; a multi-platform one is pushed by digest without tags, scanned
by digest, and only then tagged in the registry (``buildx imagetools create``).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.ci import on_github_actions
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import CommandFailed, InputError
from aegis_delivery.release import images, registry, sbom, scan_gate
from aegis_delivery.release.context import BuildContext, detect
from aegis_delivery.release.record import ReleaseImage, ReleaseRecord, ScanVerdict, Source
from aegis_delivery.release.tags import TagDecision, decide, image_references
from aegis_delivery.release.trivy import ScanReport
from aegis_delivery.runner import Runner
from aegis_delivery.tools import require
from aegis_delivery.validation import choice, platforms

WORK_DIRECTORY = ".aegis"


@dataclass(frozen=True)
class ImagePlan:
    """Everything the image tasks decide before running anything."""

    context: BuildContext
    decision: TagDecision
    repository: str  # OWNER/REPO
    references: Mapping[str, tuple[str, ...]]
    builds: tuple[images.BuildRequest, ...]

    @property
    def tag(self) -> str:
        """The release's own tag (the tag module's rule)."""
        return self.decision.primary

    def document(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "tags": list(self.decision.tags),
            "publish": self.decision.publish,
            "reason": self.decision.reason,
            "sha": self.context.source_sha,
            "ref": self.context.ref,
            "images": {app: list(refs) for app, refs in self.references.items()},
        }


def repository_of(config: DeliveryConfig, context: BuildContext) -> str:
    return (context.repository or config.repository).lower()


def commit_time(root: Path, sha: str) -> str:
    """The commit's time: a deterministic `created` label, so a no-op rebuild is a no-op."""
    result = subprocess.run(  # noqa: S603 - fixed argv, read-only
        ["git", "show", "-s", "--format=%cI", sha],  # noqa: S607
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    return now()


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def plan_images(
    config: DeliveryConfig,
    *,
    apps: Sequence[str] = (),
    tag: str | None = None,
    platform: str | None = None,
    ca_bundle: str | None = None,
    build_args: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    context: BuildContext | None = None,
) -> ImagePlan:
    """Validate every input and decide tags, references and builds; runs nothing."""
    env = os.environ if environ is None else environ
    chosen = tuple(choice(app, config.apps, what="app") for app in apps) or tuple(config.apps)
    chosen_platforms = platforms(platform) if platform else None
    context = context or detect(config.root, env)
    decision = decide(context, config.default_branch, tag, config.release_aliases)
    repository = repository_of(config, context)
    references = image_references(config.registry, repository, chosen, decision.tags)
    options = images.BuildOptions(
        apps=chosen,
        platforms=chosen_platforms,
        ca_bundle=images.resolve_ca_bundle(ca_bundle, env, config.build.ca_bundle_env),
        cache=config.build.cache,
        ci=on_github_actions(env),
        created=commit_time(config.root, context.source_sha),
        output_directory=config.root / WORK_DIRECTORY,
        extra_build_args=images.parse_build_args(build_args, tuple(config.apps)),
    )
    builds = images.plan_builds(config, context, decision, options, repository)
    return ImagePlan(context, decision, repository, references, tuple(builds))


def build(runner: Runner, plan: ImagePlan) -> list[images.BuildOutcome]:
    if not plan.decision.publish:
        runner.console.info(f"{plan.decision.reason}")
    return images.build_all(plan.builds, runner)


def scan_targets(
    plan: ImagePlan, outcomes: Sequence[images.BuildOutcome]
) -> list[scan_gate.ScanTarget]:
    """Loaded images by tag; multi-platform ones by the digest just pushed; plus the Dockerfiles."""
    digests = {outcome.app: outcome.digest for outcome in outcomes}
    targets = []
    for request in plan.builds:
        if request.push_by_digest:
            name = f"{request.repository}@{digests.get(request.app) or '<digest>'}"
        else:
            name = request.tags[0]
        targets.append(scan_gate.ScanTarget("image", name))
    for request in plan.builds:
        targets.append(scan_gate.ScanTarget("config", str(request.dockerfile)))
    return targets


def scan(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    outcomes: Sequence[images.BuildOutcome],
    sarif_directory: Path | None = None,
) -> list[ScanReport]:
    """The scan gate over what was built: reports, then exit 3 on findings."""
    reports = scan_gate.scan(
        runner,
        config,
        scan_targets(plan, outcomes),
        config.root / WORK_DIRECTORY / "scan",
        sarif_directory,
    )
    scan_gate.raise_on_findings(reports)
    return reports


def build_and_scan(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    build: bool,
    sarif: Path | None = None,
) -> list[ScanReport]:
    """`invoke scan`: scan what was built before (or build it now) and apply the gate."""
    outcomes = images.build_all(plan.builds, runner) if build else []
    return scan(runner, config, plan, outcomes, sarif)


def _published_digest(
    runner: Runner, config: DeliveryConfig, request: images.BuildRequest, built: str | None
) -> str | None:
    """Publish one app's tags; the digest every tag now serves (None when nothing ran)."""
    attempts, base = config.build.push_attempts, config.build.retry_base_seconds
    acknowledged: set[str] = set()
    if request.push_by_digest:
        source = f"{request.repository}@{built or '<digest>'}"
        registry.publish_from_digest(runner, source, request.tags, attempts, base)
        acknowledged |= {built} if built else set()
    else:
        for reference in request.tags:
            digest = registry.push(runner, reference, attempts, base)
            acknowledged |= {digest} if digest else set()
    if len(acknowledged) > 1:
        raise CommandFailed(f"push of {request.app}", 1, f"inconsistent digests {acknowledged}")
    expected = next(iter(acknowledged), None)
    for reference in request.tags:
        served = registry.remote_digest(runner, reference, attempts, base)
        if served is not None and served != expected:
            raise CommandFailed(
                f"verify {reference}",
                1,
                f"the registry serves {served} but {expected} was just pushed: "
                "the tag was moved by a concurrent push",
            )
    return expected


def release(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    environ: Mapping[str, str] | None = None,
    sarif_directory: Path | None = None,
    reason: str | None = None,
) -> ReleaseRecord:
    """Build, scan, publish, verify, then write the release record once, atomically.

    Refusals (nothing to publish, no credentials) happen before any work. In a dry run the
    record is the plan (no digests) and is printed, not written.
    """
    env = os.environ if environ is None else environ
    if not plan.decision.publish and not force:
        raise InputError(
            f"nothing is published from this context ({plan.decision.reason}); "
            "pass --force to publish its tags anyway"
        )
    credentials = registry.credentials(config.registry, env)
    runner.masker.add(credentials.password)
    retry = (config.build.push_attempts, config.build.retry_base_seconds)
    multi_platform = any(request.push_by_digest for request in plan.builds)
    if multi_platform:  # pushing by digest needs the login before the build
        registry.login(runner, credentials, *retry)
    outcomes = build(runner, plan)
    scan(runner, config, plan, outcomes, sarif_directory)
    if not multi_platform:
        registry.login(runner, credentials, *retry)
    built = {outcome.app: outcome.digest for outcome in outcomes}
    trivy = str(require("trivy", config.root))
    published: dict[str, ReleaseImage] = {}
    for request in plan.builds:
        digest = _published_digest(runner, config, request, built.get(request.app))
        attached = sbom.publish(
            runner, trivy, request.repository, digest, config.root / WORK_DIRECTORY / "sbom",
            credentials,
        )  # fmt: skip
        published[request.app] = ReleaseImage(
            repository=request.repository,
            digest=digest,
            platforms=request.platforms,
            tags=request.tags,
            scan=ScanVerdict(passed=True, vulnerability_scanning=config.scan.vulnerabilities),
            sbom=attached,
        )
    record = ReleaseRecord(
        tag=plan.tag,
        tags=plan.decision.tags,
        source=Source(
            sha=plan.context.source_sha.lower(),
            ref=plan.context.ref,
            event=plan.context.event,
            repository=plan.repository,
        ),
        actor=plan.context.actor,
        created=now(),
        reason=reason,
        images=published,
    )
    runner.write_file(config.build.release_file, record.text(), "record the release")
    return record
