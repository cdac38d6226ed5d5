"""`invoke --dry TASK` and `invoke TASK --dry-run` change nothing, for every task.

Every external tool is a recording fake (helm, kubectl, docker, trivy, nox, git stays real):
each writes its argv to a log and answers the questions a task asks (versions, the current
context, an empty history). Whatever a task does with those answers, no recorded command may
be one that changes something.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY
from tests.test_entry_points import (
    CLOSED_PORT_KUBECONFIG,
    recorded_config,  # noqa: F401 - the fixture
)

# The real `invoke`/`nox` entry points as subprocesses (about 0.8 s each): the full gate
# runs them; the quick local gate (`nox -s logic`) leaves them out.
pytestmark = pytest.mark.entry

FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
case "$(basename "$0") $*" in
  "helm version"*) echo v4.1.4+g05fa379 ;;
  "helm history"*) echo "[]" ;;
  "helm status"*) echo "{{}}" ;;
  "kubectl config current-context"*) echo aegis-staging ;;
  *"get pods"*|*"get configmaps"*|*"get namespaces"*) echo '{{"items": []}}' ;;
  *"get namespace "*) echo 'Error from server (NotFound): namespaces "x" not found' >&2; exit 1 ;;
  "helm list"*) echo "[]" ;;
  "kubectl version"*) echo "Client Version: v1.35.2" ;;
  "trivy --version"*) echo "Version: 0.76.0" ;;
  "docker info"*) echo 20.10.24 ;;
  "docker buildx imagetools inspect"*) echo '{{"digest": "sha256:{digest}"}}' ;;
  "nox --version"*) echo 2026.1.1 ;;
esac
exit 0
"""
# What a changing command looks like, tool by tool.
CHANGING = re.compile(
    r"^(helm (upgrade|install|rollback|uninstall|test)\b"
    r"|kubectl .*\b(create|replace|apply|delete|annotate|patch|exec)\b"
    r"|docker (push|login|build|buildx build|buildx imagetools create|compose .*\b(up|down))\b"
    r"|nox\b(?! --version))"
)
TASKS = [
    ("config",), ("doctor",), ("gate",), ("tags",), ("build",), ("scan", "--build"),
    ("push",), ("push", "--platform", "linux/amd64,linux/arm64"),
    ("push", "--stage", "--platform", "linux/arm64"), ("push", "--merge"), ("values",),
    ("deploy", "--env", "staging", "--yes"),
    ("deploy", "--tag", "emergency-fix", "--reason", "INC-1", "--yes"),
    ("rollback", "--revision", "1", "--reason", "INC-1", "--yes"), ("verify",), ("status",),
    ("diff",), ("history",), ("promote", "--yes", "--reason", "weekly"),
    ("sbom", "--app", "monitor-api", "--output", "sbom.cdx.json"),
    ("provenance", "--app", "monitor-api"), ("keygen", "--private-key", "/tmp/aegis-dry.pem"),
    ("pipeline", "--env", "staging"), ("pipeline", "--offline"), ("down",),
    ("preview", "--pr", "7"), ("preview-down", "--pr", "7"), ("preview-gc",), ("preview-list",),
]  # fmt: skip


def every_task() -> set[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list", "--list-format", "json"], cwd=REPOSITORY,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {str(task["name"]) for task in json.loads(listed)["tasks"]}


def test_the_list_below_covers_every_task() -> None:
    assert {arguments[0] for arguments in TASKS} == every_task()


# Invoke's own --dry reaches every task through one place (session.task_session reads
# c.config.run.dry), so it is run for the tasks that change the most; each task's own
# --dry-run, which the task must pass on itself, is run for every task.
INVOKE_DRY = {"push", "deploy", "rollback", "promote", "pipeline", "down", "preview",
              "preview-down", "preview-gc", "keygen"}  # fmt: skip
RUNS = [(arguments, "--dry-run") for arguments in TASKS] + [
    (arguments, "--dry") for arguments in TASKS if arguments[0] in INVOKE_DRY
]


@pytest.mark.parametrize(
    ("arguments", "how"), RUNS, ids=lambda a: "-".join(a) if isinstance(a, tuple) else a
)
def test_a_dry_run_changes_nothing(
    tmp_path: Path, recorded_config: Path, arguments: tuple[str, ...], how: str  # noqa: F811
) -> None:
    log = fake_tools(tmp_path)
    result = run_task(tmp_path, recorded_config, arguments, how)
    ran = log.read_text().splitlines()
    changing = [command for command in ran if CHANGING.match(command)]
    assert changing == [], (changing, result.stdout[-2000:], result.stderr[-2000:])


def fake_tools(tmp_path: Path) -> Path:
    """The recording fakes in tmp_path/tools; returns their log."""
    tools = tmp_path / "tools"
    tools.mkdir()
    log = tmp_path / "commands.log"
    log.touch()
    for name in ("helm", "helm3", "kubectl", "docker", "trivy", "nox"):
        fake = tools / name
        fake.write_text(FAKE.format(log=log, digest="a" * 64))
        fake.chmod(0o755)
    return log


def run_task(
    tmp_path: Path, recorded_config: Path, arguments: tuple[str, ...], how: str  # noqa: F811
) -> subprocess.CompletedProcess[str]:
    """`invoke` with the fakes first on PATH, as CI runs it; the values file untouched."""
    tools = tmp_path / "tools"
    environ = {
        **os.environ,
        "PATH": f"{tools}:{os.environ['PATH']}",
        "AEGIS_TOOLS_DIR": str(tools),
        "AEGIS_CONFIG": str(recorded_config),
        "GITHUB_TOKEN": "ghs_fake",
        "KUBE_CONFIG_PREVIEW": base64.b64encode(CLOSED_PORT_KUBECONFIG.encode()).decode(),
        "AEGIS_CA_BUNDLE": "",
        "CI": "true",
    }
    if how == "--dry":
        argv = ["--dry", *arguments]
    elif how == "real" or arguments[0] in {"config", "doctor", "tags"}:
        argv = list(arguments)  # questions only: these tasks have no --dry-run of their own
    else:
        argv = [*arguments, "--dry-run"]
    values = REPOSITORY / "helm" / "values.deployment.yaml"
    before = values.read_text() if values.exists() else None
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *argv], cwd=REPOSITORY, env=environ,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert (values.read_text() if values.exists() else None) == before
    return result


@pytest.mark.parametrize(
    ("task", "number"),
    [("preview", "0"), ("preview", "-1"), ("preview", "12a"), ("preview", "1" * 20),
     ("preview-down", "\u0661")],  # an Arabic-Indic digit one: not ASCII
)  # fmt: skip
def test_a_bad_pull_request_number_is_exit_2_with_nothing_called(
    tmp_path: Path, recorded_config: Path, task: str, number: str  # noqa: F811
) -> None:
    log = fake_tools(tmp_path)
    result = run_task(tmp_path, recorded_config, (task, f"--pr={number}"), "real")
    assert result.returncode == 2, result.stderr
    assert "invalid pull request number" in result.stderr
    assert log.read_text() == ""
