"""Release records for tests: what `invoke push` writes, built without pushing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.release.record import ReleaseImage, ReleaseRecord, ScanVerdict, Source

DIGEST_API = "sha256:" + "a" * 64
DIGEST_UI = "sha256:" + "b" * 64
DIGESTS = {"monitor-api": DIGEST_API, "monitor-ui": DIGEST_UI}


def release_record(
    tag: str = "main-0123456",
    reason: str | None = None,
    digests: Mapping[str, str] = DIGESTS,
    repository: str = "ghcr.io/aegistrader/aegistrader",
) -> ReleaseRecord:
    return ReleaseRecord(
        tag=tag,
        tags=(tag, "latest") if tag.startswith("main-") else (tag,),
        source=Source(
            sha="0123456789abcdef", ref="refs/heads/main", event="push",
            repository="aegistrader/aegistrader",
        ),
        actor="octocat",
        created="2026-11-27T08:00:00+00:00",
        reason=reason,
        images={
            app: ReleaseImage(
                repository=f"{repository}/{app}",
                digest=digest,
                platforms=("linux/amd64",),
                tags=(f"{repository}/{app}:{tag}",),
                scan=ScanVerdict(passed=True, vulnerability_scanning=True),
            )
            for app, digest in digests.items()
        },
    )  # fmt: skip


def provenance_off(config: DeliveryConfig) -> DeliveryConfig:
    """*config* with no environment requiring a provenance: for tests of everything else a
    deploy does (the provenance gate has its own, real tests: tests/test_provenance*.py)."""
    off = ProvenancePolicy()
    return replace(
        config,
        environments={
            name: replace(environment, provenance=off)
            for name, environment in config.environments.items()
        },
    )
