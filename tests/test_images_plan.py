"""Image plans as data: tags to build requests, the python-on-whales contract, build args."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from unittest import mock

import certifi
import pytest

from aegis_delivery.config import load_config
from aegis_delivery.errors import ConfigError, InputError
from aegis_delivery.masking import Masker
from aegis_delivery.release import buildx, images
from aegis_delivery.release.context import BuildContext
from aegis_delivery.release.publish import ImagePlan, plan_images
from tests.conftest import REPOSITORY

CONFIG = load_config(REPOSITORY / "pyproject.toml")
SHA = "0123456789abcdef0123456789abcdef01234567"
MAIN = BuildContext("github", "push", "refs/heads/main", SHA, "Your-Org/AegisTrader", "octocat")
RELEASE = BuildContext("github", "push", "refs/tags/v1.4.0", SHA, "your-org/aegistrader", "me")


def plan(
    context: BuildContext = MAIN,
    environ: dict[str, str] | None = None,
    **options: Any,  # noqa: ANN401
) -> ImagePlan:
    return plan_images(CONFIG, environ=environ or {}, context=context, **options)


def whales_argv(request: images.BuildRequest) -> list[str]:
    """The argv python-on-whales really builds from the request's keyword arguments."""
    from python_on_whales import docker
    from python_on_whales.components.buildx import cli_wrapper

    captured: list[str] = []

    def stream(argv: list[object]) -> Iterator[str]:
        captured.extend(str(part) for part in argv)
        return iter(())

    with mock.patch.object(cli_wrapper, "stream_buildx_logs", stream):
        logs = docker.buildx.build(**request.whales_arguments(), stream_logs=True)
        list(cast("Iterator[str]", logs))
    return captured


@pytest.mark.parametrize(
    "platform", ["linux/amd64", "linux/amd64,linux/arm64"], ids=["load", "multi"]
)
def test_the_printed_command_is_what_python_on_whales_runs(platform: str) -> None:
    request = plan(platform=platform, ca_bundle=certifi.where()).builds[0]
    printed = list(request.argv())
    really = whales_argv(request)
    assert Path(really[0]).name == "docker" and printed[0] == "docker"
    assert sorted(really[1:]) == sorted(printed[1:])
    assert really[-1] == printed[-1] == str(request.context)


def test_main_builds_for_the_host_locally_and_every_platform_in_ci() -> None:
    local = plan().builds[0]
    assert local.platforms == (images.host_platform(),) and not local.staged
    assert local.tags == (
        "ghcr.io/your-org/aegistrader/monitor-api:main-0123456",
        "ghcr.io/your-org/aegistrader/monitor-api:latest",
    )
    assert local.build_args["REVISION"] == SHA
    assert local.build_args["IMAGE_TAG"] == "main-0123456"
    assert local.build_args["SOURCE"] == "https://github.com/your-org/aegistrader"
    # Several platforms: one build each, loaded and scanned, pushed under a staging tag; the
    # release tags go on the index merged from their digests.
    amd64, arm64 = plan(environ={"CI": "true", "GITHUB_ACTIONS": "true"}).builds[:2]
    assert (amd64.platforms, arm64.platforms) == (("linux/amd64",), ("linux/arm64",))
    assert amd64.staged and arm64.staged and "--load" in arm64.argv()
    assert arm64.tags == (
        "ghcr.io/your-org/aegistrader/monitor-api:build-main-0123456-linux-arm64",
    )
    assert arm64.published_tags == local.tags
    assert amd64.cache_from == "type=gha,scope=monitor-api-linux-amd64"
    assert amd64.metadata_file != arm64.metadata_file


def test_a_platform_job_stages_its_one_platform() -> None:
    staged = plan(platform="linux/arm64", stage=True).builds
    assert [(r.app, r.platform, r.staged) for r in staged] == [
        ("monitor-api", "linux/arm64", True), ("monitor-ui", "linux/arm64", True),
    ]  # fmt: skip
    assert staged[0].tags[0].endswith(":build-main-0123456-linux-arm64")


def test_a_build_arg_can_name_each_platforms_own_base() -> None:
    base = "BASE_IMAGE=aegis-local/python:3.13-{arch}"
    two = plan(platform="linux/amd64,linux/arm64", apps=["monitor-api"], build_args=[base])
    requests = two.builds
    assert [r.build_args["BASE_IMAGE"] for r in requests] == [
        "aegis-local/python:3.13-amd64", "aegis-local/python:3.13-arm64",
    ]  # fmt: skip


