"""Signed provenance in the registry: written by `invoke push`, checked before any deploy.

Each published image gets one statement (``provenance``) signed as a DSSE envelope
(``signing``) and attached as an OCI 1.1 referrer of its digest, and of each platform's,
beside the SBOM (``referrers``: the same fallback tag where the registry lacks the referrers
API). The layer is the one cosign's attestations use: media type
``application/vnd.dsse.envelope.v1+json``, annotated with its ``predicateType``.

Before helm runs, every image about to roll out must carry a statement signed by a trusted key
whose subject is the very digest, built from this repository and, where the environment says
so, from an allowed ref. Anything else is ``Untrusted`` (exit 6), one line naming the image,
what was wrong and how to fix it; nothing is changed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.errors import ConfigError, InputError, Untrusted
from aegis_delivery.release import provenance, referrers, registry, signing
from aegis_delivery.release.oci import PROVENANCE, ImageRef, RegistryError
from aegis_delivery.release.oci_client import Connect, RegistryClient
from aegis_delivery.release.registry import Credentials
from aegis_delivery.release.tags import published_repository
from aegis_delivery.runner import Action, Runner, Step

if TYPE_CHECKING:
    pass

OVERRIDE = "pass --allow-unverified where the environment's policy allows it"
FIX = f"deploy an image `invoke push` built and signed (with the signing key set), or {OVERRIDE}"


@dataclass(frozen=True)
class Verdict:
    """An image whose provenance verified: by which key, for which build."""

    app: str
    image: str  # by digest
    manifest: str  # the attestation's artifact manifest
    key: str  # the trusted key's file
    builder: str
    repository: str
    commit: str
    ref: str

    def document(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Expectation:
    """What an image's statement must say to be deployed to one environment."""

    repository: str  # OWNER/REPO
    policy: ProvenancePolicy
    default_branch: str
    keys: tuple[signing.TrustedKey, ...]
    root: Path


def verify(
    app: str,
    image: ImageRef,
    expected: Expectation,
    credentials: Credentials | None,
    *,
    connect: Connect = RegistryClient,
) -> Verdict:
    """The verdict of the first attestation that vouches for *image*; else ``Untrusted``
    with the reason of the newest one (or that there is none)."""
    username = credentials.username if credentials else None
    password = credentials.password if credentials else None
    client = connect(image, username, password)
    reasons: list[str] = []
    for blob, manifest in referrers.layers(client, image, PROVENANCE):
        try:
            payload, key = signing.open_envelope(
                blob, provenance.IN_TOTO_PAYLOAD, list(expected.keys), expected.root
            )
            try:
                document = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                raise Untrusted("the signed statement is not JSON") from None
            found = provenance.claims(document)
        except Untrusted as refused:
            reasons.append(refused.message)
            continue
        allowed = expected.policy.allows_ref(found.ref, expected.default_branch)
        why = provenance.refusal(
            found, image.digest, expected.repository, allowed, expected.policy.provenance_refs
        )
        if why is None:
            shown = key.relative_to(expected.root) if key.is_relative_to(expected.root) else key
            return Verdict(
                app, image.pinned, manifest, str(shown), found.builder, found.repository,
                found.commit, found.ref,
            )  # fmt: skip
        reasons.append(why)
    if not reasons:
        raise Untrusted(
            f"{app}: {image.pinned} has no provenance attestation: push it again with "
            f"the signing key set (`invoke push`), or {OVERRIDE}"
        )
    raise Untrusted(f"{app}: {image.pinned}: {reasons[0]}: {FIX}")


def read_credentials(config: DeliveryConfig, environ: Mapping[str, str]) -> Credentials | None:
    """The registry's credentials when there are some (a public image needs none)."""
    try:
        return registry.credentials(config.registry, environ)
    except InputError:
        return None


def check_override(config: DeliveryConfig, environment: str, allow_unverified: bool) -> None:
    """--allow-unverified only where the policy allows it: refused before anything runs."""
    policy = config.environment(environment).provenance
    if allow_unverified and not policy.allow_unverified:
        raise InputError(
            f"--allow-unverified is not allowed for {environment}: its policy "
            f"([tool.aegis.environments.{environment}] allow_unverified) requires a verified "
            "provenance for every image"
        )


@dataclass
class GateResult:
    """What the provenance gate found: the verdicts, and what was deployed unverified."""

    required: bool
    verdicts: list[Verdict]
    unverified: list[str]


