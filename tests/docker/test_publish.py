"""build -> scan -> push -> verify against a real engine, a real registry and real Trivy.

The registry runs on loopback with htpasswd auth. Trivy's vulnerability database cannot be
fetched here, so these runs switch vulnerability scanning off through the configuration
(secret and misconfiguration scanning stay on); one test shows the default fails closed.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery import reports
from aegis_delivery.cluster import deploy as deploy_flow
from aegis_delivery.cluster import values as chart_values
from aegis_delivery.config import DeliveryConfig, load_config
from aegis_delivery.errors import AegisError, CommandFailed, GateFailed, InputError, ToolUnavailable
from aegis_delivery.masking import Masker
from aegis_delivery.release import attestation, publish, registry, sbom, scan_gate, signing
from aegis_delivery.release.context import BuildContext
from aegis_delivery.release.record import read_record
from aegis_delivery.runner import Runner
from aegis_delivery.verification import check_pods, parse_pods
from tests.conftest import REPOSITORY, RecordingConsole
from tests.docker_support import (
    LOCAL_BASES,
    LocalRegistry,
    docker,
    http_get,
    published_port,
    require_engine,
    run_container,
)
from tests.fake_runner import ScriptedRunner
from tests.published import printed
from tests.services import require

pytestmark = pytest.mark.docker
SHA = "0123456789abcdef0123456789abcdef01234567"
BASES = [f"{app}:BASE_IMAGE={base}" for app, base in LOCAL_BASES.items()]


def config_for(
    server: LocalRegistry, tmp_path: Path, vulnerabilities: bool = False
) -> DeliveryConfig:
    config = load_config(REPOSITORY / "pyproject.toml")
    require((REPOSITORY / ".tools/bin/trivy").exists(), "trivy missing: scripts/install-tools")
    return replace(
        config,
        registry=server.host,
        scan=replace(config.scan, vulnerabilities=vulnerabilities),
        build=replace(config.build, release_file=tmp_path / "release.json", retry_base_seconds=0.2),
        work_directory=tmp_path / "work",  # logs, scans, SBOMs: this test's own
    )


def environment(server: LocalRegistry, password: str | None = None) -> dict[str, str]:
    return {
        "REGISTRY_USER": server.USER,
        "REGISTRY_PASSWORD": password or server.PASSWORD,
    }


def context(tag_suffix: str) -> BuildContext:
    return BuildContext(
        "local", "local", f"refs/heads/{tag_suffix}", SHA, "aegistrader/aegistrader", "t"
    )


def plan(
    config: DeliveryConfig, server: LocalRegistry, tag: str, apps: list[str]
) -> publish.ImagePlan:
    return publish.plan_images(
        config, apps=apps, tag=tag, build_args=BASES, environ=environment(server),
        context=context("main"),
    )  # fmt: skip


@pytest.fixture
def console() -> RecordingConsole:
    return RecordingConsole(Masker([LocalRegistry.PASSWORD]))


def test_a_release_tag_is_recorded_and_deployed_by_digest_end_to_end(
    local_registry: LocalRegistry, tmp_path: Path, console: RecordingConsole
) -> None:
    """push of v1.2.N -> release record -> values -> deploy dry-run -> verify on pod JSON."""
    signing_key = signing.generate()
    (tmp_path / "trusted.pub").write_text(signing_key.public_pem)
    base = config_for(local_registry, tmp_path)
    config = replace(
        base,
        release_aliases=("{major}.{minor}.{patch}",),
        chart=tmp_path / "chart",
        trust=replace(base.trust, keys=(tmp_path / "trusted.pub",)),
    )
    signed = {**environment(local_registry), "AEGIS_SIGNING_KEY": signing_key.private_pem}
    version = f"v1.2.{uuid.uuid4().int % 100_000}"
    released = BuildContext(
        "local", "push", f"refs/tags/{version}", SHA, "aegistrader/aegistrader", "t"
    )
    image_plan = publish.plan_images(
        config, build_args=BASES, environ=environment(local_registry), context=released
    )
    assert image_plan.tag == version and "latest" not in image_plan.decision.tags
    with Runner(console, console.masker) as runner:
        record = publish.release(runner, config, image_plan, force=False, environ=signed)
    assert "VULNERABILITY SCANNING IS OFF" in console.text
    assert LocalRegistry.PASSWORD not in console.text
    written = read_record(config.build.release_file)
    assert written == record and written.tag == version
    printed("release", reports.show_release, written, config.build.release_file)
    assert written.tags == (version, version.removeprefix("v"))  # the alias, never latest
    # Every image carries its SBOM in the registry, read back by the image digest.
    for app, image in written.images.items():
        fetched = sbom.fetch_recorded(written, app, environment(local_registry), config.registry)
        generated = config.work("sbom", f"sbom-{app}.cdx.json")
        assert fetched.document == generated.read_bytes()  # byte for byte what Trivy wrote
        assert fetched.manifest == image.sbom and fetched.image == image.pinned
        summary = printed("sbom", reports.show_sbom, fetched, None)
        assert str(summary["format"]).startswith("CycloneDX") and summary["components"], summary
    # Every image carries its signed provenance, and the release tag passes production's policy.
    for app, image in written.images.items():
        assert image.provenance is not None
        with Runner(console, console.masker) as runner:
            found = attestation.inspect(runner, config, app, image.pinned, "production", signed)
        assert found.verdict is not None, found.refused
        assert found.verdict.ref == f"refs/tags/{version}" and found.verdict.builder == "local"
        assert found.verdict.manifest == image.provenance
        dependencies = found.statement["predicate"]["buildDefinition"]["resolvedDependencies"]  # type: ignore[index]
        assert dependencies[1]["uri"] == f"docker-image://{LOCAL_BASES[app]}", dependencies
        printed("provenance", reports.show_provenance, found)
    # The private key is in no output and no file the toolkit wrote.
    for line in signing_key.private_pem.splitlines()[1:-1]:
        assert line not in console.text
        for written_file in (tmp_path / "work").rglob("*"):
            if written_file.is_file():
                assert line.encode() not in written_file.read_bytes(), written_file
    for app, image in written.images.items():
        for reference in image.tags:
            inspected = docker(
                "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"
            )
            assert json.loads(inspected.stdout)["digest"] == image.digest, (app, reference)
    # values: the release's own tag and every digest, pinned.
    (tmp_path / "chart").mkdir()
    with Runner(console, console.masker) as runner:
        path, tag, pinned = chart_values.values_for(runner, config, "staging", None, {})
    values = path.read_text()
    assert tag == version and pinned == 2 and f"imageTag: {version}" in values
    assert all(str(image.digest) in values for image in written.images.values())
    # deploy, dry run: the upgrade it would run carries the recorded release.
    with ScriptedRunner(console, console.masker, dry_run=True) as scripted:
        scripted.answer("version", "--short", reply=(0, "v4.1.4\n", ""))
        scripted.answer("config", "current-context", reply=(0, "aegis-staging\n", ""))
        scripted.answer("get", "namespace", reply=(0, "namespace/aegis-staging", ""))
        scripted.answer("history", reply=(0, "[]", ""))
        scripted.answer("template", "aegis", reply=(0, "", ""))
        scripted.answer("get", "manifest", reply=(1, "", "Error: release: not found"))
        scripted.answer("imagetools", "inspect", reply=lambda step: (
            0, json.dumps({"digest": step.argv[step.argv.index("inspect") + 1].split("@")[1]}), ""
        ))  # fmt: skip
        outcome = deploy_flow.deploy(
            scripted, config, deploy_flow.DeployRequest("staging", yes=True),
            environment(local_registry),
        )  # fmt: skip
    assert outcome.tag == version and outcome.digests == written.digests()
    assert [v.app for v in outcome.provenance.verdicts] == sorted(written.images)  # type: ignore[union-attr]
    assert f"--description=tag={version} sha={SHA[:7]}" in console.text
    # verify: pods that run the recorded digests pass, a pod on another digest fails.
    pods = {"items": [
        {"metadata": {"name": f"aegis-{app}-1", "labels": {"app.kubernetes.io/name": app}},
         "status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"image": f"{image.repository}:{version}",
                                           "imageID": f"{image.repository}@{image.digest}"}]}}
        for app, image in written.images.items()
    ]}  # fmt: skip
    verdicts = parse_pods(json.dumps(pods))
    assert check_pods(verdicts, written.digests()) == []
    moved = {**written.digests(), "monitor-ui": "sha256:" + "0" * 64}
    assert "expected sha256:000" in " ".join(check_pods(verdicts, moved))
    # Pulled back by digest, the API image runs and answers its health endpoint.
    api = written.images["monitor-api"].pinned
    docker("image", "rm", "--force", *(r for p in image_plan.builds for r in p.tags), check=False)
    docker("pull", api)
    name = run_container(
        f"aegis-pulled-{version.replace('.', '-')}",
        api,
        ("--read-only", "--tmpfs", "/tmp", "-p", "127.0.0.1::8000"),
    )
    try:
        assert http_get(f"http://127.0.0.1:{published_port(name, 8000)}/healthz")[0] == 200
    finally:
        docker("rm", "--force", name, check=False)


def test_a_wrong_password_fails_clearly_and_publishes_nothing(
    local_registry: LocalRegistry, tmp_path: Path, console: RecordingConsole
) -> None:
    config = config_for(local_registry, tmp_path)
    wrong = "wrong-password-123"
    console.masker.add(wrong)
    image_plan = plan(config, local_registry, "wrong-login", ["monitor-api"])
    with (
        pytest.raises(AegisError, match=r"login to 127\.0\.0\.1:\d+ as aegis failed") as raised,
        Runner(console, console.masker) as runner,
    ):
        publish.release(
            runner, config, image_plan, force=False, environ=environment(local_registry, wrong)
        )
    assert "unauthorized" in raised.value.message.lower()
    assert wrong not in raised.value.message and wrong not in console.text
    assert not config.build.release_file.exists()


def test_a_registry_stopped_mid_run_is_retried_then_reported(
    local_registry: LocalRegistry,
    tmp_path: Path,
    console: RecordingConsole,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(local_registry, tmp_path)
    image_plan = plan(config, local_registry, "stopped", ["monitor-api"])
    real_login = registry.login

    def login_then_stop(
        runner: Runner, credentials: registry.Credentials, attempts: int, base: float
    ) -> None:
        real_login(runner, credentials, attempts, base)
        local_registry.stop()

    monkeypatch.setattr(registry, "login", login_then_stop)
    try:
        with pytest.raises(CommandFailed) as raised, Runner(console, console.masker) as runner:
            publish.release(
                runner, config, image_plan, force=False, environ=environment(local_registry)
            )
    finally:
        local_registry.start()
    assert "connection refused" in raised.value.message
    assert console.text.count("transient failure") == config.build.push_attempts - 1
    assert not config.build.release_file.exists()


def test_a_pull_request_is_not_published_without_force(
    local_registry: LocalRegistry, tmp_path: Path, console: RecordingConsole
) -> None:
    config = config_for(local_registry, tmp_path)
    # A fork's pull request never publishes; nor does any when previews are off.
    fork = BuildContext("github", "pull_request", "refs/pull/3/merge", SHA, "o/r", "t", 3, SHA,
                        pull_request_fork=True)  # fmt: skip
    pr = replace(fork, pull_request_fork=False)
    for context, settings in ((fork, config), (pr, replace(config, preview=None))):
        plan = publish.plan_images(settings, context=context, environ={})
        with (
            pytest.raises(InputError, match="pass --force"),
            Runner(console, console.masker) as runner,
        ):
            publish.release(
                runner, settings, plan, force=False, environ=environment(local_registry)
            )
    image_plan = publish.plan_images(config, context=fork, environ={})
    with (
        pytest.raises(InputError, match="set GITHUB_TOKEN"),
        Runner(console, console.masker) as runner,
    ):
        publish.release(runner, config, image_plan, force=True, environ={})
    assert runner.history == []  # refused before anything ran


@pytest.fixture
def image_with_a_private_key(tmp_path: Path) -> Iterator[str]:
    require_engine()
    key = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (tmp_path / "id_rsa").write_text(key)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {LOCAL_BASES['monitor-api']}\nCOPY id_rsa /app/deploy_key\nUSER 10001\n"
    )
    name = f"aegis-test/leaky:{uuid.uuid4().hex[:8]}"
    docker("build", "--quiet", "--tag", name, str(tmp_path))
    yield name
    docker("image", "rm", "--force", name, check=False)


def test_a_planted_private_key_fails_the_secret_scan(
    local_registry: LocalRegistry,
    tmp_path: Path,
    console: RecordingConsole,
    image_with_a_private_key: str,
) -> None:
    config = config_for(local_registry, tmp_path)
    target = scan_gate.ScanTarget("image", image_with_a_private_key)
    with Runner(console, console.masker) as runner:
        reports = scan_gate.scan(runner, config, [target], tmp_path / "scan", tmp_path / "sarif")
    assert [f.kind for f in reports[0].failing] == ["secret"]
    assert reports[0].failing[0].target.startswith("/app/deploy_key")
    # The gate's verdicts as SARIF for GitHub code scanning.
    sarif = tmp_path / "sarif" / "trivy.sarif"
    document = json.loads(sarif.read_text())
    assert document["version"] == "2.1.0"
    assert any(result["ruleId"] == "private-key" for result in document["runs"][0]["results"])
    with pytest.raises(GateFailed, match="scan gate found problems"):
        scan_gate.raise_on_findings(reports, True)


def test_vulnerability_scanning_without_a_database_fails_closed(
    local_registry: LocalRegistry, tmp_path: Path, console: RecordingConsole
) -> None:
    config = config_for(local_registry, tmp_path, vulnerabilities=True)
    target = scan_gate.ScanTarget("image", LOCAL_BASES["monitor-api"])
    with (
        pytest.raises(ToolUnavailable, match="trivy could not scan"),
        Runner(console, console.masker) as runner,
    ):
        scan_gate.scan(runner, config, [target], tmp_path / "scan")


def test_a_stopped_engine_is_unavailable_before_anything_builds(
    local_registry: LocalRegistry,
    tmp_path: Path,
    console: RecordingConsole,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    config = config_for(local_registry, tmp_path)
    image_plan = plan(config, local_registry, "no-engine", ["monitor-api"])
    with (
        pytest.raises(ToolUnavailable, match="Docker engine is not running"),
        Runner(console, console.masker) as runner,
    ):
        publish.build(runner, image_plan)
    assert not (tmp_path / "digests.json").exists()
