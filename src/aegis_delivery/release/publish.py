"""The image tasks' flow: tags -> build -> scan -> login -> publish -> verify -> release record.

No public tag ever points at an unscanned image. Every build is one platform, loaded into the
engine and scanned there before anything is pushed. A single-platform image is then pushed
under its tags. A multi-platform image is built once per platform (concurrently; in CI each on
its own native runner), each platform pushed under a staging tag (the docker driver cannot
push by digest alone), and the release tags are then created on the index merged from those
digests (``buildx imagetools create``), checked to list exactly those platforms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery import clock
from aegis_delivery.ci import on_github_actions
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import CommandFailed, InputError
from aegis_delivery.release import buildx, images, registry, sbom, scan_gate
from aegis_delivery.release import provenance_publish as signed
from aegis_delivery.release.context import BuildContext, detect
from aegis_delivery.release.record import (
    ReleaseImage,
    ReleaseRecord,
    ScanVerdict,
    Source,
    StagedPlatform,
    read_staged,
)
from aegis_delivery.release.tags import TagDecision, decide, image_references, release_repository
from aegis_delivery.release.trivy import ScanReport
from aegis_delivery.release.trust import resolve_ca_bundle
from aegis_delivery.runner import Runner
from aegis_delivery.tools import require
from aegis_delivery.validation import choice, platforms


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
    stage: bool = False,
    no_cache: bool = False,
) -> ImagePlan:
    """Validate every input and decide tags, references and builds; runs nothing."""
    env = os.environ if environ is None else environ
    chosen = tuple(choice(app, config.apps, what="app") for app in apps) or tuple(config.apps)
    chosen_platforms = platforms(platform) if platform else None
    context = context or detect(config.root, env)
    decision = decide(context, config.default_branch, tag, config.release_aliases,
                      config.preview is not None)  # fmt: skip
    repository = release_repository(config.repository, context.repository)
    references = image_references(config.registry, repository, chosen, decision.tags)
    options = images.BuildOptions(
        apps=chosen,
        platforms=chosen_platforms,
        ca_bundle=resolve_ca_bundle(ca_bundle, env, config.build.ca_bundle_env),
        cache=config.build.cache,
        ci=on_github_actions(env),
        created=context.committed or clock.iso(),
        output_directory=config.work(),
        extra_build_args=images.parse_build_args(build_args, tuple(config.apps)),
        stage=stage,
        no_cache=no_cache,
    )
    builds = images.plan_builds(config, context, decision, options, repository)
    return ImagePlan(context, decision, repository, references, tuple(builds))


def build(runner: Runner, plan: ImagePlan) -> list[buildx.BuildOutcome]:
    if not plan.decision.publish:
        runner.console.info(f"{plan.decision.reason}")
    return buildx.build_all(plan.builds, runner)


def scan_targets(plan: ImagePlan) -> list[scan_gate.ScanTarget]:
    """Every loaded image by its tag (each platform of a multi-platform one), every Dockerfile."""
    targets = [scan_gate.ScanTarget("image", request.tags[0]) for request in plan.builds]
    for dockerfile in dict.fromkeys(str(request.dockerfile) for request in plan.builds):
        targets.append(scan_gate.ScanTarget("config", dockerfile))
    return targets


def scan(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    sarif_directory: Path | None = None,
    *,
    table_when_passed: bool = True,
) -> list[ScanReport]:
    """The scan gate over what was built: reports, then exit 3 on findings."""
    reports = scan_gate.scan(
        runner,
        config,
        scan_targets(plan),
        config.work("scan"),
        sarif_directory,
        table_when_passed=table_when_passed,
    )
    scan_gate.raise_on_findings(reports, config.scan.vulnerabilities, sarif_directory)
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
    if build:
        buildx.build_all(plan.builds, runner)
    return scan(runner, config, plan, sarif)


def push_staged(runner: Runner, config: DeliveryConfig, request: images.BuildRequest) -> str | None:
    """Push one platform's image under its staging tag; the digest the registry acknowledged."""
    return registry.push(runner, request.tags[0], *config.build.retry)


