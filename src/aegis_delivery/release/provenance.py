"""Build provenance as data: the in-toto Statement v1 with a SLSA Provenance v1 predicate that
says which image digests were built, by which builder, from which repository, commit and ref,
and the checks a deploy applies to a statement read back from the registry. Pure: signing is
``signing``'s, the registry ``attestation``'s.

Build arguments are recorded by *name* only: their values may hold what must not leak (the
anchors' provenance records them verbatim).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aegis_delivery.errors import Untrusted

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
# What this toolkit's build is, as SLSA asks: defined in docs/provenance.md.
BUILD_TYPE = "https://github.com/aegistrader/aegistrader/blob/main/docs/provenance.md#build-type-v1"
LOCAL_BUILDER = "local"
_HEX = re.compile(r"^[0-9a-f]{64}\Z")
_WORKFLOW_REF = re.compile(r"^[^/\s]+/[^/\s]+/(\.github/workflows/[^@\s]+)@(\S+)\Z")


@dataclass(frozen=True)
class BaseImage:
    """A base image a build resolved: its reference and the digest it resolved to."""

    reference: str
    digest: str  # sha256:...


@dataclass(frozen=True)
class Builder:
    """Who built: the workflow file and ref in Actions, ``local`` anywhere else."""

    id: str
    workflow: str | None = None  # .github/workflows/ci-cd.yml
    workflow_ref: str | None = None
    invocation: str | None = None  # the run's URL, with its attempt

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Builder:
        """From the variables GitHub Actions sets (``GITHUB_WORKFLOW_REF`` and the run's)."""
        found = _WORKFLOW_REF.match(environ.get("GITHUB_WORKFLOW_REF", ""))
        if environ.get("GITHUB_ACTIONS") != "true" or found is None:
            return cls(LOCAL_BUILDER)
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = environ.get("GITHUB_REPOSITORY", "")
        run, attempt = environ.get("GITHUB_RUN_ID", ""), environ.get("GITHUB_RUN_ATTEMPT", "1")
        return cls(
            id=f"{server}/{environ['GITHUB_WORKFLOW_REF']}",
            workflow=found.group(1),
            workflow_ref=found.group(2),
            invocation=(
                f"{server}/{repository}/actions/runs/{run}/attempts/{attempt}" if run else None
            ),
        )


@dataclass(frozen=True)
class Build:
    """What one image's statement says: its digests and how it was made."""

    name: str  # registry/owner/repo/app
    digest: str  # what is deployed: the index of a multi-platform image
    platform_digests: Mapping[str, str]
    repository: str  # OWNER/REPO of the source
    commit: str
    ref: str
    event: str
    dockerfile: str  # relative to the repository root
    platforms: tuple[str, ...]
    build_arg_names: tuple[str, ...]
    bases: tuple[BaseImage, ...]
    builder: Builder
    started: str


def _digest_set(digest: str) -> dict[str, str]:
    return {"sha256": digest.removeprefix("sha256:")}


def statement(build: Build) -> dict[str, Any]:
    """The in-toto Statement v1 of *build*: every digest it made is a subject."""
    subjects = [{"name": build.name, "digest": _digest_set(build.digest)}]
    for platform, digest in sorted(build.platform_digests.items()):
        if digest != build.digest:
            subjects.append({"name": f"{build.name}#{platform}", "digest": _digest_set(digest)})
    source = f"git+https://github.com/{build.repository}@{build.ref}"
    external: dict[str, Any] = {
        "source": {"repository": build.repository, "ref": build.ref, "commit": build.commit},
        "dockerfile": build.dockerfile,
        "platforms": list(build.platforms),
        "buildArgs": sorted(build.build_arg_names),
    }
    if build.builder.workflow:
        external["workflow"] = {"path": build.builder.workflow, "ref": build.builder.workflow_ref}
    metadata: dict[str, Any] = {"startedOn": build.started}
    if build.builder.invocation:
        metadata["invocationId"] = build.builder.invocation
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"event": build.event},
                "resolvedDependencies": [
                    {"uri": source, "digest": {"gitCommit": build.commit}},
                    *(
                        {
                            "uri": f"docker-image://{base.reference}",
                            "digest": _digest_set(base.digest),
                        }
                        for base in build.bases
                    ),
                ],
            },
            "runDetails": {"builder": {"id": build.builder.id}, "metadata": metadata},
        },
    }


@dataclass(frozen=True)
class Claims:
    """What a statement read back from the registry says, once its shape was checked."""

    subjects: frozenset[str]  # sha256:... digests
    repository: str
    commit: str
    ref: str
    builder: str


def _field(document: object, *path: str) -> object:
    for key in path:
        if not isinstance(document, Mapping) or key not in document:
            raise ValueError(".".join(path))
        document = document[key]
    return document


def _text(document: object, *path: str) -> str:
    value = _field(document, *path)
    if not isinstance(value, str) or not value:
        raise ValueError(".".join(path))
    return value


def claims(document: object) -> Claims:
    """The claims of a decoded statement; anything else is ``Untrusted`` naming what is
    wrong (outside input: a property test feeds it every shape)."""
    try:
        if _field(document, "_type") != STATEMENT_TYPE:
            raise ValueError("_type")
        if _field(document, "predicateType") != SLSA_PROVENANCE:
            raise ValueError("predicateType")
        listed = _field(document, "subject")
        if not isinstance(listed, list) or not listed:
            raise ValueError("subject")
        subjects = set()
        for subject in listed:
            hexdigest = _field(subject, "digest", "sha256")
            if not isinstance(hexdigest, str) or not _HEX.match(hexdigest):
                raise ValueError("subject[].digest.sha256")
            subjects.add(f"sha256:{hexdigest}")
        source = ("predicate", "buildDefinition", "externalParameters", "source")
        return Claims(
            subjects=frozenset(subjects),
            repository=_text(document, *source, "repository"),
            commit=_text(document, *source, "commit"),
            ref=_text(document, *source, "ref"),
            builder=_text(document, "predicate", "runDetails", "builder", "id"),
        )
    except ValueError as error:
        raise Untrusted(f"the provenance statement is malformed (at {error})") from None


def refusal(
    found: Claims,
    digest: str,
    repository: str,
    allowed_ref: bool,
    refs: Sequence[str],
) -> str | None:
    """Why *found* does not vouch for *digest* built from *repository*, or None when it does."""
    if digest not in found.subjects:
        return f"its statement is for {', '.join(sorted(found.subjects))}, not {digest}"
    if found.repository.lower() != repository.lower():
        return f"it was built from {found.repository}, not {repository}"
    if not allowed_ref:
        return f"it was built from {found.ref}; this environment takes {', '.join(refs)}"
    return None
