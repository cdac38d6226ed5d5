"""Images: build plans, python-on-whales calls, registry login, push, digests.

A ``BuildRequest`` is data. It renders two ways from the same fields: the argv printed by
``--dry-run`` and the keyword arguments given to python-on-whales' buildx API (a contract
test checks that python-on-whales turns the latter into the former). python-on-whales is
imported only when something is really built, so ``invoke --list`` stays fast.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import InputError
from aegis_delivery.release.context import BuildContext
from aegis_delivery.release.tags import SEMVER, TagDecision, image_repository
from aegis_delivery.release.trust import CaBundle

BUILDX_HINT = (
    "the docker buildx plugin is missing: install docker-buildx "
    "(https://github.com/docker/buildx#installing; on Debian, scripts/install-system)"
)


def host_platform() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "linux/amd64", "amd64": "linux/amd64", "aarch64": "linux/arm64"}.get(
        machine, f"linux/{machine}"
    )


@dataclass(frozen=True)
class BuildRequest:
    """One app's buildx build, as data."""

    app: str
    context: Path
    dockerfile: Path
    repository: str  # registry/owner/repo/app
    tags: tuple[str, ...]  # full references
    platforms: tuple[str, ...]
    build_args: Mapping[str, str]
    metadata_file: Path
    cache_from: str | None = None
    cache_to: str | None = None
    # Part of a multi-platform image (or a CI platform job): ``tags`` is one staging tag, and
    # the release's tags go on the index merged from every platform's digest afterwards.
    staged: bool = False
    release_tags: tuple[str, ...] = ()
    # The CA bundle, given as the ``ca_bundle`` secret and named when a build fails on a
    # certificate.
    trust: CaBundle | None = None
    # Every step rebuilt (``--no-cache``): what a fresh machine does, which a warm cache hides.
    no_cache: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """BuildKit ``--secret`` values: the CA bundle, when there is one."""
        return (self.trust.secret(),) if self.trust else ()

    @property
    def platform(self) -> str:
        return self.platforms[0]

    @property
    def published_tags(self) -> tuple[str, ...]:
        """The tags the release publishes for this app (on the index when staged)."""
        return self.release_tags or self.tags

    def whales_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``python_on_whales.docker.buildx.build``."""
        arguments: dict[str, Any] = {
            "context_path": self.context,
            "file": self.dockerfile,
            "platforms": list(self.platforms),
            "build_args": dict(self.build_args),
            "metadata_file": self.metadata_file,
            "progress": "plain",
            # One platform per build, loaded into the engine: it is scanned before any push.
            "load": True,
            "tags": list(self.tags),
        }
        if self.secrets:
            arguments["secrets"] = list(self.secrets)
        if self.cache_from:
            arguments["cache_from"] = self.cache_from
        if self.cache_to:
            arguments["cache_to"] = self.cache_to
        if self.no_cache:
            arguments["cache"] = False
        return arguments

    def argv(self) -> tuple[str, ...]:
        """The same build as a ``docker buildx build`` command line, for display."""
        argv = ["docker", "buildx", "build"]
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        if self.cache_from:
            argv += ["--cache-from", self.cache_from]
        if self.cache_to:
            argv += ["--cache-to", self.cache_to]
        argv += ["--file", str(self.dockerfile), "--load"]
        argv += ["--metadata-file", str(self.metadata_file)]
        if self.no_cache:
            argv.append("--no-cache")
        argv += ["--platform", ",".join(self.platforms), "--progress", "plain"]
        for secret in self.secrets:
            argv += ["--secret", secret]
        for tag in self.tags:
            argv += ["--tag", tag]
        argv.append(str(self.context))
        return tuple(argv)


@dataclass(frozen=True)
class BuildOptions:
    apps: tuple[str, ...]
    platforms: tuple[str, ...] | None  # None: the host platform locally, the apps' list in CI
    ca_bundle: CaBundle | None
    cache: str
    ci: bool
    created: str
    output_directory: Path
    extra_build_args: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # A CI platform job: this platform only, pushed under its staging tag, merged later.
    stage: bool = False
    no_cache: bool = False


def platform_slug(platform: str) -> str:
    """``linux/arm64`` as it goes into tags, cache scopes and file names: ``linux-arm64``."""
    return platform.replace("/", "-")


def staging_tag(primary: str, platform: str) -> str:
    """The tag one platform's image is pushed under before the merge: never a release tag."""
    return f"build-{primary}-{platform_slug(platform)}"[:128]


