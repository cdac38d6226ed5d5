"""The multi-platform path's decisions without an engine: staged files from CI artifacts are
outside input, the merge needs every platform, and the index must list exactly what was
merged. (The real builds, pushes and merges are in tests/docker/test_multiplatform.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_delivery.config import DeliveryConfig, load_config
from aegis_delivery.errors import CommandFailed, InputError
from aegis_delivery.masking import Masker
from aegis_delivery.release import publish
from aegis_delivery.release.context import BuildContext
from aegis_delivery.release.record import StagedPlatform, read_staged
from tests.conftest import REPOSITORY, RecordingConsole
from tests.fake_runner import ScriptedRunner

SHA = "0123456789abcdef0123456789abcdef01234567"
MAIN = BuildContext("github", "push", "refs/heads/main", SHA, "o/r", "octocat")
DIGEST = {"linux/amd64": "sha256:" + "a" * 64, "linux/arm64": "sha256:" + "b" * 64}
INDEX = "sha256:" + "c" * 64
REPO = "ghcr.io/o/r/monitor-api"


@pytest.fixture
def config(tmp_path: Path) -> DeliveryConfig:
    base = load_config(REPOSITORY / "pyproject.toml")
    return replace(base, root=tmp_path)


@pytest.fixture
def runner() -> Iterator[ScriptedRunner]:
    console = RecordingConsole(Masker())
    with ScriptedRunner(console, console.masker) as scripted:
        yield scripted


def both(config: DeliveryConfig, **options: object) -> publish.ImagePlan:
    return publish.plan_images(
        config, apps=["monitor-api"], platform="linux/amd64,linux/arm64", environ={},
        context=MAIN, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def stage_files(config: DeliveryConfig, platforms: dict[str, str]) -> Path:
    directory = publish.staging_directory(config)
    directory.mkdir(parents=True)
    for platform, digest in platforms.items():
        staged = StagedPlatform(
            app="monitor-api", platform=platform, repository=REPO, digest=digest
        )
        publish.stage_file(config, "monitor-api", platform).write_text(staged.text())
    return directory


def test_the_merge_needs_every_planned_platform(config: DeliveryConfig) -> None:
    directory = stage_files(config, {"linux/amd64": DIGEST["linux/amd64"]})
    with pytest.raises(InputError, match=r"no staged image for monitor-api linux/arm64 .*--stage"):
        publish.staged_digests(both(config), directory)


def test_a_platform_staged_for_another_repository_is_refused(config: DeliveryConfig) -> None:
    directory = stage_files(config, DIGEST)
    other = json.loads(publish.stage_file(config, "monitor-api", "linux/arm64").read_text())
    other["repository"] = "ghcr.io/someone/else/monitor-api"
    publish.stage_file(config, "monitor-api", "linux/arm64").write_text(json.dumps(other))
    with pytest.raises(InputError, match=r"was staged in ghcr\.io/someone/else/monitor-api"):
        publish.staged_digests(both(config), directory)


def test_staged_digests_come_back_in_the_planned_order(config: DeliveryConfig) -> None:
    directory = stage_files(config, DIGEST)
    assert publish.staged_digests(both(config), directory) == {"monitor-api": DIGEST}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_staged_file_is_a_staged_image_or_a_one_line_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    directory = tmp_path_factory.mktemp("staged")
    (directory / "monitor-api-linux-arm64.json").write_bytes(content)
    try:
        staged = read_staged(directory)
    except InputError as error:
        assert "\n" not in error.message and "monitor-api-linux-arm64.json" in error.message
    else:
        assert [s.platform for s in staged] == [staged[0].platform]


def script_registry(runner: ScriptedRunner, listed: dict[str, str]) -> None:
    index = {
        "manifests": [
            {"digest": d, "platform": {"os": p.split("/")[0], "architecture": p.split("/")[1]}}
            for p, d in listed.items()
        ]
    }
    runner.answer("imagetools", "create", reply=(0, "", ""))
    runner.answer("imagetools", "inspect", "--raw", reply=(0, json.dumps(index), ""))
    runner.answer("imagetools", "inspect", reply=(0, json.dumps({"digest": INDEX}), ""))


def test_the_index_is_made_from_the_digests_in_platform_order(
    config: DeliveryConfig, runner: ScriptedRunner
) -> None:
    script_registry(runner, DIGEST)
    requests = both(config).builds
    assert publish.merge_app(runner, config, requests, DIGEST) == INDEX
    create = next(step.argv for step in runner.calls if "create" in step.argv)
    tags = [create[i + 1] for i, part in enumerate(create) if part == "--tag"]
    assert tags == [f"{REPO}:main-0123456", f"{REPO}:latest"]
    assert list(create[-2:]) == [
        f"{REPO}@{DIGEST['linux/amd64']}",
        f"{REPO}@{DIGEST['linux/arm64']}",
    ]


def test_an_index_that_lists_other_platforms_fails_the_merge(
    config: DeliveryConfig, runner: ScriptedRunner
) -> None:
    script_registry(runner, {"linux/amd64": DIGEST["linux/amd64"]})
    with pytest.raises(CommandFailed, match="the index lists"):
        publish.merge_app(runner, config, both(config).builds, DIGEST)


def test_stage_and_merge_are_two_jobs_and_a_platform_job_has_one_platform(
    config: DeliveryConfig, runner: ScriptedRunner
) -> None:
    with pytest.raises(InputError, match="two CI jobs"):
        publish.one_job(stage=True, merge=True)
    with pytest.raises(InputError, match="--stage builds one platform"):
        publish.stage(runner, config, both(config, stage=True), force=True, environ={})
    assert getattr(runner, "calls", []) == []


@pytest.mark.parametrize("answer", ["not json", "[]", '{"manifests": [{"digest": "sha256:1"}]}'])
def test_an_answer_that_is_not_an_index_is_one_clear_error(
    runner: ScriptedRunner, answer: str
) -> None:
    from aegis_delivery.release import registry

    runner.answer("imagetools", "inspect", "--raw", reply=(0, answer, ""))
    with pytest.raises(CommandFailed, match="not an image index"):
        registry.index_platforms(runner, f"{REPO}:v1", 1, 0.0)
