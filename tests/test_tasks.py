"""Tasks called in-process, as Invoke calls them, with real tools or scripted stand-ins."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from aegis_delivery import tasks_release as tasks
from aegis_delivery.errors import ExitCode, GateFailed
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from aegis_delivery.session import task_session
from aegis_delivery.tools import check_tools, locate, require, tools_directory
from tests.conftest import REPOSITORY, RecordingConsole


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)
    monkeypatch.setenv("CI", "true")


def fake_tool(directory: Path, name: str, output: str, code: int = 0) -> Path:
    """An executable that prints *output* and exits *code*, standing in for a pinned binary."""
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_config_task_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    tasks.config(Context())
    output = capsys.readouterr().out
    assert "monitor-api  apps/monitor-api" in output
    assert "staging      aegis-staging" in output


def test_config_task_json(capsys: pytest.CaptureFixture[str]) -> None:
    tasks.config(Context(), json=True)
    assert json.loads(capsys.readouterr().out)["release"] == "aegis"


def test_doctor_with_every_tool_present_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, version in [
        ("helm", "v4.1.4+g05fa379"),
        ("helm3", "v3.17.2+gcc0bbbd"),
        ("kubectl", "Client Version: v1.35.2"),
        ("trivy", "Version: 0.76.0"),
        ("docker", "28.2.2"),
        ("nox", "2026.10.20"),
        ("git", "git version 2.39.5"),
    ]:
        fake_tool(tmp_path, name, version)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tmp_path))
    tasks.doctor(Context(), json=True)
    tools = json.loads(capsys.readouterr().out)["tools"]
    assert tools["helm"]["version"] == "v4.1.4+g05fa379"
    assert all(tool["ok"] for tool in tools.values())


def test_doctor_reports_a_broken_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_tool(tmp_path, "docker", "Cannot connect to the Docker daemon", code=1)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tmp_path))
    with pytest.raises(Exit) as raised:
        tasks.doctor(Context())
    assert raised.value.code == ExitCode.UNAVAILABLE
    captured = capsys.readouterr()
    assert "docker   error (exit 1)" in captured.out
    assert "not available: docker, helm, helm3, kubectl, trivy" in captured.err


def test_gate_dry_run_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    tasks.gate(Context(), session=["lint"], dry_run=True)
    assert re.search(r"\[dry-run\] quality gates: \S*nox --sessions lint", capsys.readouterr().err)


def test_gate_failure_maps_to_the_work_failed_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_tool(tmp_path, "nox", "nox > Session lint failed.", code=1)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr("aegis_delivery.gates.nox_command", lambda: "nox")  # PATH's, the fake
    with pytest.raises(Exit) as raised:
        tasks.gate(Context())
    assert raised.value.code == ExitCode.FAILED
    assert "command failed with exit code 1: nox" in capsys.readouterr().err


def test_the_gate_uses_the_nox_beside_this_python() -> None:
    import sys

    from aegis_delivery.gates import nox_command

    beside = Path(sys.executable).parent / "nox"
    assert nox_command() == (str(beside) if beside.is_file() else "nox")


@pytest.fixture
def masker_console() -> RecordingConsole:
    return RecordingConsole(Masker.from_environment({"GITHUB_TOKEN": "ghp_tokenvalue"}))


def test_each_error_class_keeps_its_exit_code(masker_console: RecordingConsole) -> None:
    with pytest.raises(Exit) as raised, task_session(console=masker_console):
        raise GateFailed("2 HIGH findings in monitor-api with ghp_tokenvalue")
    assert raised.value.code == 3
    assert masker_console.stderr.getvalue() == "error: 2 HIGH findings in monitor-api with ***\n"


def test_keyboard_interrupt_outside_a_child_exits_130(masker_console: RecordingConsole) -> None:
    with pytest.raises(Exit) as raised, task_session(console=masker_console):
        raise KeyboardInterrupt
    assert raised.value.code == 130


def test_pinned_tools_never_fall_back_to_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path, "kubectl", "the machine's own kubectl")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    empty = {"AEGIS_TOOLS_DIR": str(tmp_path / "absent")}
    assert locate("kubectl", REPOSITORY, empty).path is None
    assert locate("sh", REPOSITORY, empty).path is not None
    assert tools_directory(REPOSITORY, {}) == REPOSITORY / ".tools" / "bin"
    with pytest.raises(Exception, match="run scripts/install-tools"):
        require("helm3", REPOSITORY, empty)
    pinned = {"AEGIS_TOOLS_DIR": str(tmp_path)}
    assert require("kubectl", REPOSITORY, pinned) == tmp_path / "kubectl"


def test_check_tools_runs_even_in_a_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, console: RecordingConsole
) -> None:
    fake_tool(tmp_path, "trivy", "Version: 0.76.0")
    fake_tool(tmp_path, "helm", "boom", code=2)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tmp_path))
    with Runner(console, Masker(), dry_run=True) as runner:
        statuses = {status.name: status for status in check_tools(runner, REPOSITORY)}
    assert statuses["trivy"].version == "Version: 0.76.0" and statuses["trivy"].ok
    assert statuses["helm"].version == "error (exit 2)" and not statuses["helm"].ok
    assert statuses["kubectl"].version == "missing" and statuses["kubectl"].path is None
