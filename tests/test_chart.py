"""The chart gate for real (helm 3 and 4, schemas, trivy config), and that it can fail."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from aegis_delivery.chart_gate import run_gate, values_files
from aegis_delivery.cluster.deploy import deployment_values, values_key
from aegis_delivery.config import load_config
from aegis_delivery.errors import CommandFailed
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
    assert [p.name for p in values_files(CONFIG.chart)] == ["values.staging.yaml"]
    rendered = (tmp_path / "helm-values.staging.yaml").read_text()
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "Deployment",
        "Deployment",
        "Ingress",
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
    import subprocess

    digest = "sha256:" + "d" * 64
    values = tmp_path / "values.deployment.yaml"
    record = release_record("main-1", digests={"monitor-api": digest}, repository="ghcr.io/o/r")
    values.write_text(yaml.safe_dump(deployment_values(CONFIG, "main-1", record)))
    helm = str(REPOSITORY / ".tools/bin/helm")
    argv = [helm, "template", "r", str(CONFIG.chart), "--values", str(values)]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert f"ghcr.io/o/r/monitor-api@{digest}" in rendered
    assert "ghcr.io/aegistrader/aegistrader/monitor-ui:main-1" in rendered  # not recorded
    assert values_key("monitor-ui") == "monitorUi"
