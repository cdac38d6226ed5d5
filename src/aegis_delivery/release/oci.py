"""The OCI side of what refers to an image (an SBOM, a signed provenance), as data: image
references by digest, a referrer's artifact manifest (exact bytes, exact digests), the
distribution-spec 1.1 fallback tag, and the checks on what comes back. Pure: nothing here
talks to a registry (``oci_client`` does).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aegis_delivery.errors import AegisError, ExitCode, InputError
from aegis_delivery.validation import image_digest

CYCLONEDX = "application/vnd.cyclonedx+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# Without these, Distribution 2.8 converts to schema 1, whose digest is another one.
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")

Json = dict[str, Any]


class RegistryError(AegisError):
    """The registry refused or failed a request: one line, what and why."""

    exit_code = ExitCode.FAILED

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")


class SbomNotFound(AegisError):
    """No CycloneDX SBOM refers to the image (it was pushed before SBOMs, or by hand)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class ArtifactKind:
    """What a referrer holds: its artifact type, its one layer's media type and title."""

    artifact_type: str
    layer_type: str
    title: str
    layer_annotations: Mapping[str, str] = field(default_factory=dict)


SBOM = ArtifactKind(CYCLONEDX, CYCLONEDX, "sbom.cdx.json")
# A signed provenance: the layer cosign's attestations use, annotated with its predicate type.
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
PROVENANCE = ArtifactKind(
    DSSE_ENVELOPE,
    DSSE_ENVELOPE,
    "provenance.intoto.dsse.json",
    {"predicateType": "https://slsa.dev/provenance/v1", "dev.cosignproject.cosign/signature": ""},
)


@dataclass(frozen=True)
class ImageRef:
    """An image in a registry by digest: ``host/owner/repo/app@sha256:...``."""

    host: str
    repository: str
    digest: str

    @classmethod
    def parse(cls, pinned: str) -> ImageRef:
        name, separator, digest = pinned.partition("@")
        host, slash, repository = name.partition("/")
        if not separator or not slash or not repository:
            raise InputError(f"{pinned!r} is not an image by digest: expected HOST/REPO@sha256:...")
        return cls(host, repository, image_digest(digest, what=f"digest of {pinned!r}"))

    @property
    def pinned(self) -> str:
        return f"{self.host}/{self.repository}@{self.digest}"

    @property
    def plain_http(self) -> bool:
        return plain_http(self.host)


def plain_http(host: str) -> bool:
    """Loopback registries speak plain HTTP, as Docker allows; every other one TLS."""
    return bool(LOOPBACK.match(host))


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: Json) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def fallback_tag(digest: str) -> str:
    """The referrers tag schema (distribution-spec 1.1): ``<alg>-<hex>``, truncated."""
    algorithm, _, encoded = digest.partition(":")
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{algorithm[:32]}-{encoded[:64]}")


def artifact_manifest(
    subject_digest: str,
    subject_media_type: str,
    subject_size: int,
    blob: bytes,
    created: str,
    kind: ArtifactKind,
) -> Json:
    """The OCI 1.1 artifact manifest of one referrer: empty config, one layer of *kind*."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": kind.artifact_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256_of(EMPTY_BLOB), "size": 2},
        "layers": [
            {
                "mediaType": kind.layer_type,
                "digest": sha256_of(blob),
                "size": len(blob),
                "annotations": {TITLE: kind.title, **kind.layer_annotations},
            }
        ],
        "subject": {
            "mediaType": subject_media_type,
            "digest": subject_digest,
            "size": subject_size,
        },
        "annotations": {CREATED: created},
    }


def newest_first(entries: list[Json]) -> list[Json]:
    """Referrer descriptors, newest ``created`` first; later entries win ties."""
    ordered = sorted(
        enumerate(entries),
        key=lambda pair: (str((pair[1].get("annotations") or {}).get(CREATED, "")), pair[0]),
        reverse=True,
    )
    return [entry for _, entry in ordered]


def document_check(sbom: bytes, what: str) -> None:
    """A CycloneDX JSON document, or a one-line error naming what Trivy wrote instead."""
    try:
        document = json.loads(sbom)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"SBOM of {what}", "Trivy wrote no JSON document") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise RegistryError(f"SBOM of {what}", "Trivy's output is not a CycloneDX document")
