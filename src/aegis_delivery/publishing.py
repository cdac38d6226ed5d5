"""The image tasks' flow: tags -> build -> scan -> login -> publish -> verify digests.

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

from aegis_delivery import images, registry, scanning
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.context import BuildContext, detect
from aegis_delivery.errors import CommandFailed, InputError
from aegis_delivery.runner import Runner
from aegis_delivery.scan import ScanReport
from aegis_delivery.tags import TagDecision, decide, image_references
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

    def document(self) -> dict[str, object]:
        return {
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
    decision = decide(context, config.default_branch, tag)
    repository = repository_of(config, context)
    references = image_references(config.registry, repository, chosen, decision.tags)
    options = images.BuildOptions(
        apps=chosen,
        platforms=chosen_platforms,
        ca_bundle=images.resolve_ca_bundle(ca_bundle, env, config.build.ca_bundle_env),
        cache=config.build.cache,
        ci=env.get("CI", "").lower() == "true" and env.get("GITHUB_ACTIONS") == "true",
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
) -> list[scanning.ScanTarget]:
    """Loaded images by tag; multi-platform ones by the digest just pushed; plus the Dockerfiles."""
    digests = {outcome.app: outcome.digest for outcome in outcomes}
    targets = []
    for request in plan.builds:
        if request.push_by_digest:
            name = f"{request.repository}@{digests.get(request.app) or '<digest>'}"
        else:
            name = request.tags[0]
        targets.append(scanning.ScanTarget("image", name))
    for request in plan.builds:
        targets.append(scanning.ScanTarget("config", str(request.dockerfile)))
    return targets


def push(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    environ: Mapping[str, str] | None = None,
    sarif_directory: Path | None = None,
) -> tuple[list[registry.PushedImage], list[ScanReport]]:
    """Build, scan, publish, verify; returns what was pushed. Refusals happen before any work."""
    env = os.environ if environ is None else environ
    if not plan.decision.publish and not force:
        raise InputError(
            f"nothing is published from this context ({plan.decision.reason}); "
            "pass --force to publish its tags anyway"
        )
    credentials = registry.credentials(config.registry, env)
    runner.masker.add(credentials.password)
    attempts, base = config.build.push_attempts, config.build.retry_base_seconds
    multi_platform = any(request.push_by_digest for request in plan.builds)
    if multi_platform:  # pushing by digest needs the login before the build
        registry.login(runner, credentials)
    outcomes = build(runner, plan)
    reports = scanning.scan(
        runner,
        config,
        scan_targets(plan, outcomes),
        config.root / WORK_DIRECTORY / "scan",
        sarif_directory,
    )
    scanning.raise_on_findings(reports)
    if not multi_platform:
        registry.login(runner, credentials)
    digests = {outcome.app: outcome.digest for outcome in outcomes}
    pushed: list[registry.PushedImage] = []
    for request in plan.builds:
        acknowledged: set[str] = set()
        if request.push_by_digest:
            source = f"{request.repository}@{digests.get(request.app) or '<digest>'}"
            registry.publish_from_digest(runner, source, request.tags, attempts, base)
            if digests.get(request.app):
                acknowledged.add(str(digests[request.app]))
        else:
            for reference in request.tags:
                digest = registry.push(runner, reference, attempts, base)
                if digest:
                    acknowledged.add(digest)
        if runner.dry_run:
            for reference in request.tags:
                registry.remote_digest(runner, reference, attempts, base)
            continue
        if len(acknowledged) != 1:
            raise CommandFailed(f"push of {request.app}", 1, f"inconsistent digests {acknowledged}")
        expected = acknowledged.pop()
        for reference in request.tags:
            served = registry.remote_digest(runner, reference, attempts, base)
            if served != expected:
                raise CommandFailed(
                    f"verify {reference}",
                    1,
                    f"the registry serves {served} but {expected} was just pushed: "
                    "the tag was moved by a concurrent push",
                )
        pushed.append(registry.PushedImage(request.app, request.repository, expected, request.tags))
    if pushed:
        registry.write_digests(config.build.digests_file, plan.decision.tags[-1], pushed)
    return pushed, reports
