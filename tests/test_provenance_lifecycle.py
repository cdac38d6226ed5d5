"""The provenance gate with everything real but the images' contents: the Distribution registry
(htpasswd), real key pairs and signatures, real helm 3 and 4 and kubectl against the local
Kubernetes API. A good image deploys; each bad one is refused with exit 6 and no new revision.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery.cluster import deploy
from aegis_delivery.config_trust import ProvenancePolicy, TrustSettings
from aegis_delivery.errors import AegisError, ExitCode, InputError, Untrusted
from aegis_delivery.release import provenance, provenance_publish, signing
from aegis_delivery.release.oci import ImageRef
from aegis_delivery.release.record import ReleaseImage, ReleaseRecord, ScanVerdict, Source
from aegis_delivery.release.registry import Credentials
from tests.docker_support import LocalRegistry
from tests.published import failure_printed, printed
from tests.test_cluster_lifecycle import Cluster, cluster  # noqa: F401 - the fixture
from tests.test_provenance import build
from tests.test_sbom import push_image, registry  # noqa: F401 - the fixture

pytestmark = [pytest.mark.binaries, pytest.mark.cluster]
REPOSITORY_NAME = "aegistrader/aegistrader"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def keys() -> tuple[signing.KeyPair, signing.KeyPair]:
    """The trusted pair, and a stranger's."""
    return signing.generate(), signing.generate("ed25519")


class Images:
    """Images pushed to the registry, each with whatever provenance a case needs."""

    def __init__(self, server: LocalRegistry, trusted: signing.KeyPair) -> None:
        self.server = server
        self.trusted = trusted
        self.count = 0
        self.credentials = Credentials(server.host, server.USER, server.PASSWORD)

    def push(self, app: str) -> ImageRef:
        self.count += 1
        return push_image(self.server, f"{REPOSITORY_NAME}/{app}", f"{app} {uuid.uuid4()}".encode())

    def attest(
        self,
        image: ImageRef,
        *,
        key: signing.KeyPair | None = None,
        tamper: bool = False,
        **changes: object,
    ) -> None:
        made = build(
            name=f"{image.host}/{image.repository}", digest=image.digest, platform_digests={},
            commit=SHA, **changes,
        )  # fmt: skip
        payload = json.dumps(provenance.statement(made)).encode()
        signer = signing.load_signer((key or self.trusted).private_pem, "AEGIS_SIGNING_KEY")
        envelope = json.loads(signing.sign(payload, provenance.IN_TOTO_PAYLOAD, signer))
        if tamper:  # a statement changed after signing: now it claims another commit
            envelope["payload"] = base64.b64encode(
                payload.replace(SHA.encode(), b"f" * 40)
            ).decode()
        provenance_publish.attach(made, json.dumps(envelope).encode(), self.credentials)

    def record(self, tag: str, images: dict[str, ImageRef]) -> ReleaseRecord:
        return ReleaseRecord(
            tag=tag, tags=(tag,),
            source=Source(sha=SHA, ref="refs/heads/main", event="push", repository=REPOSITORY_NAME),
            actor="octocat", created="2026-12-07T10:00:00+00:00",
            images={
                app: ReleaseImage(
                    repository=f"{image.host}/{image.repository}", digest=image.digest,
                    platforms=("linux/amd64",),
                    tags=(f"{image.host}/{image.repository}:{tag}",),
                    scan=ScanVerdict(passed=True, vulnerability_scanning=True),
                )
                for app, image in images.items()
            },
        )  # fmt: skip


def guarded(lab: Cluster, server: LocalRegistry, tmp_path: Path, public_pem: str) -> None:
    """The lab's toolkit with the registry, the trusted key, and the project's policies."""
    key = tmp_path / "trusted.pub"
    key.write_text(public_pem)
    staging = replace(
        lab.config.environments["staging"],
        provenance=ProvenancePolicy(require_provenance=True, allow_unverified=True),
    )
    production = replace(
        staging, name="production",
        provenance=ProvenancePolicy(
            require_provenance=True,
            provenance_refs=("refs/heads/{default_branch}", "refs/tags/v*"),
        ),
    )  # fmt: skip
    lab.config = replace(
        lab.config,
        registry=server.host,
        trust=TrustSettings(keys=(key,)),
        environments={"staging": staging, "production": production},
    )
    lab.environ.update(REGISTRY_USER=server.USER, REGISTRY_PASSWORD=server.PASSWORD)


def deploy_record(
    lab: Cluster,
    record: ReleaseRecord,
    environment: str = "staging",
    **options: object,
) -> deploy.DeployOutcome:
    lab.config.build.release_file.write_text(record.text())
    request = deploy.DeployRequest(environment, yes=True, **options)  # type: ignore[arg-type]
    with lab.runner() as runner:
        return deploy.deploy(runner, lab.config, request, lab.environ)


def refused(lab: Cluster, record: ReleaseRecord, environment: str = "staging") -> str:
    before = lab.statuses()
    with pytest.raises(Untrusted) as raised:
        deploy_record(lab, record, environment)
    assert raised.value.exit_code == ExitCode.UNTRUSTED and int(ExitCode.UNTRUSTED) == 6
    assert lab.statuses() == before, "a refused image made a revision"
    document = failure_printed("deploy-failure", raised.value)
    assert document["failed_step"] == "provenance" and document["exit_code"] == 6
    return raised.value.message


