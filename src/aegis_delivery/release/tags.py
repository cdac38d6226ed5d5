"""The image-tag rules: which tags a context gets, and whether they may be published.

The first tag is the release's own tag: the one recorded, deployed and verified. This is the
only place that decides it (``TagDecision.primary``).

| context | tags | published |
|---|---|---|
| push to the default branch | ``main-{sha7}``, ``latest`` (always the newest main build) | yes |
| pull request N | ``pr-N-{sha7}`` (the head commit, not the merge commit) | previews only |
| tag ``v1.2.3`` | ``v1.2.3`` as pushed, plus ``[tool.aegis] release_aliases`` (``1.2``) | yes |
| tag ``v1.2.3-rc.1`` (pre-release) | ``v1.2.3-rc.1`` only | yes |
| build metadata ``v1.2.3+build.5`` | ``v1.2.3_build.5`` (``+`` is not allowed in a tag) | yes |
| another branch, a non-semver tag | ``{name}-{sha7}``, to build only | no |
| ``--tag NAME`` | ``NAME`` | yes |

``latest`` belongs to the default branch: a release tag never moves it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aegis_delivery.release.context import BuildContext, run_repository
from aegis_delivery.validation import LATEST, docker_tag

# semver.org's grammar, with an optional leading "v" as release tags are usually written.
SEMVER = re.compile(
    r"^v?(?P<core>(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


# Placeholders a release alias may use: ``{major}.{minor}`` turns v1.2.3 into 1.2.
ALIAS_FIELDS = ("major", "minor", "patch")


@dataclass(frozen=True)
class TagDecision:
    """The tags for one context, whether they are published, and why."""

    tags: tuple[str, ...]
    publish: bool
    reason: str

    @property
    def primary(self) -> str:
        """The release's own tag: recorded, deployed and verified (never ``latest``)."""
        return self.tags[0]


def release_aliases(version: re.Match[str], templates: Sequence[str]) -> tuple[str, ...]:
    """The configured aliases of a final release, in order, without repeats."""
    major, minor, patch = version.group("core").split(".")
    found: list[str] = []
    for template in templates:
        alias = template.format(major=major, minor=minor, patch=patch)
        if alias not in found:
            found.append(alias)
    return tuple(found)


def short_sha(sha: str) -> str:
    return sha[:7].lower()


def slug(name: str) -> str:
    """A ref name made safe for a Docker tag: ``feature/Login_Fix`` -> ``feature-login_fix``."""
    cleaned = re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-.")
    return cleaned[:100] or "ref"


def decide(
    context: BuildContext,
    default_branch: str,
    explicit_tag: str | None = None,
    aliases: Sequence[str] = (),
    previews: bool = False,
) -> TagDecision:
    """Apply the tag rules; every tag is checked against Docker's grammar before returning.
    With *previews* on, a pull request from this repository is published for its preview."""
    sha7 = short_sha(context.source_sha)
    if explicit_tag is not None:
        decision = TagDecision((explicit_tag,), True, f"explicit tag {explicit_tag!r}")
    elif context.pull_request is not None:
        number = context.pull_request
        preview = previews and not context.pull_request_fork
        if preview:
            why = (f"pull request #{number}: published for its preview "
                   f"(`invoke preview --pr {number}`)")  # fmt: skip
        elif previews:
            why = f"pull request #{number} from a fork: built and tested, never published"
        else:
            why = f"pull request #{number}: built and tested, never published"
        decision = TagDecision((f"pr-{number}-{sha7}",), preview, why)
    elif context.branch == default_branch:
        decision = TagDecision(
            (f"{slug(default_branch)}-{sha7}", LATEST), True, f"push to {default_branch}"
        )
    elif context.git_tag is not None and (version := SEMVER.match(context.git_tag)):
        as_pushed = context.git_tag.replace("+", "_")
        if version.group("pre"):
            decision = TagDecision(
                (as_pushed,), True, f"pre-release {context.git_tag}: its own tag only"
            )
        else:
            extra = tuple(a for a in release_aliases(version, aliases) if a != as_pushed)
            decision = TagDecision(
                (as_pushed, *extra), True, f"release {context.git_tag} (never moves {LATEST!r})"
            )
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


def release_repository(configured: str, run: str | None) -> str:
    """OWNER/REPO that images are published under: the run's GitHub repository (a fork's, a
    renamed one's: `context.run_repository`), else the configured one. Push, deploy-by-tag and
    promote all ask here, so promote pins the repository push wrote to."""
    return (run or configured).lower()


def published_repository(configured: str, environ: Mapping[str, str]) -> str:
    """The repository this run publishes under (and a deploy expects builds from)."""
    return release_repository(configured, run_repository(environ))


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
