"""The chart gate for real (helm 3 and 4, schemas, trivy config), and that it can fail."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from aegis_delivery.chart_gate import run_gate, values_files
from aegis_delivery.cluster.values import deployment_values, values_key
from aegis_delivery.config import load_config
from aegis_delivery.errors import CommandFailed, GateFailed
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from tests.conftest import REPOSITORY, RecordingConsole
from tests.records import release_record
from tests.services import require

pytestmark = pytest.mark.binaries
CONFIG = load_config(REPOSITORY / "pyproject.toml")


@pytest.fixture(autouse=True)
def binaries() -> None:
    for name in ("helm", "helm3", "trivy"):
        require(
            (REPOSITORY / ".tools/bin" / name).exists(), f"{name} missing: scripts/install-tools"
        )
    require(shutil.which("kubernetes-validate") is not None, "kubernetes-validate missing")


def test_the_chart_passes_its_gate(tmp_path: Path) -> None:
    console = RecordingConsole(Masker())
    with Runner(console, console.masker) as runner:
        run_gate(runner, CONFIG, tmp_path)
    assert "trivy config clean" in console.text
    assert "a release without a tag refused" in console.text
    assert [p.name for p in values_files(CONFIG.chart)] == [
        "values.preview.yaml", "values.staging.yaml",
    ]  # fmt: skip
    preview = [d for d in yaml.safe_load_all((tmp_path / "helm-values.preview.yaml").read_text())
               if d]  # fmt: skip
    assert {"ResourceQuota", "LimitRange", "NetworkPolicy"} <= {d["kind"] for d in preview}
    rendered = (tmp_path / "helm-values.staging.yaml").read_text()
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "Deployment",
        "Deployment",
        "Ingress",
        "NetworkPolicy",
        "NetworkPolicy",
        "Pod",
        "Service",
        "Service",
        "ServiceAccount",
    ]
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["image"].endswith(":gate-check")


def test_a_typo_in_values_fails_at_lint_time(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CONFIG.chart, chart)
    (chart / "values.typo.yaml").write_text("apps:\n  monitorApi:\n    replica: 3\n")
    console = RecordingConsole(Masker())
    with (
        pytest.raises(CommandFailed, match="lint") as raised,
        Runner(console, console.masker) as runner,
    ):
        run_gate(runner, replace(CONFIG, chart=chart), tmp_path)
    assert "values.typo.yaml" in raised.value.message
    assert "replica" in raised.value.message  # the schema names the unknown key


def test_a_digest_wins_over_the_tag(tmp_path: Path) -> None:
    digest = "sha256:" + "d" * 64
    values = tmp_path / "values.deployment.yaml"
    record = release_record("main-1", digests={"monitor-api": digest}, repository="ghcr.io/o/r")
    values.write_text(
        yaml.safe_dump(deployment_values(CONFIG, "main-1", record, CONFIG.repository))
    )
    helm = str(REPOSITORY / ".tools/bin/helm")
    argv = [helm, "template", "r", str(CONFIG.chart), "--values", str(values)]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert f"ghcr.io/o/r/monitor-api@{digest}" in rendered
    assert "ghcr.io/aegistrader/aegistrader/monitor-ui:main-1" in rendered  # not recorded
    assert values_key("monitor-ui") == "monitorUi"


def render(helm: str, chart: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [str(REPOSITORY / ".tools/bin" / helm), "template", "r", str(chart), *options]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_a_release_without_a_tag_is_refused(helm: str) -> None:
    refused = render(helm, CONFIG.chart)
    assert refused.returncode != 0 and "imageTag" in refused.stderr
    lint = [str(REPOSITORY / ".tools/bin" / helm), "lint", "--strict", str(CONFIG.chart)]
    linted = subprocess.run(lint, capture_output=True, text=True, check=False)
    assert linted.returncode != 0 and "imageTag" in linted.stdout + linted.stderr


def test_the_gate_fails_a_chart_that_renders_without_a_tag(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CONFIG.chart, chart)
    values = (chart / "values.yaml").read_text()
    (chart / "values.yaml").write_text(values.replace('imageTag: ""', 'imageTag: "latest"'))
    console = RecordingConsole(Masker())
    with (
        pytest.raises(GateFailed, match=r"without global\.imageTag"),
        Runner(console, console.masker) as runner,
    ):
        run_gate(runner, replace(CONFIG, chart=chart), tmp_path)


def documents_of(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_network_policies_allow_only_the_documented_paths(helm: str) -> None:
    rendered = render(helm, CONFIG.chart, "--set", "global.imageTag=t1").stdout
    policies = {
        d["metadata"]["name"]: d["spec"]
        for d in documents_of(rendered)
        if d["kind"] == "NetworkPolicy"
    }
    api, ui = policies["r-monitor-api"], policies["r-monitor-ui"]
    assert api["policyTypes"] == ui["policyTypes"] == ["Ingress", "Egress"]
    api_from = [peer["podSelector"]["matchLabels"] for peer in api["ingress"][0]["from"]]
    assert {"app.kubernetes.io/name": "monitor-ui", "app.kubernetes.io/instance": "r"} in api_from
    assert len(api["ingress"]) == 1 and len(api_from) == 2  # the UI and the helm test pod
    ui_from = ui["ingress"][0]["from"]
    assert ui_from[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    api_egress_ports = sorted(rule["ports"][0]["port"] for rule in api["egress"])
    assert api_egress_ports == [53, 4222, 5432]
    ui_egress = ui["egress"][1]
    assert ui_egress["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert ui_egress["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == (
        "monitor-api"
    )
    switched_off = render(
        helm, CONFIG.chart, "--set", "global.imageTag=t1", "--set", "networkPolicy.enabled=false"
    ).stdout
    assert "NetworkPolicy" not in {d["kind"] for d in documents_of(switched_off)}


@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_scheduling_and_metadata_keys_are_accepted_and_rendered(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "scheduling.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "global": {"imageTag": "t1"},
                "apps": {
                    "monitorApi": {
                        "nodeSelector": {"kubernetes.io/arch": "arm64"},
                        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                        "affinity": {"podAntiAffinity": {}},
                        "podAnnotations": {"prometheus.io/scrape": "true"},
                        "podLabels": {"team": "platform"},
                    }
                },
            }
        )
    )
    rendered = render(helm, CONFIG.chart, "--values", str(values))
    assert rendered.returncode == 0, rendered.stderr
    deployment = next(
        d
        for d in documents_of(rendered.stdout)
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "r-monitor-api"
    )
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "platform"
    assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert template["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert template["spec"]["affinity"] == {"podAntiAffinity": {}}
    validator = shutil.which("kubernetes-validate")
    assert validator is not None
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered.stdout)
    validated = subprocess.run(
        [validator, "--strict", "--quiet", str(manifest)], capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