def test_a_signed_image_deploys_and_every_bad_one_is_refused_with_nothing_changed(
    cluster: Cluster,  # noqa: F811
    registry: LocalRegistry,  # noqa: F811
    keys: tuple[signing.KeyPair, signing.KeyPair],
    tmp_path: Path,
) -> None:
    trusted, stranger = keys
    guarded(cluster, registry, tmp_path, trusted.public_pem)
    images = Images(registry, trusted)
    good = {app: images.push(app) for app in ("monitor-api", "monitor-ui")}
    for image in good.values():
        images.attest(image)
    outcome = deploy_record(cluster, images.record("main-0123456", good))
    assert cluster.statuses() == [(1, "deployed")]
    assert [v.app for v in outcome.provenance.verdicts] == ["monitor-api", "monitor-ui"]  # type: ignore[union-attr]
    assert outcome.provenance.verdicts[0].key == str(tmp_path / "trusted.pub")  # type: ignore[union-attr]
    document = printed("deploy", lambda console, o: console.emit_json(o.document()), outcome)
    assert document["provenance"]["required"] and "provenance" in document["completed"]

    def with_api(image: ImageRef) -> ReleaseRecord:
        return images.record("main-7654321", {**good, "monitor-api": image})

    missing = images.push("monitor-api")
    assert "has no provenance attestation" in refused(cluster, with_api(missing))
    tampered = images.push("monitor-api")
    images.attest(tampered, tamper=True)
    assert "changed after it was signed" in refused(cluster, with_api(tampered))
    elsewhere = images.push("monitor-api")
    images.attest(elsewhere, key=stranger)
    assert "a key that is not trusted" in refused(cluster, with_api(elsewhere))
    forked = images.push("monitor-api")
    images.attest(forked, repository="someone/fork")
    assert "built from someone/fork, not aegistrader/aegistrader" in refused(
        cluster, with_api(forked)
    )
    # A statement for another digest, attached to this one (copied from a good image).
    copied = images.push("monitor-api")
    made = build(name=f"{copied.host}/{copied.repository}", digest=good["monitor-api"].digest,
                 platform_digests={}, commit=SHA)  # fmt: skip
    signer = signing.load_signer(trusted.private_pem, "AEGIS_SIGNING_KEY")
    envelope = signing.sign(
        json.dumps(provenance.statement(made)).encode(), provenance.IN_TOTO_PAYLOAD, signer
    )
    provenance_publish.attach(replace(made, digest=copied.digest), envelope, images.credentials)
    assert f"not {copied.digest}" in refused(cluster, with_api(copied))
    # Production takes the default branch and release tags only.
    branch = images.push("monitor-api")
    images.attest(branch, ref="refs/heads/feature-x")
    message = refused(cluster, with_api(branch), "production")
    assert "built from refs/heads/feature-x; this environment takes refs/heads/" in message
    assert cluster.statuses() == [(1, "deployed")]
    # --allow-unverified: only where the policy allows it, and recorded.
    with pytest.raises(InputError, match="not allowed for production"):
        deploy_record(cluster, with_api(missing), "production", allow_unverified=True)
    overridden = deploy_record(cluster, with_api(missing), allow_unverified=True)
    assert overridden.provenance.unverified == ["monitor-api"]  # type: ignore[union-attr]
    assert cluster.statuses() == [(1, "superseded"), (2, "deployed")]
    assert "unverified=monitor-api" in cluster.releases()[-1]["info"]["description"]
    assert trusted.private_pem not in cluster.console.text
    for line in trusted.private_pem.splitlines()[1:-1]:
        assert line not in cluster.console.text


def test_a_rollback_to_unverified_images_is_refused_too(
    cluster: Cluster,  # noqa: F811
    registry: LocalRegistry,  # noqa: F811
    keys: tuple[signing.KeyPair, signing.KeyPair],
    tmp_path: Path,
) -> None:
    trusted, _ = keys
    guarded(cluster, registry, tmp_path, trusted.public_pem)
    images = Images(registry, trusted)
    unsigned = {app: images.push(app) for app in ("monitor-api", "monitor-ui")}
    deploy_record(cluster, images.record("main-1111111", unsigned), allow_unverified=True)
    signed = {app: images.push(app) for app in ("monitor-api", "monitor-ui")}
    for image in signed.values():
        images.attest(image)
    deploy_record(cluster, images.record("main-2222222", signed))
    assert cluster.statuses() == [(1, "superseded"), (2, "deployed")]
    request = deploy.RollbackRequest("staging", 1, yes=True, reason="INC-9: back")
    with cluster.runner() as runner, pytest.raises(AegisError) as raised:
        deploy.rollback(runner, cluster.config, request, cluster.environ)
    assert raised.value.exit_code == ExitCode.UNTRUSTED
    assert "has no provenance attestation" in raised.value.message
    assert cluster.statuses() == [(1, "superseded"), (2, "deployed")]
    allowed = replace(request, allow_unverified=True)
    with cluster.runner() as runner:
        outcome = deploy.rollback(runner, cluster.config, allowed, cluster.environ)
    assert sorted(outcome.provenance.unverified) == ["monitor-api", "monitor-ui"]  # type: ignore[union-attr]
    assert cluster.statuses()[-1] == (3, "deployed")