def platform_build_args(arguments: Mapping[str, str], platform: str) -> dict[str, str]:
    """``{arch}`` / ``{os}`` in a value become the platform's (per-platform local bases)."""
    os_name, _, arch = platform.partition("/")
    return {k: v.replace("{arch}", arch).replace("{os}", os_name) for k, v in arguments.items()}


def version_of(decision: TagDecision, context: BuildContext) -> str:
    """The semantic version on a release tag (the OCI version label); otherwise its own tag."""
    tag = context.git_tag
    if tag and SEMVER.match(tag):
        return tag.removeprefix("v")
    return decision.primary


def plan_builds(
    config: DeliveryConfig,
    context: BuildContext,
    decision: TagDecision,
    options: BuildOptions,
    repository: str,
) -> list[BuildRequest]:
    """One request per app: tags, labels' build args, secret, cache, platforms."""
    requests: list[BuildRequest] = []
    version = version_of(decision, context)
    for name in options.apps:
        app = config.app(name)
        platforms = options.platforms or (app.platforms if options.ci else (host_platform(),))
        image = image_repository(config.registry, repository, name)
        release_tags = tuple(f"{image}:{tag}" for tag in decision.tags)
        staged = options.stage or len(platforms) > 1
        build_args = {
            "VERSION": version,
            "REVISION": context.source_sha,
            "IMAGE_TAG": decision.primary,
            "CREATED": options.created,
            "SOURCE": f"https://github.com/{repository}",
            **options.extra_build_args.get("*", {}),
            **options.extra_build_args.get(name, {}),
        }
        for platform_name in platforms:
            # Caches per platform: CI's build job and the same platform's push job share one.
            suffix = f"-{platform_slug(platform_name)}"
            cache_from = cache_to = None
            if options.cache == "registry":
                cache_from = f"type=registry,ref={image}:buildcache{suffix}"
                cache_to = f"type=registry,ref={image}:buildcache{suffix},mode=max"
            elif options.cache == "gha" and options.ci:  # the gha cache exists on Actions only
                cache_from = f"type=gha,scope={name}{suffix}"
                cache_to = f"type=gha,scope={name}{suffix},mode=max"
            requests.append(
                BuildRequest(
                    app=name,
                    context=app.context,
                    dockerfile=app.dockerfile,
                    repository=image,
                    tags=(
                        (f"{image}:{staging_tag(decision.primary, platform_name)}",)
                        if staged
                        else release_tags
                    ),
                    platforms=(platform_name,),
                    build_args=platform_build_args(build_args, platform_name),
                    metadata_file=options.output_directory
                    / f"build-{name}{suffix if staged else ''}.json",
                    trust=options.ca_bundle,
                    no_cache=options.no_cache,
                    cache_from=cache_from,
                    cache_to=cache_to,
                    staged=staged,
                    release_tags=release_tags if staged else (),
                )
            )
    return requests


def parse_build_args(values: Sequence[str], apps: Sequence[str]) -> dict[str, dict[str, str]]:
    """``KEY=VALUE`` for every app, or ``APP:KEY=VALUE`` for one (e.g. a local BASE_IMAGE)."""
    parsed: dict[str, dict[str, str]] = {}
    for value in values:
        head, separator, setting = value.partition("=")
        target, _, key = head.rpartition(":")
        if not separator or not key or not key.replace("_", "").isalnum():
            raise InputError(f"--build-arg {value!r}: expected KEY=VALUE or APP:KEY=VALUE")
        if target and target not in apps:
            raise InputError(
                f"--build-arg {value!r}: unknown app {target!r}; expected one of {', '.join(apps)}"
            )
        parsed.setdefault(target or "*", {})[key] = setting
    return parsed