def merge_app(
    runner: Runner,
    config: DeliveryConfig,
    requests: Sequence[images.BuildRequest],
    digests: Mapping[str, str | None],
) -> str | None:
    """Create the release tags on the index of the platforms' digests; the index digest.

    The index must list exactly the staged platforms with exactly their digests.
    """
    repository, tags = requests[0].repository, requests[0].published_tags
    sources = [f"{repository}@{digests.get(r.platform) or '<digest>'}" for r in requests]
    registry.merge_platforms(runner, sources, tags, *config.build.retry)
    listed = registry.index_platforms(runner, tags[0], *config.build.retry)
    expected = {request.platform: digests.get(request.platform) for request in requests}
    if listed is not None and listed != expected:
        raise CommandFailed(
            f"verify {tags[0]}", 1, f"the index lists {listed}, but {expected} was merged"
        )
    index = registry.remote_digest(runner, tags[0], *config.build.retry)
    registry.check_tags(
        runner, tags[1:], index, *config.build.retry
    )  # the first tag is where index came from
    return index


def by_app(plan: ImagePlan) -> dict[str, list[images.BuildRequest]]:
    """The plan's builds grouped by app, platforms in the configured order."""
    grouped: dict[str, list[images.BuildRequest]] = {}
    for request in plan.builds:
        grouped.setdefault(request.app, []).append(request)
    return grouped


def staging_directory(config: DeliveryConfig) -> Path:
    """Where platform jobs leave their staged images (CI downloads the artifacts here)."""
    return config.work("platforms")


def stage_file(config: DeliveryConfig, app: str, platform: str) -> Path:
    return staging_directory(config) / f"{app}-{images.platform_slug(platform)}.json"


def one_job(*, stage: bool, merge: bool) -> None:
    """``--stage`` (a platform job) and ``--merge`` (the merge job) are two different jobs."""
    if stage and merge:
        raise InputError("--stage and --merge are two CI jobs: pass one of them")


def _refuse_unpublishable(plan: ImagePlan, force: bool) -> None:
    if not plan.decision.publish and not force:
        raise InputError(
            f"nothing is published from this context ({plan.decision.reason}); "
            "pass --force to publish its tags anyway"
        )


def _prepare(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    environ: Mapping[str, str] | None,
    sarif_directory: Path | None,
    build_here: bool = True,
) -> registry.Credentials:
    """What every publish does first: refusals and credentials before any work, then build
    and scan (unless the platform jobs did), then log in. The credentials it logged in with."""
    _refuse_unpublishable(plan, force)
    credentials = registry.credentials(config.registry, os.environ if environ is None else environ)
    runner.masker.add(credentials.password)
    if build_here:
        build(runner, plan)
        scan(runner, config, plan, sarif_directory)
    registry.login(runner, credentials, *config.build.retry)
    return credentials


def stage(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    environ: Mapping[str, str] | None = None,
    sarif_directory: Path | None = None,
) -> list[StagedPlatform]:
    """A CI platform job: build and scan this platform, push it under its staging tag, and
    write ``.aegis/platforms/APP-OS-ARCH.json`` for the merge job. No release tag moves."""
    if len({request.platform for request in plan.builds}) != 1:
        raise InputError("--stage builds one platform: pass --platform OS/ARCH")
    _prepare(runner, config, plan, force=force, environ=environ, sarif_directory=sarif_directory)
    staged: list[StagedPlatform] = []
    for request in plan.builds:
        digest = push_staged(runner, config, request)
        if digest is None:  # a dry run
            continue
        platform_image = StagedPlatform(
            app=request.app, platform=request.platform, repository=request.repository,
            digest=digest, bases=signed.resolve_bases(runner, request),
        )  # fmt: skip
        runner.write_file(
            stage_file(config, request.app, request.platform),
            platform_image.text(),
            f"record {request.app} {request.platform} for the merge",
        )
        staged.append(platform_image)
    return staged


def staged_digests(plan: ImagePlan, directory: Path) -> dict[str, dict[str, str]]:
    """The staged digests the merge needs: every planned platform of every app, or a clear
    error naming the missing one."""
    found = {(s.app, s.platform): s for s in read_staged(directory)}
    digests: dict[str, dict[str, str]] = {}
    for request in plan.builds:
        staged = found.get((request.app, request.platform))
        if staged is None:
            raise InputError(
                f"no staged image for {request.app} {request.platform} in {directory}: run its "
                f"platform job (`invoke push --stage --platform {request.platform}`) first"
            )
        if staged.repository != request.repository:
            raise InputError(
                f"{request.app} {request.platform} was staged in {staged.repository}, not "
                f"{request.repository}: a platform job of another repository or context"
            )
        digests.setdefault(request.app, {})[request.platform] = staged.digest
    return digests


