"""Multi-platform images for real: monitor-api for linux/amd64 and linux/arm64, each platform
built on its own (arm64 under QEMU here; on its own native runner in CI), scanned, pushed to
the local registry under its staging tag, then merged into one index under every release tag.

The CI shape runs first (one platform job per platform with ``--stage``, then the merge job
with ``--merge``), then the local one-shot ``push --platform linux/amd64,linux/arm64``; both
must give the same platform digests and the same index.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from aegis_delivery import reports
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.masking import Masker
from aegis_delivery.release import publish, sbom
from aegis_delivery.runner import Runner
from tests.conftest import RecordingConsole
from tests.docker.test_publish import config_for, context, environment
from tests.docker_support import (
    LocalRegistry,
    docker,
    http_get,
    published_port,
    require_image,
    run_container,
)
from tests.published import printed

pytestmark = pytest.mark.docker
PLATFORMS = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# Each platform's own local base (scripts/local-base-images --arm64 makes the arm64 one).
BASE = "monitor-api:BASE_IMAGE=aegis-local/python:3.13-{arch}"


@pytest.fixture(autouse=True)
def arm64_bases() -> None:
    for arch in ("amd64", "arm64"):
        require_image(f"aegis-local/python:3.13-{arch}")


def plan(
    config: DeliveryConfig, server: LocalRegistry, tag: str, platform: str, *, stage: bool = False
) -> publish.ImagePlan:
    return publish.plan_images(
        config, apps=["monitor-api"], tag=tag, platform=platform, build_args=[BASE],
        environ=environment(server), context=context("main"), stage=stage,
    )  # fmt: skip


def index_of(reference: str) -> dict[str, str]:
    raw = json.loads(docker("buildx", "imagetools", "inspect", "--raw", reference).stdout)
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in raw["manifests"]
    }


def test_platform_jobs_then_a_merge_give_one_index_of_exactly_those_digests(
    local_registry: LocalRegistry, tmp_path: Path
) -> None:
    console = RecordingConsole(Masker([LocalRegistry.PASSWORD]))
    config = config_for(local_registry, tmp_path)
    shutil.rmtree(publish.staging_directory(config), ignore_errors=True)
    tag = f"mp-{uuid.uuid4().hex[:8]}"
    # The platform jobs: each builds, scans and stages its own platform; no release tag yet.
    staged: dict[str, str] = {}
    for platform in PLATFORMS:
        with Runner(console, console.masker) as runner:
            (platform_image,) = publish.stage(
                runner, config, plan(config, local_registry, tag, platform, stage=True),
                force=False, environ=environment(local_registry),
            )  # fmt: skip
        printed("staged", reports.show_staged, [platform_image])
        staged[platform_image.platform] = platform_image.digest
    release_tag = f"{local_registry.host}/aegistrader/aegistrader/monitor-api:{tag}"
    absent = docker("buildx", "imagetools", "inspect", release_tag, check=False)
    assert absent.returncode != 0  # nothing published before the merge
    # The merge job: nothing built, the index made from the staged digests under every tag.
    both = ",".join(PLATFORMS)
    with Runner(console, console.masker) as runner:
        record = publish.release(
            runner, config, plan(config, local_registry, tag, both), force=False,
            environ=environment(local_registry),
            merge_from=publish.staging_directory(config),
        )  # fmt: skip
    assert "build monitor-api" not in console.text.split("merge 2 platforms")[-1]
    image = record.images["monitor-api"]
    assert image.platforms == tuple(PLATFORMS) and image.platform_digests == staged
    assert image.tags == (release_tag,)
    printed("release", reports.show_release, record, config.build.release_file)
    assert index_of(release_tag) == staged  # exactly these two platforms, these digests
    manifest = json.loads(
        docker(
            "buildx", "imagetools", "inspect", release_tag, "--format", "{{json .Manifest}}"
        ).stdout
    )
    assert manifest["digest"] == image.digest
    fetched = sbom.fetch_recorded(
        record, "monitor-api", environment(local_registry), config.registry
    )
    assert fetched.manifest == image.sbom  # the SBOM is attached to the index digest
    # Each platform's image runs as its platform (arm64 under QEMU) and answers /healthz.
    for platform, machine in PLATFORMS.items():
        pinned = f"{image.repository}@{staged[platform]}"
        docker("pull", "--platform", platform, pinned)
        assert docker(
            "run", "--rm", "--platform", platform, pinned, "uname", "-m"
        ).stdout.strip() == (machine)
        name = run_container(
            f"aegis-mp-{platform.replace('/', '-')}-{tag}",
            pinned,
            ("--platform", platform, "--read-only", "--tmpfs", "/tmp", "-p", "127.0.0.1::8000"),
        )
        try:
            url = f"http://127.0.0.1:{published_port(name, 8000)}/healthz"
            # arm64 runs under QEMU: importing FastAPI and pydantic there takes 17 s from the
            # image's bytecode (40 s when each start compiled them), more on a loaded machine
            assert http_get(url, timeout=240)[0] == 200, platform
        finally:
            docker("rm", "--force", name, check=False)
    # A retried merge changes nothing: the same sources in the same order, the same index.
    with Runner(console, console.masker) as runner:
        requests = plan(config, local_registry, tag, both).builds
        assert publish.merge_app(runner, config, requests, staged) == image.digest
    # The local one-shot path (`invoke push --platform linux/amd64,linux/arm64`): both
    # platforms built here, staged, merged; the tag then serves exactly the new index. (A
    # rebuild is a new image, new digests: only a retried merge is byte-for-byte the same.)
    with Runner(console, console.masker) as runner:
        again = publish.release(
            runner, config, plan(config, local_registry, tag, both), force=False,
            environ=environment(local_registry),
        )  # fmt: skip
    rebuilt = again.images["monitor-api"]
    assert set(rebuilt.platform_digests) == set(PLATFORMS)
    assert index_of(release_tag) == rebuilt.platform_digests
