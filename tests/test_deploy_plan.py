"""What a deploy's plan shows a reviewer: per workload the image helm will set and where it came
from, and the values file's content; a rollback's plan names the images it brings back.

The plan's images are checked against what the real run gives helm: the values file a real run
writes, rendered by the real helm binary with the real chart.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from aegis_delivery.cluster import deploy
from aegis_delivery.cluster.values import planned_images, values_key, write_values
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.masking import Masker
from aegis_delivery.release.record import read_record
from aegis_delivery.runner import Runner
from tests import test_deploy
from tests.conftest import REPOSITORY, RecordingConsole
from tests.fake_runner import ScriptedRunner
from tests.records import DIGEST_API, release_record
from tests.test_deploy import HELM4_VERSION, history, script_cluster

# The deploy tests' fixtures: a config with a release record, a console, a scripted runner.
config, console, runner = test_deploy.config, test_deploy.console, test_deploy.runner

IMAGE_LINE = re.compile(r"image (\S+): (\S+) \((.*)\)$")


def plan_images(console: RecordingConsole) -> dict[str, tuple[str, str]]:
    """{app: (reference, source)} from the plan's ``image APP: REF (source)`` lines."""
    found: dict[str, tuple[str, str]] = {}
    for line in console.text.splitlines():
        matched = IMAGE_LINE.search(line.strip())
        if matched:
            found[matched[1]] = (matched[2], matched[3])
    return found


def partly_pinned(config: DeliveryConfig) -> DeliveryConfig:
    """A release record that pins monitor-api by digest and holds no digest for monitor-ui."""
    record = release_record("main-0123456", digests={"monitor-api": DIGEST_API})
    config.build.release_file.write_text(record.text())
    return config


def test_the_chart_rule_a_digest_wins_else_the_app_tag_else_the_global_tag(
    config: DeliveryConfig,
) -> None:
    values = {
        "global": {"imageTag": "main-1"},
        "apps": {
            values_key("monitor-api"): {"image": {"repository": "r/api", "digest": DIGEST_API,
                                                  "tag": "ignored"}},
            values_key("monitor-ui"): {"image": {"repository": "r/ui"}},
        },
    }  # fmt: skip
    shown = {image.app: image.reference for image in planned_images(config, values, "here")}
    assert shown == {"monitor-api": f"r/api@{DIGEST_API}", "monitor-ui": "r/ui:main-1"}
    values["apps"][values_key("monitor-ui")]["image"]["tag"] = "own"  # type: ignore[index]
    assert planned_images(config, values, "here")[1].reference == "r/ui:own"


def test_a_dry_run_deploy_shows_each_image_and_the_values_it_would_write(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    partly_pinned(config)
    with ScriptedRunner(console, console.masker, dry_run=True) as dry:
        dry.answer("version", "--short", reply=(0, HELM4_VERSION, ""))
        script_cluster(dry)
        deploy.deploy(
            dry, config, deploy.DeployRequest("staging", yes=True), {}, verify_after=False
        )
    images = plan_images(console)
    assert images["monitor-api"] == (
        f"ghcr.io/aegistrader/aegistrader/monitor-api@{DIGEST_API}",
        "the release record for main-0123456, by digest",
    )
    assert images["monitor-ui"] == (
        "ghcr.io/aegistrader/aegistrader/monitor-ui:main-0123456",
        "the release record for main-0123456, by tag: the registry decides what it serves",
    )
    shown = [line.strip() for line in console.text.splitlines()]
    assert "[dry-run]     global:" in shown and f"[dry-run]           digest: {DIGEST_API}" in shown
    assert not (config.chart / "values.deployment.yaml").exists()  # shown, not written


def test_a_dry_run_never_shows_a_secret_in_the_values(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    console.masker.add("ghcr.io/aegistrader/aegistrader")  # stands in for any masked value
    with ScriptedRunner(console, console.masker, dry_run=True) as dry:
        write_values(dry, config, "main-0123456", release_record(), {})
    assert "ghcr.io/aegistrader/aegistrader" not in console.text
    assert "[dry-run]     " in console.text


def test_a_rollback_plan_names_the_images_the_revision_brings_back(
    runner: ScriptedRunner, config: DeliveryConfig, console: RecordingConsole
) -> None:
    old = {"global": {"imageTag": "main-1111111"},
           "apps": {"monitorApi": {"image": {"repository": "r/api", "digest": DIGEST_API}},
                    "monitorUi": {"image": {"repository": "r/ui"}}}}  # fmt: skip
    runner.answer("get", "values", "aegis", "--revision=2", reply=(0, json.dumps(old), ""))
    script_cluster(runner, history=history("superseded", "superseded", "deployed"))
    runner.answer("rollback", "aegis", "2", reply=(0, "Rollback was a success", ""))
    deploy.rollback(runner, config, deploy.RollbackRequest("staging", None, True, "INC-7"), {})
    images = plan_images(console)
    assert images["monitor-api"] == (f"r/api@{DIGEST_API}", "revision 2's values, by digest")
    assert images["monitor-ui"][0] == "r/ui:main-1111111"
    shown = console.text.index("image monitor-api: r/api@")
    assert shown < console.text.index("roll back to revision 2")  # before anything changes


@pytest.mark.binaries
@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_the_plan_shows_the_images_the_real_run_gives_helm(
    config: DeliveryConfig, tmp_path: Path, helm: str
) -> None:
    binary = REPOSITORY / ".tools/bin" / helm
    assert binary.exists(), f"{binary} missing: scripts/install-tools"
    partly_pinned(config)
    planned = RecordingConsole(Masker())
    with ScriptedRunner(planned, planned.masker, dry_run=True) as dry:
        write_values(dry, config, "main-0123456", read_record(config.build.release_file), {})
    real = RecordingConsole(Masker())
    with Runner(real, real.masker) as real_runner:
        written = write_values(
            real_runner, config, "main-0123456", read_record(config.build.release_file), {}
        )
    chart = REPOSITORY / "helm"
    staging = chart / "values.staging.yaml"
    argv = [str(binary), "template", "aegis", str(chart), f"--values={staging}",
            f"--values={written}"]  # fmt: skip
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    given: dict[str, str] = {}
    for document in yaml.safe_load_all(rendered):
        if isinstance(document, dict) and document.get("kind") == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                given[container["name"]] = container["image"]
    assert {app: ref for app, (ref, _) in plan_images(planned).items()} == given
    assert plan_images(real) == plan_images(planned)  # a real run prints the same lines