def staged_bases(directory: Path, app: str) -> dict[str, str]:
    """The base images the app's platform jobs resolved (for the merged image's provenance)."""
    return {ref: d for s in read_staged(directory) if s.app == app for ref, d in s.bases.items()}


def push(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    stage_only: bool,
    merge: bool,
    sarif_directory: Path | None = None,
) -> ReleaseRecord | list[StagedPlatform]:
    """`invoke push`: the whole release, a CI platform job (``--stage``: the staged images),
    or the CI merge job (``--merge``: the release from the staged images)."""
    one_job(stage=stage_only, merge=merge)
    if stage_only:
        return stage(runner, config, plan, force=force, sarif_directory=sarif_directory)
    merge_from = staging_directory(config) if merge else None
    return release(
        runner, config, plan, force=force, sarif_directory=sarif_directory, merge_from=merge_from
    )


def release(
    runner: Runner,
    config: DeliveryConfig,
    plan: ImagePlan,
    *,
    force: bool,
    environ: Mapping[str, str] | None = None,
    sarif_directory: Path | None = None,
    reason: str | None = None,
    merge_from: Path | None = None,
) -> ReleaseRecord:
    """Build, scan, publish, verify, then write the release record once, atomically.

    ``merge_from``: the merge job of CI's per-platform builds; the platforms were built,
    scanned and staged by the platform jobs (their files in that directory), so nothing is
    built here: the index is merged, tagged, checked, and recorded.

    Refusals (nothing to publish, no credentials) happen before any work. In a dry run the
    record is the plan (no digests) and is printed, not written.
    """
    merged = staged_digests(plan, merge_from) if merge_from is not None else None
    signer = signed.signer_from(config, os.environ if environ is None else environ, runner.masker)
    credentials = _prepare(
        runner, config, plan, force=force, environ=environ, sarif_directory=sarif_directory,
        build_here=merged is None,
    )  # fmt: skip
    trivy = str(require("trivy", config.root))
    if signer is None:
        runner.console.warn(
            f"no signing key ({config.trust.signing_key_env}): the images carry no provenance, "
            "and environments that require one refuse them"
        )
    published: dict[str, ReleaseImage] = {}
    for app, requests in by_app(plan).items():
        first = requests[0]
        platform_digests: Mapping[str, str | None] = {}
        if first.staged:
            platform_digests = merged[app] if merged is not None else {
                request.platform: push_staged(runner, config, request) for request in requests
            }  # fmt: skip
            digest = merge_app(runner, config, requests, platform_digests)
        else:
            digest = registry.push_tags(runner, first.app, first.tags, *config.build.retry)
        attached = sbom.publish(
            runner, trivy, first.repository, digest, config.work("sbom"),
            credentials,
        )  # fmt: skip
        attested = None
        if signer is not None and digest is not None:
            bases = staged_bases(merge_from, app) if merge_from else signed.resolve_bases(
                runner, first
            )  # fmt: skip
            build = signed.build_of(
                first, tuple(requests), digest, {p: d for p, d in platform_digests.items() if d},
                plan.context, plan.repository, bases, config.root,
                os.environ if environ is None else environ,
            )  # fmt: skip
            attested = signed.publish(runner, signer, build, credentials)
        published[app] = ReleaseImage(
            repository=first.repository,
            digest=digest,
            platforms=tuple(request.platform for request in requests),
            tags=first.published_tags,
            scan=ScanVerdict(passed=True, vulnerability_scanning=config.scan.vulnerabilities),
            sbom=attached,
            platform_digests={p: d for p, d in platform_digests.items() if d},
            provenance=attested,
        )  # fmt: skip
    record = ReleaseRecord.published(
        tag=plan.tag,
        tags=plan.decision.tags,
        source=Source(
            sha=plan.context.source_sha.lower(),
            ref=plan.context.ref,
            event=plan.context.event,
            repository=plan.repository,
        ),
        actor=plan.context.actor,
        reason=reason,
        images=published,
    )
    runner.write_file(config.build.release_file, record.text(), "record the release")
    return record