def test_a_release_is_labelled_with_its_version() -> None:
    request = plan(RELEASE).builds[1]
    assert request.app == "monitor-ui"
    assert request.build_args["VERSION"] == "1.4.0" and request.build_args["IMAGE_TAG"] == "v1.4.0"
    assert request.tags == ("ghcr.io/your-org/aegistrader/monitor-ui:v1.4.0",)


def test_caches_secrets_and_build_args() -> None:
    from dataclasses import replace

    config = replace(CONFIG, build=replace(CONFIG.build, cache="registry"))
    request = plan_images(
        config,
        environ={"AEGIS_CA_BUNDLE": certifi.where()},
        context=MAIN,
        apps=["monitor-ui"],
        build_args=["BASE_IMAGE=x", "monitor-ui:NODE_VERSION=22"],
    ).builds[0]
    assert (
        request.cache_from
        == "type=registry,ref=ghcr.io/your-org/aegistrader/monitor-ui:buildcache-linux-amd64"
    )
    assert request.cache_to is not None and request.cache_to.endswith(",mode=max")
    assert request.secrets == (f"id=ca_bundle,src={certifi.where()}",)
    assert request.build_args["BASE_IMAGE"] == "x" and request.build_args["NODE_VERSION"] == "22"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"apps": ["monitor"]}, "unknown app 'monitor'"),
        ({"tag": "bad tag!"}, "invalid tag 'bad tag!'"),
        ({"platform": "linux/amd64,windows/amd64"}, "unknown platform 'windows/amd64'"),
        ({"ca_bundle": "/no/such/ca.pem"}, r"/no/such/ca.pem \(from --ca-bundle\): no such file"),
        ({"build_args": ["NOEQUALS"]}, "expected KEY=VALUE or APP:KEY=VALUE"),
        ({"build_args": ["nope:BASE_IMAGE=x"]}, "unknown app 'nope'"),
    ],
    ids=["app", "tag", "platform", "ca-bundle", "build-arg", "build-arg-app"],
)
def test_bad_input_is_refused_before_anything_runs(options: dict[str, Any], message: str) -> None:
    with pytest.raises((InputError, ConfigError), match=message):
        plan(**options)


BUILDX_INSPECT = """Name:          default
Driver:        {driver}
Last Activity: 2026-12-07 01:00:00 +0000 UTC

Nodes:
Name:      default
Endpoint:  default
Status:    running
"""


@pytest.mark.parametrize(
    ("driver", "kept"), [("docker", False), ("docker-container", True)], ids=["docker", "container"]
)
def test_a_gha_cache_the_builder_cannot_export_degrades_to_none_with_one_warning(
    driver: str, kept: bool
) -> None:
    from tests.conftest import RecordingConsole
    from tests.fake_runner import ScriptedRunner

    requests = plan(environ={"CI": "true", "GITHUB_ACTIONS": "true"}, platform="linux/amd64").builds
    assert requests and all(r.cache_to and r.cache_to.startswith("type=gha") for r in requests)
    console = RecordingConsole(Masker())
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("buildx", "inspect", reply=(0, BUILDX_INSPECT.format(driver=driver), ""))
        found = buildx.builder_driver(runner)
        assert found == driver
        result = buildx.without_unsupported_cache(requests, found, console)
    assert all(bool(r.cache_to) is kept and bool(r.cache_from) is kept for r in result)
    assert all("--cache-to" not in r.argv() for r in result) is not kept
    warnings = [line for line in console.text.splitlines() if "cannot export a build cache" in line]
    assert len(warnings) == (0 if kept else 1)


def test_an_unknown_builder_keeps_the_cache() -> None:
    from tests.conftest import RecordingConsole
    from tests.fake_runner import ScriptedRunner

    console = RecordingConsole(Masker())
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("buildx", "inspect", reply=(1, "", "ERROR: no builder"))
        assert buildx.builder_driver(runner) is None
    requests = plan(environ={"CI": "true", "GITHUB_ACTIONS": "true"}, platform="linux/amd64").builds
    assert buildx.without_unsupported_cache(requests, None, console) == list(requests)
