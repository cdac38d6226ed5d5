"""Every helm and kubectl command line the tasks build, run against the real helm 3.17, helm 4.1
and kubectl binaries with KUBECONFIG pointing at a closed loopback port: each must get as far as
trying the cluster ("unreachable", "connection refused"), never fail on a flag.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube, preview
from aegis_delivery.cluster.helm import Helm, Target
from aegis_delivery.config import load_config
from tests.conftest import REPOSITORY
from tests.services import free_port, require

pytestmark = pytest.mark.binaries
TOOLS = Path(os.environ.get("AEGIS_TOOLS_DIR", REPOSITORY / ".tools" / "bin"))
CONFIG = load_config(REPOSITORY / "pyproject.toml")
ENVIRONMENT = CONFIG.environment("staging")
TARGET = Target.of(CONFIG.release, ENVIRONMENT)
WITH_HELM_ARGS = replace(ENVIRONMENT, helm_args=("--disable-openapi-validation", "--skip-crds"))
# A deprecated flag is misuse too: helm 4.1 still takes --atomic, with a warning.
FLAG_ERRORS = (
    "unknown flag",
    "unknown shorthand",
    "invalid argument",
    "unknown command",
    "flag needs an argument",
    "accepts ",
    "required flag",
    "has been deprecated",
)
REACHED_THE_CLUSTER = ("unreachable", "connection refused", "Unable to connect to the server")


def binary(name: str) -> Path:
    path = TOOLS / name
    require(path.exists(), f"{path} is missing: run scripts/install-tools")
    return path


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "kubeconfig.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: closed\n  cluster:\n    server: https://127.0.0.1:{free_port()}\n"
        "    insecure-skip-tls-verify: true\n"
        f"contexts:\n- name: {ENVIRONMENT.kube_context}\n  context:\n    cluster: closed\n"
        f"    user: deployer\n    namespace: {ENVIRONMENT.namespace}\n"
        f"current-context: {ENVIRONMENT.kube_context}\n"
        "users:\n- name: deployer\n  user:\n    token: not-a-real-token\n"
    )
    path.chmod(0o600)
    return path


def run(
    argv: Sequence[str], kubeconfig: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HELM_CACHE_HOME": str(kubeconfig.parent / "cache"),
            "HELM_CONFIG_HOME": str(kubeconfig.parent / "helm-config"),
        },
    )


def assert_reached_the_cluster(result: subprocess.CompletedProcess[str]) -> None:
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert not any(error in said for error in FLAG_ERRORS), said
    assert any(sign in said for sign in REACHED_THE_CLUSTER), said


HELM_COMMANDS: dict[str, Callable[[Helm, Path], tuple[str, ...]]] = {
    "upgrade": lambda helm, values: helm_cli.upgrade_argv(
        helm, TARGET, CONFIG.chart, [values], ENVIRONMENT,
        "tag=main-0123456 sha=0123456 by=ci reason=contract test", create_namespace=False,
    ),
    "upgrade-create-namespace": lambda helm, values: helm_cli.upgrade_argv(
        helm, TARGET, CONFIG.chart, [values], WITH_HELM_ARGS, "--x", create_namespace=True,
    ),
    "rollback": lambda helm, _: helm_cli.rollback_argv(helm, TARGET, 3, ENVIRONMENT),
    "uninstall": lambda helm, _: helm_cli.uninstall_argv(helm, TARGET, ENVIRONMENT),
    "status": lambda helm, _: helm_cli.status_argv(helm, TARGET),
    "history": lambda helm, _: helm_cli.history_argv(helm, TARGET),
    "test": lambda helm, _: helm_cli.test_argv(helm, TARGET, ENVIRONMENT),
    "list-previews": lambda helm, _: helm_cli.list_argv(helm, TARGET.kube_context, "^aegis-pr-"),
}  # fmt: skip


@pytest.mark.parametrize("name", ["helm", "helm3"], ids=["helm4", "helm3"])
@pytest.mark.parametrize("command", sorted(HELM_COMMANDS))
def test_helm_command_lines_are_accepted(
    name: str, command: str, kubeconfig: Path, tmp_path: Path
) -> None:
    path = binary(name)
    version = subprocess.run(
        [str(path), "version", "--short"], capture_output=True, text=True, check=True
    )
    helm = Helm(path, helm_cli.parse_version(version.stdout))
    assert helm.major == (4 if name == "helm" else 3)
    values = tmp_path / "values.deployment.yaml"
    values.write_text("global:\n  imageTag: main-0123456\n")
    argv = HELM_COMMANDS[command](helm, values)
    if helm.major >= 4:
        assert "--atomic" not in argv and "--force" not in argv
    if command.startswith("upgrade"):
        assert "--history-max" in argv
        assert "--atomic" not in argv and "--rollback-on-failure" not in argv
    assert_reached_the_cluster(run(argv, kubeconfig))


def kubectl_commands(kubectl: Path) -> dict[str, tuple[tuple[str, ...], str | None]]:
    import datetime as dt

    manifest = kube.lease_manifest(
        TARGET.release, TARGET.namespace, "ci@host/1", 720, dt.datetime.now(dt.UTC)
    )
    context = TARGET.kube_context
    stamp = preview.Stamp(7, "a" * 40, "octocat", "pr-7-aaaaaaa", "https://pr-7.x.example",
                          dt.datetime.now(dt.UTC), 3600)  # fmt: skip
    namespace = stamp.manifest("aegis-pr-7")
    return {
        "namespace": (kube.namespace_argv(kubectl, TARGET), None),
        "lease-create": (kube.lease_create_argv(kubectl, TARGET), manifest),
        "lease-get": (kube.lease_get_argv(kubectl, TARGET), None),
        "lease-delete": (kube.lease_delete_argv(kubectl, TARGET), None),
        "rollout": (kube.rollout_argv(kubectl, TARGET, "aegis-monitor-api", "10m"), None),
        "pods": (kube.pods_argv(kubectl, TARGET), None),
        "events": (kube.events_argv(kubectl, TARGET, "aegis-monitor-api-1"), None),
        "logs": (kube.logs_argv(kubectl, TARGET, "aegis-monitor-api-1"), None),
        "services": (kube.services_argv(kubectl, TARGET), None),
        "nats-ping": (kube.nats_ping_argv(kubectl, TARGET), None),
        # preview namespaces (cluster/preview.py): cluster-scoped
        "previews": (kube.namespaces_argv(kubectl, context, preview.SELECTOR), None),
        "preview-get": (kube.namespace_json_argv(kubectl, context, "aegis-pr-7"), None),
        "preview-create": (kube.namespace_create_argv(kubectl, context), namespace),
        "preview-annotate": (kube.annotate_namespace_argv(kubectl, context, "aegis-pr-7",
                                                          stamp.refreshed()), None),
        "preview-delete": (kube.delete_namespace_argv(kubectl, context, "aegis-pr-7", "5m"),
                           None),
    }  # fmt: skip


@pytest.mark.parametrize(
    "command",
    ["namespace", "lease-create", "lease-get", "lease-delete", "rollout", "pods", "events",
     "logs", "services", "nats-ping", "previews", "preview-get", "preview-create",
     "preview-annotate", "preview-delete"],
)  # fmt: skip
def test_kubectl_command_lines_are_accepted(command: str, kubeconfig: Path) -> None:
    argv, stdin = kubectl_commands(binary("kubectl"))[command]
    assert_reached_the_cluster(run(argv, kubeconfig, stdin))


def test_the_context_query_answers_from_the_kubeconfig(kubeconfig: Path) -> None:
    result = run(kube.current_context_argv(binary("kubectl")), kubeconfig)
    assert result.returncode == 0 and result.stdout.strip() == ENVIRONMENT.kube_context


def test_a_misused_flag_would_be_caught(kubeconfig: Path) -> None:
    """The check can fail: helm 3 has no --rollback-on-failure; helm 4 deprecates --atomic."""
    chart = str(CONFIG.chart)
    helm3 = run(
        [str(binary("helm3")), "upgrade", "--install", "x", chart, "--rollback-on-failure"],
        kubeconfig,
    )
    assert "unknown flag: --rollback-on-failure" in helm3.stderr
    helm4 = run([str(binary("helm")), "upgrade", "--install", "x", chart, "--atomic"], kubeconfig)
    with pytest.raises(AssertionError):
        assert_reached_the_cluster(helm4)
