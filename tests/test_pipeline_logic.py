"""`invoke pipeline` in-process: the stage order, preflight, --offline, and the local verify.

The runner is scripted at the argv level; the local stack's HTTP checks answer from a small
server on loopback. (The real pipeline, with Docker, runs in tests/docker/test_pipeline.py.)
"""

from __future__ import annotations

import http.server
import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery import gates, local, pipeline
from aegis_delivery.config import DeliveryConfig, Duration, load_config
from aegis_delivery.errors import CommandFailed, GateFailed, InputError, ToolUnavailable
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Step
from tests.capture import CAPTURED
from tests.conftest import REPOSITORY, RecordingConsole, commit_checkout
from tests.fake_runner import ScriptedRunner
from tests.services import free_port

ENVIRON = {"GITHUB_TOKEN": "ghs_pipeline-test", "AEGIS_CA_BUNDLE": ""}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryConfig:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("helm", "kubectl", "trivy"):
        (tools / name).write_text("#!/bin/sh\nexit 99\n")  # never run: the runner is scripted
        (tools / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tools))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GITHUB_EVENT_NAME", raising=False)
    base = load_config(REPOSITORY / "pyproject.toml")
    return replace(
        base,
        chart=tmp_path / "chart",
        build=replace(base.build, release_file=tmp_path / "release.json"),
        local=replace(base.local, api_port=free_port(), ui_port=free_port()),
        # Not the checkout's own: a gate passed there (by `invoke pipeline`) would be skipped.
        work_directory=tmp_path / "work",
    )


@pytest.fixture
def console() -> RecordingConsole:
    return RecordingConsole(Masker())


def answered(runner: ScriptedRunner) -> ScriptedRunner:
    """A machine where every tool answers its question."""
    runner.answer("docker", "info", reply=(0, "20.10.24\n", ""))
    runner.answer("docker", "buildx", "version", reply=(0, "github.com/docker/buildx 0.13.1", ""))
    runner.answer("docker", "compose", "version", reply=(0, "Docker Compose version 2.26.1", ""))
    runner.answer("docker", "image", "inspect", reply=(0, "[{}]", ""))
    runner.answer(
        "version", "--short", reply=(0, (CAPTURED / "helm4" / "helm-version.txt").read_text(), "")
    )
    runner.answer("git", "ls-files", reply=real_command)
    return runner


