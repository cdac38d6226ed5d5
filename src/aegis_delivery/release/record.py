"""The release record: one typed, schema-versioned document per release.

``invoke push`` (and the emergency path) writes it once, atomically, after every tag was pushed
and verified: the tags, the source commit, who and why, and per app the repository, the digest,
the platforms and the scan verdict. ``values``, ``deploy``, ``verify`` and ``pipeline`` read it
instead of working the release out again; CI carries it from the push job to deploy and verify
as an artifact. A file that is not such a record stops the reader with its path and the first
wrong key, exit 2.

pydantic does the validation: it is already installed (python-on-whales is built on it), it
names the failing key path, and its models are the typed objects the code uses; it is imported
only by the tasks that read or write a record, never by ``invoke --list``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from aegis_delivery import clock
from aegis_delivery.errors import InputError

SCHEMA = 1
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Sha = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ScanVerdict(_Strict):
    passed: bool
    vulnerability_scanning: bool


class ReleaseImage(_Strict):
    """One app's image as published."""

    repository: Text  # registry/owner/repo/app
    digest: Digest | None  # None only in a dry run's plan; a written record always has it
    platforms: tuple[Text, ...] = Field(min_length=1)
    tags: tuple[Text, ...] = Field(min_length=1)  # full references
    scan: ScanVerdict
    # The CycloneDX SBOM's artifact manifest, attached to the digest (``invoke sbom``).
    sbom: Digest | None = None
    # A multi-platform image: each platform's image digest; ``digest`` is then the index's.
    platform_digests: dict[Text, Digest] = Field(default_factory=dict)
    # The signed provenance's artifact manifest, attached to the digest (``invoke provenance``).
    provenance: Digest | None = None

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


class Source(_Strict):
    sha: Sha
    ref: Text
    event: Text
    repository: Text  # OWNER/REPO


class ReleaseRecord(_Strict):
    """What was released: read by every task after push, never recomputed."""

    schema_version: Literal[1] = Field(default=1, alias="schema")
    tag: Tag  # the release's own tag (TagDecision.primary): deployed and verified
    tags: tuple[Tag, ...] = Field(min_length=1)
    source: Source
    actor: Text
    created: Text
    reason: Text | None = None  # why, for an emergency release
    promoted_from: Text | None = None  # ENV@REVISION when promoted, not built
    images: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")], ReleaseImage] = Field(
        min_length=1
    )

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @classmethod
    def published(
        cls,
        *,
        tag: str,
        tags: tuple[str, ...],
        source: Source,
        actor: str,
        images: Mapping[str, ReleaseImage],
        reason: str | None = None,
    ) -> ReleaseRecord:
        """What `invoke push` writes: built, scanned and pushed now."""
        return cls(tag=tag, tags=tags, source=source, actor=actor, created=clock.iso(),
                   reason=reason, images=dict(images))  # fmt: skip

    @classmethod
    def promoted(
        cls,
        *,
        tag: str,
        source_environment: str,
        revision: int,
        sha: str,
        repository: str,
        actor: str,
        images: Mapping[str, ReleaseImage],
        reason: str | None = None,
    ) -> ReleaseRecord:
        """What `invoke promote` deploys: the digests verified in SOURCE at REVISION, under
        their one tag; nothing rebuilt or re-tagged."""
        origin = f"{source_environment}@{revision}"
        return cls(
            tag=tag,
            tags=(tag,),
            source=Source(sha=sha.lower(), ref=origin, event="promote", repository=repository),
            actor=actor,
            created=clock.iso(),
            reason=reason,
            promoted_from=origin,
            images=dict(images),
        )

    def digests(self) -> dict[str, str]:
        """Each app's digest (apps without one, in a dry run's plan, are left out)."""
        return {app: image.digest for app, image in self.images.items() if image.digest}

    def document(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)

    def text(self) -> str:
        return json.dumps(self.document(), indent=2, sort_keys=True) + "\n"


class StagedPlatform(_Strict):
    """One platform's image, built, scanned and pushed under its staging tag by a platform
    job (``invoke push --stage``), waiting for the merge (``invoke push --merge``)."""

    app: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")]
    platform: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+/[a-z0-9]+$")]
    repository: Text
    digest: Digest
    # The base images the platform's build resolved (reference -> digest), for the provenance.
    bases: dict[Text, Digest] = Field(default_factory=dict)

    def text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def read_staged(directory: Path) -> list[StagedPlatform]:
    """Every staged platform file in *directory* (a CI artifact: outside input, validated)."""
    staged: list[StagedPlatform] = []
    for path in sorted(directory.glob("*.json")):
        try:
            staged.append(StagedPlatform.model_validate_json(path.read_bytes()))
        except ValidationError as error:
            raise InputError(
                f"{path} is not a staged platform image ({_first_error(error)}): re-run the "
                "platform job (`invoke push --stage --platform OS/ARCH`)"
            ) from None
        except OSError as error:
            raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    return staged


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(the document)"
    return f"{where}: {first['msg']}"


def parse_record(raw: str | bytes, source: str) -> ReleaseRecord:
    """A record from JSON text; any other input is an ``InputError`` naming *source*."""
    remedy = "re-run `invoke push` to write it (in CI it is the push job's `release` artifact)"
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{source} is not JSON ({error}): {remedy}") from None
    if not isinstance(document, Mapping):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(document), "a number"
        )
        raise InputError(f"{source} is not a release record (it is {kind}): {remedy}")
    try:
        record = ReleaseRecord.model_validate_json(raw)
    except ValidationError as error:
        raise InputError(f"{source}: {_first_error(error)}: {remedy}") from None
    missing = sorted(app for app, image in record.images.items() if image.digest is None)
    if missing:
        raise InputError(f"{source}: images.{missing[0]}.digest is missing: {remedy}")
    return record


def read_record(path: Path) -> ReleaseRecord:
    """The record at *path*; a missing or invalid file stops the task (exit 2)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"no release record at {path}: run `invoke push` first (in CI, download the push "
            "job's `release` artifact), or deploy an explicit --tag"
        ) from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    return parse_record(raw, str(path))


def read_optional(path: Path) -> ReleaseRecord | None:
    """The record when one exists (verify, status); invalid content is still an error."""
    return read_record(path) if path.exists() else None
