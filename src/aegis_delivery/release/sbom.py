"""SBOMs stored with the images: a CycloneDX document per published image, attached to the
image's digest in the registry as an OCI 1.1 referrer (``referrers``: the manifest, the
fallback tag of registries without the referrers API, every hop checked by digest).

Trivy writes the SBOM (``--format cyclonedx`` needs no vulnerability database). oras-py
carries every registry request and its authentication (basic, or the bearer token dance of
ghcr.io).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aegis_delivery.errors import InputError
from aegis_delivery.release import referrers, registry
from aegis_delivery.release.oci import (
    SBOM,
    ImageRef,
    RegistryError,
    SbomNotFound,
    document_check,
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
    return referrers.attach(client, image, sbom, SBOM, what="SBOM", created=created)


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
    for found in referrers.layers(client, image, SBOM, manifest_digest=manifest_digest):
        return found
    which = f"SBOM {manifest_digest}" if manifest_digest else "CycloneDX SBOM"
    raise SbomNotFound(
        f"no {which} refers to {image.pinned}: push the release again (`invoke push`) to "
        "attach one"
    )


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