def real_command(step: Step) -> tuple[int, str, str]:
    """Answer a question by asking the real tool (git here)."""
    done = subprocess.run(step.argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def planned(console: RecordingConsole) -> list[str]:
    return [line for line in console.text.splitlines() if "[dry-run]" in line]


def test_a_staging_dry_run_plans_every_stage_in_ci_order(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    with answered(ScriptedRunner(console, console.masker, dry_run=True)) as runner:
        request = pipeline.PipelineRequest("staging")
        ran = pipeline.run(runner, config, request, ENVIRON)
    assert ran == ["gate", "build", "scan", "push", "deploy", "verify"]
    text = "\n".join(planned(console))
    order = [text.index(word) for word in
             ("quality gates", "build monitor-api", "scan ", "log in to", "record the release",
              "write the values", "helm upgrade --install", "rollout monitor-api")]  # fmt: skip
    assert order == sorted(order)
    assert "preflight: every stage's preconditions hold" in console.text
    assert "ghs_pipeline-test" not in console.text


def test_a_local_run_starts_with_the_quick_gate_and_ci_with_all(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    with answered(ScriptedRunner(console, console.masker, dry_run=True)) as runner:
        pipeline.run(runner, config, pipeline.PipelineRequest("local"), ENVIRON)
    gate = next(line for line in planned(console) if "quality gates" in line)
    assert gate.endswith("--sessions lint format typecheck logic")
    assert "stage push skipped: [tool.aegis.local] push is false" in console.text
    assert any("start the local stack" in line for line in planned(console))
    assert any("check monitor-api /healthz" in line for line in planned(console))
    console = RecordingConsole(Masker())
    with answered(ScriptedRunner(console, console.masker, dry_run=True)) as runner:
        pipeline.run(runner, config, pipeline.PipelineRequest("local"), {**ENVIRON, "CI": "true"})
    gate = next(line for line in planned(console) if "quality gates" in line)
    assert "--sessions" not in gate  # CI: every gate


def test_offline_uses_the_local_bases_and_turns_the_vulnerability_scan_off_loudly(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    with answered(ScriptedRunner(console, console.masker, dry_run=True)) as runner:
        request = pipeline.PipelineRequest("local", skip=("gate",), offline=True)
        pipeline.run(runner, config, request, {})
    assert "OFFLINE: building from locally made base images" in console.text
    assert "VULNERABILITY SCANNING IS OFF" in console.text
    build = next(line for line in planned(console) if "build monitor-api" in line)
    assert "BASE_IMAGE=aegis-local/python:3.13" in build
    with pytest.raises(InputError, match="--offline builds the local environment only"):
        pipeline.offline_settings(config, pipeline.PipelineRequest("staging", offline=True))


@pytest.mark.parametrize(
    ("broken", "environ", "error", "message"),
    [
        (("docker", "info"), ENVIRON, ToolUnavailable, "the Docker engine is not running"),
        (("docker", "compose", "version"), ENVIRON, ToolUnavailable, "compose plugin is missing"),
        (None, {}, InputError, "no credentials for ghcr.io"),
    ],
    ids=["engine", "compose", "credentials"],
)
def test_preflight_fails_in_seconds_naming_what_is_missing(
    config: DeliveryConfig,
    console: RecordingConsole,
    broken: tuple[str, ...] | None,
    environ: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    local_push = replace(config, local=replace(config.local, push=True))
    with ScriptedRunner(console, console.masker) as runner:
        if broken:
            runner.answer(*broken, reply=(1, "", "Cannot connect to the Docker daemon"))
        answered(runner)
        with pytest.raises(error, match=message):
            pipeline.run(runner, local_push, pipeline.PipelineRequest("local"), environ)
        assert not runner.ran("nox") and not runner.ran("buildx", "build")  # nothing started


def test_an_unknown_stage_to_skip_is_refused(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    with (
        ScriptedRunner(console, console.masker) as runner,
        pytest.raises(InputError, match="deplyo"),
    ):
        pipeline.run(runner, config, pipeline.PipelineRequest("local", skip=("deplyo",)), {})


class Stack(http.server.BaseHTTPRequestHandler):
    """monitor-api and monitor-ui as the local verify reads them."""

    tag = "main-0123456"
    broken = ""
    postgres = "ok"

    def do_GET(self) -> None:
        bodies: dict[str, tuple[int, str]] = {
            "/healthz": (200, json.dumps({"status": "ok"})),
            "/readyz": (
                200,
                json.dumps(
                    {"checks": {"nats": {"status": "ok"}, "postgres": {"status": self.postgres}}}
                ),
            ),
            "/version": (200, json.dumps({"image_tag": self.tag})),
            "/api/health": (200, json.dumps({"status": "ok"})),
        }
        status, body = bodies.get(self.path, (200, "<main>ready</main>"))
        if self.path == self.broken:
            status, body = 500, json.dumps({"detail": "broken build"})
        data = body.encode()
        self.send_response(status)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def stack(config: DeliveryConfig) -> Iterator[DeliveryConfig]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield replace(config, local=replace(config.local, api_port=port, ui_port=port))
    server.shutdown()


def verify_fails(
    stack: DeliveryConfig, console: RecordingConsole, match: str, tag: str = "main-0123456",
    logs: str = "",
) -> None:  # fmt: skip
    """The local verify, with a 1 s timeout, fails naming *match*; the logs it shows are *logs*."""
    quick = replace(stack, local=replace(stack.local, verify_timeout=Duration.parse("1s")))
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("compose", "logs", reply=(0, logs, ""))
        with pytest.raises(GateFailed, match=match):
            local.verify(runner, quick, tag, sleep=lambda s: None)


def test_the_local_verify_passes_every_check(
    stack: DeliveryConfig, console: RecordingConsole
) -> None:
    with ScriptedRunner(console, console.masker) as runner:
        report = local.verify(runner, stack, "main-0123456", sleep=lambda s: None)
    assert report.passed and len(report.checks) == 5
    assert "ok: verify: 5 checks passed (monitor-api /healthz; " in console.text
    assert "; monitor-ui /)" in console.text


def test_the_local_verify_names_the_failing_check_and_shows_the_logs(
    stack: DeliveryConfig, console: RecordingConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Stack, "broken", "/healthz")
    logs = "monitor-api  | RuntimeError: broken build"
    verify_fails(stack, console, "monitor-api /healthz answered 500", logs=logs)
    assert "RuntimeError: broken build" in console.text


def test_the_local_verify_checks_the_image_tag(
    stack: DeliveryConfig, console: RecordingConsole
) -> None:
    verify_fails(stack, console, "runs image tag 'main-0123456', expected 'v9'", tag="v9")


def test_the_local_verify_needs_postgresql_ok(
    stack: DeliveryConfig, console: RecordingConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Stack, "postgres", "not_configured")
    verify_fails(stack, console, "PostgreSQL check is 'not_configured', expected")


def test_the_stack_has_postgresql_healthy_before_the_api_with_a_private_password(
    config: DeliveryConfig, console: RecordingConsole, tmp_path: Path
) -> None:
    moved = replace(config, root=tmp_path, work_directory=tmp_path / "work")
    images = {"monitor-api": "api:main-0123456", "monitor-ui": "ui:main-0123456"}
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("compose", "up", reply=(0, "", ""))
        local.up(runner, moved, images)
        password = (tmp_path / "work" / local.PASSWORD_FILE).read_text().strip()
        assert len(password) >= 24 and password in runner.masker
        local.up(runner, moved, images)  # the volume's password is kept
    assert (tmp_path / "work" / local.PASSWORD_FILE).read_text().strip() == password
    for private in (local.PASSWORD_FILE, local.COMPOSE_FILE):
        assert stat.S_IMODE((tmp_path / "work" / private).stat().st_mode) == 0o600
    document = json.loads(local.compose_file(moved).read_text())
    postgres, api = document["services"]["postgres"], document["services"]["monitor-api"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == password
    assert postgres["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert postgres["read_only"] and postgres["cap_drop"] == ["ALL"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert (
        api["environment"]["DATABASE_URL"] == f"postgresql://aegis:{password}@postgres:5432/aegis"
    )
    assert api["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert document["volumes"] == {"postgres-data": {}}
    assert password not in console.text


def test_a_dry_run_up_writes_no_password(
    config: DeliveryConfig, console: RecordingConsole, tmp_path: Path
) -> None:
    moved = replace(config, root=tmp_path, work_directory=tmp_path / "work")
    with ScriptedRunner(console, console.masker, dry_run=True) as runner:
        local.up(runner, moved, {"monitor-api": "a:t", "monitor-ui": "u:t"})
    assert not (tmp_path / "work").exists()


def test_verify_local_reads_the_running_tag_or_says_there_is_no_stack(
    config: DeliveryConfig, tmp_path: Path
) -> None:
    moved = replace(config, root=tmp_path, work_directory=tmp_path / "work")
    with pytest.raises(
        InputError, match=r"no local stack to verify .* run `invoke pipeline` first"
    ):
        local.running_tag(moved)
    local.compose_file(moved).parent.mkdir(parents=True)
    images = {"monitor-api": "localhost:5000/a/monitor-api:main-1a2b3c4", "monitor-ui": "u:x"}
    local.compose_file(moved).write_text(json.dumps(local.compose_document(moved, images, "p")))
    assert local.running_tag(moved) == "main-1a2b3c4"


def test_down_stops_the_stack_only_when_there_is_one(
    config: DeliveryConfig, console: RecordingConsole, tmp_path: Path
) -> None:
    moved = replace(config, root=tmp_path, work_directory=Path(".aegis"))
    with ScriptedRunner(console, console.masker) as runner:
        local.down(runner, moved)
        assert "no local stack to stop" in console.text
        local.compose_file(moved).parent.mkdir(parents=True)
        local.compose_file(moved).write_text("{}")
        runner.answer("compose", "down", reply=(0, "", ""))
        (tmp_path / ".aegis" / local.PASSWORD_FILE).write_text("kept\n")
        local.down(runner, moved, keep_data=True)
        assert runner.ran("compose", "down", "--remove-orphans")
        assert not runner.ran("compose", "down", "--volumes")
        assert (tmp_path / ".aegis" / local.PASSWORD_FILE).exists()
        local.down(runner, moved)
        assert runner.ran("compose", "down", "--volumes")
        assert not (tmp_path / ".aegis" / local.PASSWORD_FILE).exists()


def checkout_with(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    commit_checkout(root)
    return root


def gate_runs(root: Path, console: RecordingConsole, nox_code: int = 0) -> bool:
    """One quick gate on *root* with nox scripted (exit *nox_code*) and git real."""
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("git", "ls-files", reply=real_command)
        runner.answer("--sessions", reply=(nox_code, "", "lint failed" if nox_code else ""))
        return gates.quick_gate(runner, root, root / ".aegis", pipeline.QUICK_GATE)


def test_the_quick_gate_runs_again_only_when_the_tree_changed(
    tmp_path: Path, console: RecordingConsole
) -> None:
    root = checkout_with(tmp_path / "checkout", {"app.py": "x = 1\n", ".gitignore": "out/\n"})
    assert gate_runs(root, console) is True
    assert gate_runs(root, console) is False  # nothing changed: not run again, and says so
    assert "passed on exactly this tree at" in console.text
    (root / "out").mkdir()
    (root / "out" / "ignored.txt").write_text("build output")
    assert gate_runs(root, console) is False  # ignored files are not the gate's input
    (root / "app.py").write_text("x = 2\n")  # an uncommitted edit
    assert gate_runs(root, console) is True
    (root / "new.py").write_text("y = 1\n")  # an untracked file
    assert gate_runs(root, console) is True
    (root / "new.py").unlink()
    assert gate_runs(root, console) is True  # back to a tree that passed before: run anyway
    assert gate_runs(root, console) is False


def test_a_failed_gate_is_not_remembered_and_a_corrupt_record_means_run(
    tmp_path: Path, console: RecordingConsole
) -> None:
    root = checkout_with(tmp_path / "checkout", {"app.py": "x = 1\n"})
    with pytest.raises(CommandFailed):
        gate_runs(root, console, nox_code=1)
    assert not (root / ".aegis" / gates.GATE_RECORD).exists()
    assert gate_runs(root, console) is True
    for corrupt in ("{", "[]", '{"fingerprint": 1}', "\udcff"):
        (root / ".aegis" / gates.GATE_RECORD).write_text(corrupt, errors="surrogateescape")
        assert gate_runs(root, console) is True
