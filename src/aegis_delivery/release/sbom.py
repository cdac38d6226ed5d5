"""SBOMs stored with the images: a CycloneDX document per published image, attached to the
image's digest in the registry as an OCI 1.1 artifact whose ``subject`` is the image.

Trivy writes the SBOM (``--format cyclonedx`` needs no vulnerability database). oras-py
carries every registry request and its authentication (basic, or the bearer token dance of
ghcr.io). oras-py has no referrers support, so this module composes the artifact manifest
itself (exact bytes, exact digests) and, on registries without the referrers API
(Distribution 2.8 answers 404), maintains the distribution-spec 1.1 fallback: the tag
``sha256-<hex>`` holding an OCI index of the image's referrers. Reading goes the same way:
the referrers API first, then the fallback tag. Every hop is checked against its digest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aegis_delivery import clock
from aegis_delivery.errors import InputError
from aegis_delivery.release import registry
from aegis_delivery.release.oci import (
    CYCLONEDX,
    EMPTY_BLOB,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageRef,
    Json,
    RegistryError,
    SbomNotFound,
    artifact_manifest,
    canonical,
    document_check,
    fallback_tag,
    newest_first,
    plain_http,
    sha256_of,
)
from aegis_delivery.release.oci_client import Connect, RegistryClient
from aegis_delivery.release.registry import Credentials
from aegis_delivery.runner import Action, Runner, Step

if TYPE_CHECKING:
    from aegis_delivery.release.record import ReleaseRecord


def attach(
    image: ImageRef,
    sbom: bytes,
    username: str | None,
    password: str | None,
    *,
    created: str | None = None,
    connect: Connect = RegistryClient,
) -> str:
    """Attach *sbom* to the image; returns the SBOM artifact manifest's digest."""
    document_check(sbom, image.pinned)
    client = connect(image, username, password)
    subject = client.manifest(image.digest)
    if subject is None:
        raise RegistryError(f"attach the SBOM to {image.pinned}", "the image is not there")
    subject_body, subject_type = subject
    client.put_blob(EMPTY_BLOB)
    client.put_blob(sbom)
    stamp = created or clock.rfc3339()
    manifest = artifact_manifest(image.digest, subject_type, len(subject_body), sbom, stamp)
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
                "artifactType": CYCLONEDX,
                "annotations": manifest["annotations"],
            },
        )
    return digest


def fetch(
    image: ImageRef,
    username: str | None,
    password: str | None,
    *,
    manifest_digest: str | None = None,
    connect: Connect = RegistryClient,
) -> tuple[bytes, str]:
    """The image's SBOM and its artifact manifest digest: the recorded one when given, else
    the newest. Every manifest and blob is checked against its digest."""
    client = connect(image, username, password)
    entries = newest_first(client.referrers(image.digest))
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
            if layer.get("mediaType") == CYCLONEDX:
                return client.blob(str(layer["digest"]), int(layer["size"])), digest
    which = f"SBOM {manifest_digest}" if manifest_digest else "CycloneDX SBOM"
    raise SbomNotFound(
        f"no {which} refers to {image.pinned}: push the release again (`invoke push`) to "
        "attach one"
    )


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


def trivy_argv(trivy: str, pinned: str, output: Path) -> tuple[str, ...]:
    """CycloneDX from the registry copy (no engine needed, no vulnerability database)."""
    return (
        trivy, "image",
        "--format", "cyclonedx",
        "--output", str(output),
        "--image-src", "remote",
        *(("--insecure",) if plain_http(pinned.split("/", 1)[0]) else ()),
        "--quiet",
        "--disable-telemetry",
        "--skip-version-check",
        pinned,
    )  # fmt: skip


def publish(
    runner: Runner,
    trivy: str,
    repository: str,
    digest: str | None,
    directory: Path,
    credentials: Credentials,
) -> str | None:
    """Generate the image's SBOM with Trivy and attach it; the artifact manifest's digest.

    None in a dry run, where both steps are printed (the digest is not known yet).
    """
    pinned = f"{repository}@{digest or '<digest>'}"
    app = repository.rsplit("/", 1)[-1]
    output = directory / f"sbom-{app}.cdx.json"
    generate = Step(
        trivy_argv(trivy, pinned, output),
        f"SBOM of {app} (CycloneDX)",
        env={"TRIVY_USERNAME": credentials.username, "TRIVY_PASSWORD": credentials.password},
        secrets=(credentials.password,),
        capture=True,
    )

    def forget_stale() -> bool:  # a file left by an earlier run must not pass for this one
        directory.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
        return True

    def upload() -> str:
        if not output.exists():
            raise RegistryError(f"SBOM of {pinned}", f"Trivy wrote no {output.name}")
        connect = functools.partial(RegistryClient, on_retry=runner.console.warn)
        return attach(
            ImageRef.parse(pinned), output.read_bytes(), credentials.username,
            credentials.password, connect=connect,
        )  # fmt: skip

    runner.perform(Action((Step(("rm", "-f", str(output)), f"forget {app}'s old SBOM"),),
                          forget_stale))  # fmt: skip
    runner.run(generate)
    return runner.perform(
        Action((Step(("attach-sbom", pinned, str(output)), f"attach the SBOM to {pinned}"),),
               upload)
    )  # fmt: skip


@dataclass(frozen=True)
class FetchedSbom:
    """An SBOM read back from the registry, with where it came from."""

    app: str
    image: str  # the image by digest
    manifest: str  # the SBOM artifact manifest's digest
    document: bytes

    def summary(self) -> dict[str, object]:
        parsed = json.loads(self.document)
        components = parsed.get("components", []) if isinstance(parsed, dict) else []
        return {
            "app": self.app,
            "image": self.image,
            "sbom_manifest": self.manifest,
            "sbom_sha256": sha256_of(self.document),
            "format": f"CycloneDX {parsed.get('specVersion', '?')}",
            "components": len(components) if isinstance(components, list) else 0,
        }


def fetch_recorded(
    record: ReleaseRecord,
    app: str,
    environ: Mapping[str, str],
    registry_host: str,
    *,
    connect: Connect = RegistryClient,
) -> FetchedSbom:
    """`invoke sbom --app APP`: the SBOM attached to the recorded image's digest."""
    if app not in record.images:
        raise InputError(f"unknown app {app!r}: the release record has {', '.join(record.images)}")
    published = record.images[app]
    if published.digest is None:
        raise InputError(f"the release record has no digest for {app}: run `invoke push` first")
    image = ImageRef.parse(published.pinned)
    username: str | None = None
    password: str | None = None
    try:
        found = registry.credentials(registry_host, environ)
        username, password = found.username, found.password
    except InputError:  # reading a public image needs no credentials
        pass
    document, manifest = fetch(
        image, username, password, manifest_digest=published.sbom, connect=connect
    )
    document_check(document, image.pinned)
    return FetchedSbom(app, image.pinned, manifest, document)
