"""The entry points as users run them: `invoke` and `nox` in a real subprocess."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY
from tests.published import valid

# The real `invoke`/`nox` entry points as subprocesses (about 0.8 s each): the full gate
# runs them; the quick local gate (`nox -s logic`) leaves them out.
pytestmark = pytest.mark.entry

FAKE_TOKEN = "ghs_dry-run-token"  # noqa: S105 - not a real token
# A cluster on a closed loopback port: every question fails fast with "connection refused".
CLOSED_PORT_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: aegis-staging
  context:
    cluster: nowhere
    user: nobody
current-context: aegis-staging
users:
- name: nobody
  user:
    token: not-a-token
"""
HEAVY_MODULES = ("python_on_whales", "kubernetes", "rich", "pydantic")


def invoke(
    *arguments: str, cwd: Path | None = None, **environ: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *arguments],
        cwd=cwd or REPOSITORY,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true", **environ},
        timeout=120,
        check=False,
    )


def test_list_shows_every_task_with_help_and_imports_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", "--list"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in ("config", "doctor", "gate"):
        assert re.search(rf"^\s+{name}\s+\S", result.stdout, re.MULTILINE), name
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    for heavy in HEAVY_MODULES:
        assert not any(module.split(".")[0] == heavy for module in imported), heavy


def test_config_json_is_the_only_thing_on_stdout() -> None:
    result = invoke("config", "--json")
    assert result.returncode == 0, result.stderr
    document = valid("config", json.loads(result.stdout))
    assert document["apps"]["monitor-ui"]["dockerfile"] == "apps/monitor-ui/Dockerfile"
    assert document["environments"]["staging"]["timeout"] == "10m"


def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    shutil.copy(REPOSITORY / "tasks.py", tmp_path / "tasks.py")
    text = (REPOSITORY / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace('timeout = "10m"', 'timeout = "soon"'))
    result = invoke("config", cwd=tmp_path)
    assert result.returncode == 2
    assert "[tool.aegis.environments.staging.timeout]" in result.stderr
    assert "found 'soon'" in result.stderr
    assert "Traceback" not in result.stderr


def test_gate_dry_run_prints_the_nox_command() -> None:
    result = invoke("gate", "--dry-run", "--session", "lint", "--session", "tests")
    assert result.returncode == 0, result.stderr
    # Messages (the plan included) go to stderr; stdout is left for data.
    assert re.search(r"\[dry-run\] quality gates: \S*nox --sessions lint tests", result.stderr)
    assert result.stdout == ""


def test_doctor_reports_missing_pinned_tools_as_unavailable(tmp_path: Path) -> None:
    result = invoke("doctor", "--json", AEGIS_TOOLS_DIR=str(tmp_path))
    assert result.returncode == 4
    tools = valid("doctor", json.loads(result.stdout))["tools"]
    assert tools["helm"] == {
        "ok": False,
        "path": None,
        "version": "missing",
        "needed_for": "deploy, rollback, status (helm 4)",
    }
    assert tools["git"]["ok"] is True
    assert "not available:" in result.stderr and "helm" in result.stderr


def test_doctor_finds_the_environments_nox_and_names_the_ca_bundle(tmp_path: Path) -> None:
    """Run as the README runs it (`.venv/bin/invoke doctor`, nothing activated): nox is the
    environment's own, not PATH's; the CA bundle builds would trust is named with its source."""
    path = ":".join(p for p in os.environ["PATH"].split(":")
                    if Path(p).resolve() != Path(sys.executable).parent.resolve())  # fmt: skip
    result = invoke("doctor", "--json", PATH=path, SSL_CERT_FILE="", AEGIS_CA_BUNDLE="")
    document = valid("doctor", json.loads(result.stdout))
    assert document["tools"]["nox"]["ok"], document["tools"]["nox"]
    assert Path(document["tools"]["nox"]["path"]).parent == Path(sys.executable).parent
    trust = document["ca_bundle"]
    assert trust["ok"] and trust["source"].startswith("the system store") and trust["path"]
    refused = invoke("doctor", "--ca-bundle", str(tmp_path / "proxy-ca.pem"), PATH=path)
    assert refused.returncode == 2, refused.stderr
    assert f"CA bundle {tmp_path / 'proxy-ca.pem'} (from --ca-bundle): no such file" in (
        refused.stderr
    )


