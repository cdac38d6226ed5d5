"""What refers to an image in its registry (an SBOM, a signed provenance), written and read
the one way: an OCI 1.1 artifact manifest whose ``subject`` is the image's digest.

oras-py has no referrers support, so the artifact manifest is composed here (exact bytes,
exact digests). On registries without the referrers API (Distribution 2.8 answers 404), the
distribution-spec 1.1 fallback is kept: the tag ``sha256-<hex>`` holding an OCI index of the
image's referrers. Reading goes the same way: the referrers API first, then the fallback tag.
Every hop is checked against its digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from aegis_delivery import clock
from aegis_delivery.release.oci import (
    EMPTY_BLOB,
    OCI_INDEX,
    OCI_MANIFEST,
    ArtifactKind,
    ImageRef,
    Json,
    RegistryError,
    artifact_manifest,
    canonical,
    fallback_tag,
    newest_first,
    sha256_of,
)
from aegis_delivery.release.oci_client import RegistryClient


def attach(
    client: RegistryClient,
    image: ImageRef,
    blob: bytes,
    kind: ArtifactKind,
    *,
    what: str,
    created: str | None = None,
) -> str:
    """Attach *blob* to the image as a referrer of *kind*; the artifact manifest's digest."""
    subject = client.manifest(image.digest)
    if subject is None:
        raise RegistryError(f"attach the {what} to {image.pinned}", "the image is not there")
    subject_body, subject_type = subject
    client.put_blob(EMPTY_BLOB)
    client.put_blob(blob)
    stamp = created or clock.rfc3339()
    manifest = artifact_manifest(image.digest, subject_type, len(subject_body), blob, stamp, kind)
    body = canonical(manifest)
    digest = sha256_of(body)
    response = client.put_manifest(digest, body, OCI_MANIFEST)
    # A registry with the referrers API says so with OCI-Subject; else the fallback tag.
    if response.headers.get("OCI-Subject") != image.digest:
        add_to_fallback_index(
            client,
            image.digest,
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "artifactType": kind.artifact_type,
                "annotations": manifest["annotations"],
            },
        )
    return digest


def layers(
    client: RegistryClient,
    image: ImageRef,
    kind: ArtifactKind,
    *,
    manifest_digest: str | None = None,
) -> Iterator[tuple[bytes, str]]:
    """Each referrer of *kind*'s layer and its artifact manifest digest, newest first (only
    the recorded one when *manifest_digest* is given). Entries whose manifest is gone, or
    whose subject is another image, are passed over."""
    entries = newest_first(client.referrers(image.digest, kind.artifact_type))
    if manifest_digest is not None:
        entries = [entry for entry in entries if entry.get("digest") == manifest_digest]
    for entry in entries:
        digest = str(entry["digest"])
        found = client.manifest(digest, accept=OCI_MANIFEST)
        if found is None:  # a stale fallback entry: its manifest was deleted
            continue
        manifest = json.loads(found[0])
        if (manifest.get("subject") or {}).get("digest") != image.digest:
            continue
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == kind.layer_type:
                yield client.blob(str(layer["digest"]), int(layer["size"])), digest
                break


def add_to_fallback_index(
    client: RegistryClient, subject: str, descriptor: Json, attempts: int = 3
) -> None:
    """Read, add, write the fallback tag's index; re-read to confirm (no If-Match in 2.8)."""
    tag = fallback_tag(subject)
    for _ in range(attempts):
        found = client.manifest(tag, accept=OCI_INDEX)
        if found is not None and found[1] != OCI_INDEX:
            raise RegistryError(f"update {tag}", f"the tag holds a {found[1]}, not an index")
        entries = list(json.loads(found[0]).get("manifests", [])) if found else []
        entries = [e for e in entries if e.get("digest") != descriptor["digest"]]
        entries = [e for e in entries if client.exists(str(e.get("digest", "")))]
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [*entries, descriptor],
        }
        client.put_manifest(tag, canonical(index), OCI_INDEX)
        written = client.manifest(tag, accept=OCI_INDEX)
        if written and any(
            e.get("digest") == descriptor["digest"]
            for e in json.loads(written[0]).get("manifests", [])
        ):
            return
    raise RegistryError(f"update {tag}", "another writer kept replacing the index")