def gate(
    runner: Runner,
    config: DeliveryConfig,
    environment: str,
    images: Mapping[str, str],
    environ: Mapping[str, str],
    *,
    allow_unverified: bool = False,
) -> GateResult:
    """Every image of *images* (app -> image by digest) verified under *environment*'s policy;
    with --allow-unverified, a refusal is a loud warning and the app is listed as unverified."""
    policy = config.environment(environment).provenance
    result = GateResult(policy.require_provenance, [], [])
    if not policy.require_provenance:
        return result
    try:
        keys = tuple(signing.trusted_keys(config.trust.keys, config.root))
    except ConfigError as error:
        if not runner.dry_run:
            raise
        # A dry run plans on, as it does past every question it cannot answer.
        runner.console.warn(f"[dry-run] the provenance cannot be checked: {error.message}")
        return result
    expected = Expectation(
        published_repository(config.repository, environ), policy, config.default_branch, keys,
        config.root,
    )  # fmt: skip
    credentials = read_credentials(config, environ)
    if credentials is not None:
        runner.masker.add(credentials.password)
    connect = functools.partial(RegistryClient, on_retry=runner.console.warn)
    for app, pinned in images.items():
        image = ImageRef.parse(pinned)
        step = Step(("verify-provenance", pinned), f"verify the provenance of {app}", changes=False)
        try:
            verdict = runner.perform(
                Action((step,), functools.partial(verify, app, image, expected, credentials,
                                                  connect=connect))
            )  # fmt: skip
        except RegistryError as error:
            if not runner.dry_run:
                raise
            runner.console.warn(f"[dry-run] could not ask ({error.message}); planning on")
            continue
        except Untrusted as refused:
            if runner.dry_run and not allow_unverified:
                runner.console.warn(f"[dry-run] the deploy would stop here (exit 6): {refused}")
                continue
            if not allow_unverified:
                raise
            runner.console.warn(f"UNVERIFIED (--allow-unverified, recorded): {refused.message}")
            result.unverified.append(app)
            continue
        if verdict is not None:
            runner.console.info(
                f"{app}: provenance verified ({verdict.key}, built from {verdict.repository} "
                f"{verdict.ref} at {verdict.commit[:7]})"
            )
            result.verdicts.append(verdict)
    return result


@dataclass(frozen=True)
class Inspection:
    """`invoke provenance`: an image's newest statement as stored, and the verdict on it."""

    app: str
    image: str
    environment: str
    statement: dict[str, object] | None
    verdict: Verdict | None
    refused: str | None

    def document(self) -> dict[str, object]:
        return {
            "app": self.app, "image": self.image, "environment": self.environment,
            "verified": self.verdict is not None, "refused": self.refused,
            "verdict": self.verdict.document() if self.verdict else None,
            "statement": self.statement,
        }  # fmt: skip


def stored_statement(blob: bytes) -> dict[str, object] | None:
    """The statement inside an envelope, decoded but NOT verified (shown beside the verdict)."""
    import base64
    import binascii

    try:
        document = json.loads(blob)
        decoded = json.loads(base64.b64decode(document["payload"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def inspect(
    runner: Runner,
    config: DeliveryConfig,
    app: str,
    pinned: str,
    environment: str,
    environ: Mapping[str, str],
) -> Inspection:
    """The newest provenance of *pinned* and whether *environment* would deploy it."""
    policy = config.environment(environment).provenance
    image = ImageRef.parse(pinned)
    credentials = read_credentials(config, environ)
    if credentials is not None:
        runner.masker.add(credentials.password)
    connect = functools.partial(RegistryClient, on_retry=runner.console.warn)
    username = credentials.username if credentials else None
    password = credentials.password if credentials else None

    def look() -> Inspection:
        client = connect(image, username, password)
        newest = next(iter(referrers.layers(client, image, PROVENANCE)), None)
        statement = stored_statement(newest[0]) if newest else None
        expected = Expectation(
            published_repository(config.repository, environ), policy, config.default_branch,
            tuple(signing.trusted_keys(config.trust.keys, config.root)), config.root,
        )  # fmt: skip
        try:
            verdict = verify(app, image, expected, credentials, connect=connect)
        except Untrusted as refused:
            return Inspection(app, pinned, environment, statement, None, refused.message)
        return Inspection(app, pinned, environment, statement, verdict, None)

    step = Step(("verify-provenance", pinned), f"the provenance of {app}", changes=False)
    found = runner.perform(Action((step,), look))
    return found or Inspection(app, pinned, environment, None, None, None)


def image_of(
    runner: Runner, config: DeliveryConfig, app: str, tag: str | None, environ: Mapping[str, str]
) -> str:
    """The image by digest: the release record's for *app*, or *tag*'s as the registry has it."""
    from aegis_delivery.release.record import read_record
    from aegis_delivery.release.tags import image_repository
    from aegis_delivery.validation import choice, docker_tag

    choice(app, config.apps, what="app")
    if tag is None:
        record = read_record(config.build.release_file)
        if app not in record.images:
            raise InputError(f"the release record has no image for {app}: run `invoke push`")
        return record.images[app].pinned
    repository = image_repository(
        config.registry, published_repository(config.repository, environ), app
    )
    digest = registry.remote_digest(
        runner, f"{repository}:{docker_tag(tag, what='--tag')}", *config.build.retry
    )
    if digest is None:  # a dry run that did not ask
        raise InputError(f"{repository}:{tag}: the registry was not asked (a dry run)")
    return f"{repository}@{digest}"
