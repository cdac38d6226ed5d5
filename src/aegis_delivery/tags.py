"""The image-tag rules: which tags a context gets, and whether they may be published.

| context | tags | published |
|---|---|---|
| push to the default branch | ``latest``, ``main-{sha7}`` | yes |
| pull request N | ``pr-N-{sha7}`` (the head commit, not the merge commit) | no |
| tag ``v1.2.3`` | ``1.2.3``, ``latest`` | yes |
| tag ``v1.2.3-rc.1`` (pre-release) | ``1.2.3-rc.1`` (never ``latest``) | yes |
| another branch, a non-semver tag | ``{name}-{sha7}``, to build only | no |
| ``--tag NAME`` | ``NAME`` | yes |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aegis_delivery.context import BuildContext
from aegis_delivery.validation import docker_tag

# semver.org's grammar, with an optional leading "v" as release tags are usually written.
SEMVER = re.compile(
    r"^v?(?P<core>(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
LATEST = "latest"


@dataclass(frozen=True)
class TagDecision:
    """The tags for one context, whether they are published, and why."""

    tags: tuple[str, ...]
    publish: bool
    reason: str


def short_sha(sha: str) -> str:
    return sha[:7].lower()


def slug(name: str) -> str:
    """A ref name made safe for a Docker tag: ``feature/Login_Fix`` -> ``feature-login_fix``."""
    cleaned = re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-.")
    return cleaned[:100] or "ref"


def decide(
    context: BuildContext, default_branch: str, explicit_tag: str | None = None
) -> TagDecision:
    """Apply the tag rules; every tag is checked against Docker's grammar before returning."""
    sha7 = short_sha(context.source_sha)
    if explicit_tag is not None:
        decision = TagDecision((explicit_tag,), True, f"explicit tag {explicit_tag!r}")
    elif context.pull_request is not None:
        decision = TagDecision(
            (f"pr-{context.pull_request}-{sha7}",),
            False,
            f"pull request #{context.pull_request}: built and tested, never published",
        )
    elif context.branch == default_branch:
        decision = TagDecision(
            (LATEST, f"{slug(default_branch)}-{sha7}"), True, f"push to {default_branch}"
        )
    elif context.git_tag is not None and (version := SEMVER.match(context.git_tag)):
        semantic = context.git_tag.removeprefix("v").replace("+", "_")
        if version.group("pre"):
            decision = TagDecision(
                (semantic,), True, f"pre-release {context.git_tag}: does not move {LATEST!r}"
            )
        else:
            decision = TagDecision((semantic, LATEST), True, f"release {context.git_tag}")
    else:
        name = context.git_tag or context.branch or "detached"
        decision = TagDecision(
            (f"{slug(name)}-{sha7}",),
            False,
            f"{context.ref} is neither {default_branch!r}, a pull request nor a semantic-version "
            "tag: images are built, nothing is published",
        )
    for tag in decision.tags:
        docker_tag(tag)
    return decision


def image_repository(registry: str, repository: str, app: str) -> str:
    """``registry/owner/repo/app``, lower-cased as registries require."""
    return f"{registry}/{repository}/{app}".lower()


def image_references(
    registry: str, repository: str, apps: Sequence[str], tags: Sequence[str]
) -> Mapping[str, tuple[str, ...]]:
    return {
        app: tuple(f"{image_repository(registry, repository, app)}:{tag}" for tag in tags)
        for app in apps
    }