def test_nox_lists_the_gates_and_holds_no_thresholds() -> None:
    nox = shutil.which("nox")
    if nox is None:
        pytest.skip("nox is not installed in this environment")
    result = subprocess.run(
        [nox, "--list", "--json"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    sessions = {entry["session"] for entry in json.loads(result.stdout)}
    assert {"lint", "format", "typecheck", "tests", "dockerfiles"} <= sessions
    for source in ("noxfile.py", "src/aegis_delivery/nox_sessions.py"):  # no threshold in either
        text = (REPOSITORY / source).read_text()
        assert not re.search(r"fail_under\s*=|--cov-fail-under|--fail-under|\b80\b|\b100\b", text)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("rollback", "--revision", "0"), "invalid revision '0'"),
        (("rollback", "--revision", "abc"), "invalid revision 'abc'"),
        (("deploy", "--env", "prod", "--dry-run"), "unknown environment 'prod'"),
        (("deploy", "--tag", "emergency-fix", "--dry-run"), "--reason is required"),
        (("deploy", "--tag", "bad/tag", "--reason", "x", "--dry-run"), "invalid tag 'bad/tag'"),
        (("tags", "--tag", "-bad"), "invalid tag '-bad'"),
        (("build", "--app", "monitor", "--dry-run"), "unknown app 'monitor'"),
        (("build", "--platform", "linux/sparc", "--dry-run"), "unknown platform 'linux/sparc'"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else None,
)
def test_bad_input_exits_2_naming_what_was_wrong(arguments: tuple[str, ...], message: str) -> None:
    result = invoke(*arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "[dry-run]" not in result.stdout  # refused before anything was even printed


# Every command the README and the operations page show that needs a cluster, as a dry run.
README_DRY_RUNS = [
    ("deploy", "--env", "staging", "--dry-run"),
    (
        "deploy",
        "--env",
        "staging",
        "--tag",
        "emergency-fix",
        "--reason",
        "hotfix INC-123",
        "--dry-run",
    ),
    ("rollback", "--env", "staging", "--reason", "INC-7", "--dry-run"),
    ("rollback", "--env", "staging", "--revision", "7", "--reason", "INC-7", "--dry-run"),
    ("verify", "--env", "staging", "--dry-run"),
    ("status", "--env", "staging", "--dry-run"),
    ("build", "--dry-run"),
    ("push", "--dry-run"),
    ("values", "--env", "staging", "--dry-run"),
    ("pipeline", "--dry-run"),
    ("pipeline", "--env", "staging", "--dry-run"),
    ("pipeline", "--skip", "gate", "--dry-run"),
    ("down", "--dry-run"),
    ("scan", "--build", "--dry-run"),
    ("tags", "--json"),
    ("doctor", "--json"),
]


@pytest.fixture(scope="module")
def recorded_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The project's configuration with a release record of its own (as `invoke push` writes)."""
    from tests.records import release_record

    directory = tmp_path_factory.mktemp("config")
    relative = f".aegis/test-entry-points-{os.getpid()}/release.json"
    record = REPOSITORY / relative
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(release_record().text())
    text = (REPOSITORY / "pyproject.toml").read_text()
    text = text.replace('release_file = ".aegis/release.json"', f'release_file = "{relative}"')
    work = directory / "work"  # logs, scans, the Compose file: not the checkout's
    text = text.replace(
        "[tool.aegis]\n", f'[tool.aegis]\nroot = "{REPOSITORY}"\nwork_directory = "{work}"\n', 1
    )
    (directory / "pyproject.toml").write_text(text)
    yield directory / "pyproject.toml"
    shutil.rmtree(record.parent, ignore_errors=True)


@pytest.mark.parametrize("arguments", README_DRY_RUNS, ids=lambda a: "-".join(a))
def test_readme_commands_dry_run(arguments: tuple[str, ...], recorded_config: Path) -> None:
    """No cluster answers here: the questions say so, and every change is printed."""
    kubeconfig = base64.b64encode(CLOSED_PORT_KUBECONFIG.encode()).decode()
    result = invoke(
        *arguments, GITHUB_TOKEN=FAKE_TOKEN, AEGIS_CA_BUNDLE="", KUBE_CONFIG=kubeconfig,
        AEGIS_CONFIG=str(recorded_config),
    )  # fmt: skip
    if arguments[0] == "doctor":  # exits 4 where a tool is missing; its JSON says which
        assert result.returncode in (0, 4)
        valid("doctor", json.loads(result.stdout))
        return
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[dry-run]" in result.stderr or arguments[0] in {"tags", "status", "down"}
    assert FAKE_TOKEN not in result.stdout + result.stderr
    if arguments == ("tags", "--json"):
        valid("tags", json.loads(result.stdout))
    if arguments[0] == "deploy":
        assert "/helm upgrade --install aegis " in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [("--dry", "deploy", "--env", "staging", "--yes"),
     ("--dry", "rollback", "--revision", "2", "--reason", "x"),
     ("--dry", "values"), ("--dry", "down")],
    ids=lambda a: "-".join(a),
)  # fmt: skip
def test_invokes_own_dry_flag_changes_nothing(
    arguments: tuple[str, ...], recorded_config: Path
) -> None:
    kubeconfig = base64.b64encode(CLOSED_PORT_KUBECONFIG.encode()).decode()
    values = REPOSITORY / "helm" / "values.deployment.yaml"
    before = values.read_text() if values.exists() else None
    result = invoke(*arguments, KUBE_CONFIG=kubeconfig, AEGIS_CONFIG=str(recorded_config))
    assert "[dry-run]" in result.stderr or "no local stack" in result.stderr, result.stderr
    assert (values.read_text() if values.exists() else None) == before
    changing = re.findall(
        r"^==> .*(upgrade --install|rollback aegis|create --filename)", result.stderr, re.M
    )
    assert not changing, result.stderr


def test_the_documented_values_script_delegates_to_invoke_values(recorded_config: Path) -> None:
    result = subprocess.run(
        [str(REPOSITORY / "helm/generate-helm-values.sh"), "--env", "staging", "--dry-run"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "true", "AEGIS_CONFIG": str(recorded_config)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "[dry-run] write the values: write " in result.stderr
