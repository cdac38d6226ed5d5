"""Signed provenance written with each published image: its statement (``provenance``),
signed as a DSSE envelope (``signing``) with the key from the signing secret, attached as an
OCI 1.1 referrer of the image's digest and of each platform's (``referrers``), beside the SBOM.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aegis_delivery import clock
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.masking import Masker
from aegis_delivery.release import dockerfile, images, provenance, referrers, signing
from aegis_delivery.release.context import BuildContext
from aegis_delivery.release.oci import PROVENANCE, ImageRef
from aegis_delivery.release.oci_client import Connect, RegistryClient
from aegis_delivery.release.registry import Credentials
from aegis_delivery.runner import Action, Runner, Step

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner


def attach(
    build: provenance.Build,
    envelope: bytes,
    credentials: Credentials | None,
    *,
    connect: Connect = RegistryClient,
) -> str:
    """Attach the signed statement to the image's digest and to each platform's; the artifact
    manifest digest of the first (the one recorded)."""
    host, _, repository = build.name.partition("/")
    username = credentials.username if credentials else None
    password = credentials.password if credentials else None
    image = ImageRef(host, repository, build.digest)
    recorded = referrers.attach(
        connect(image, username, password), image, envelope, PROVENANCE, what="provenance"
    )
    for digest in sorted(set(build.platform_digests.values()) - {build.digest}):
        platform = ImageRef(host, repository, digest)
        referrers.attach(
            connect(platform, username, password), platform, envelope, PROVENANCE,
            what="provenance",
        )  # fmt: skip
    return recorded


def signer_from(
    config: DeliveryConfig, environ: Mapping[str, str], masker: Masker
) -> CryptoSigner | None:
    """The signing key from its secret (masked from here on, every line of it), or None:
    then nothing is signed, and that is said."""
    variable = config.trust.signing_key_env
    text = environ.get(variable, "")
    if not text.strip():
        return None
    masker.add(text)
    return signing.load_signer(text, variable)


def publish(
    runner: Runner,
    signer: CryptoSigner,
    build: provenance.Build,
    credentials: Credentials,
) -> str | None:
    """Sign the image's statement and attach it; None in a dry run (printed, not done)."""
    pinned = f"{build.name}@{build.digest}"
    payload = json.dumps(provenance.statement(build), sort_keys=True).encode("utf-8")

    def upload() -> str:
        envelope = signing.sign(payload, provenance.IN_TOTO_PAYLOAD, signer)
        connect = functools.partial(RegistryClient, on_retry=runner.console.warn)
        return attach(build, envelope, credentials, connect=connect)

    step = Step(("attach-provenance", pinned), f"sign and attach the provenance of {pinned}")
    return runner.perform(Action((step,), upload))


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def resolve_bases(runner: Runner, request: images.BuildRequest) -> dict[str, str]:
    """Each base image the build's FROM lines name, with the digest this engine resolved it
    to (the repository digest of a pulled image, else a local image's id); one the engine
    cannot say is left out, with a warning."""
    try:
        text = request.dockerfile.read_text(encoding="utf-8")
    except OSError:
        return {}
    resolved: dict[str, str] = {}
    for reference in dockerfile.base_images(text, request.build_args):
        step = Step(
            ("docker", "image", "inspect", "--format", "{{json .RepoDigests}} {{.Id}}", reference),
            f"the digest of base image {reference}", capture=True, changes=False,
        )  # fmt: skip
        result = runner.run(step, check=False)
        found = _DIGEST.search(result.stdout) if result.ran and result.ok else None
        if found:
            resolved[reference] = found.group(0)
        elif result.ran:
            runner.console.warn(f"base image {reference}: no digest known, not in the provenance")
    return resolved


def build_of(
    request: images.BuildRequest,
    requests: tuple[images.BuildRequest, ...],
    digest: str,
    platform_digests: Mapping[str, str],
    context: BuildContext,
    repository: str,
    bases: Mapping[str, str],
    root: Path,
    environ: Mapping[str, str],
) -> provenance.Build:
    """What the statement of one published image says, from the plan and what was pushed."""
    dockerfile_path = request.dockerfile
    shown = (
        dockerfile_path.relative_to(root)
        if dockerfile_path.is_relative_to(root)
        else dockerfile_path
    )
    return provenance.Build(
        name=request.repository,
        digest=digest,
        platform_digests=dict(platform_digests),
        repository=repository,
        commit=context.source_sha.lower(),
        ref=context.ref,
        event=context.event,
        dockerfile=str(shown),
        platforms=tuple(r.platform for r in requests),
        build_arg_names=tuple(sorted({name for r in requests for name in r.build_args})),
        bases=tuple(provenance.BaseImage(ref, found) for ref, found in sorted(bases.items())),
        builder=provenance.Builder.detect(environ),
        started=clock.rfc3339(),
    )
