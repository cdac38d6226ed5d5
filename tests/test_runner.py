"""The runner against real child processes: dry runs, streaming, masking, failures, signals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from aegis_delivery.console import Console
from aegis_delivery.errors import (
    CommandFailed,
    ExitCode,
    InputError,
    Interrupted,
    ToolUnavailable,
)
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner, Step
from tests.conftest import REPOSITORY, RecordingConsole

if TYPE_CHECKING:
    from typing_extensions import Buffer

PYTHON = sys.executable


def python_step(code: str, **options: object) -> Step:
    return Step(argv=(PYTHON, "-c", textwrap.dedent(code)), purpose="test", **options)  # type: ignore[arg-type]


def test_a_dry_run_prints_the_command_and_runs_nothing(
    tmp_path: Path, console: RecordingConsole, masker: Masker
) -> None:
    marker = tmp_path / "ran"
    with Runner(console, masker, dry_run=True) as runner:
        result = runner.run(Step(argv=("touch", str(marker)), purpose="create the marker"))
    assert not result.ran
    assert not marker.exists()
    assert f"[dry-run] create the marker: touch {marker}" in console.text


def test_output_is_streamed_and_secrets_masked(runner: Runner, console: RecordingConsole) -> None:
    step = python_step("print('token=s3cr3t-value'); print('done')", secrets=("s3cr3t-value",))
    result = runner.run(step)
    assert result.ok
    assert "token=***" in console.text
    assert "s3cr3t-value" not in console.text
    assert "done" in console.text


def test_stdin_carries_secrets_without_putting_them_in_argv(
    runner: Runner, console: RecordingConsole
) -> None:
    step = python_step(
        "import sys; print('got', len(sys.stdin.read()))",
        stdin="password-from-stdin",
        secrets=("password-from-stdin",),
        capture=True,
    )
    result = runner.run(step)
    assert result.stdout.strip() == "got 19"
    assert "password-from-stdin" not in " ".join(step.argv)
    assert "<<< (stdin)" in console.text


def test_environment_is_passed_and_shown_masked(runner: Runner, console: RecordingConsole) -> None:
    step = python_step(
        "import os; print(len(os.environ['API_KEY']))",
        env={"API_KEY": "key-0123456789"},
        secrets=("key-0123456789",),
        capture=True,
    )
    assert runner.run(step).stdout.strip() == "14"
    assert "API_KEY=***" in console.text
    assert "key-0123456789" not in console.text


def test_a_non_zero_exit_names_the_command_and_code(runner: Runner) -> None:
    step = python_step(
        "import sys; print('the token is tok-abcdef'); sys.exit(7)", secrets=("tok-abcdef",)
    )
    with pytest.raises(CommandFailed) as raised:
        runner.run(step)
    error = raised.value
    assert error.returncode == 7
    assert error.exit_code == ExitCode.FAILED
    assert "exit code 7" in error.message and PYTHON in error.message
    assert "the token is ***" in error.message
    assert "tok-abcdef" not in error.message


def test_check_false_returns_the_failure(runner: Runner) -> None:
    result = runner.run(python_step("import sys; sys.exit(3)"), check=False)
    assert result.returncode == 3 and not result.ok


def test_a_missing_tool_is_unavailable_with_a_hint(runner: Runner) -> None:
    with pytest.raises(ToolUnavailable, match="'helm' was not found: run scripts/install-tools"):
        runner.run(Step(argv=("/nonexistent/helm", "version"), purpose="helm"))


def test_probe_runs_in_a_dry_run_and_never_raises(
    console: RecordingConsole, masker: Masker
) -> None:
    with Runner(console, masker, dry_run=True) as runner:
        found = runner.probe(python_step("print('4.1.4')", capture=True))
        missing = runner.probe(Step(argv=("/nonexistent/tool",), purpose="x", capture=True))
    assert found.ran and found.stdout.strip() == "4.1.4"
    assert not missing.ran and missing.returncode == 127


def test_cleanups_run_on_failure(tmp_path: Path, console: RecordingConsole, masker: Masker) -> None:
    temporary = tmp_path / "kubeconfig"
    temporary.write_text("secret")
    with pytest.raises(CommandFailed), Runner(console, masker) as runner:
        runner.add_cleanup(temporary.unlink)
        runner.run(python_step("raise SystemExit(1)"))
    assert not temporary.exists()


def test_a_step_must_be_a_non_empty_argv() -> None:
    with pytest.raises(InputError, match="non-empty list of strings"):
        Step(argv=(), purpose="nothing")
    with pytest.raises(InputError):
        Step(argv=("helm", ""), purpose="empty argument")


# -- signals: a real parent process running a real child --------------------------------------

DRIVER = """
import sys
from pathlib import Path
from aegis_delivery.console import Console
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner, Step
from aegis_delivery.session import task_session
from invoke.exceptions import Exit

child_code, cleanup_file, grace = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
cleanup_file.write_text("temporary")
try:
    with task_session() as session:
        session.runner.signals.grace_seconds = grace
        session.runner.add_cleanup(cleanup_file.unlink)
        session.runner.run(Step(argv=(sys.executable, "-c", child_code), purpose="child"))
except Exit as exit_request:  # what Invoke does with it
    sys.exit(exit_request.code)
"""

# A child that, like helm, traps the signal, records it and finishes its work before exiting.
CLEAN_CHILD = """
import signal, sys, time, pathlib
out = pathlib.Path("{marker}")
def stop(signum, frame):
    out.write_text(signal.Signals(signum).name)
    time.sleep(0.5)
    sys.exit(1)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
time.sleep(60)
"""

STUBBORN_CHILD = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def start_driver(child_code: str, cleanup_file: Path, grace: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [PYTHON, "-c", DRIVER, child_code, str(cleanup_file), str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CI": "true", "PYTHONPATH": str(REPOSITORY / "src")},
    )
    assert process.stderr is not None
    for line in process.stderr:  # a child's output is a message: stderr
        if line.strip() == "ready":  # the child's own line, not the echoed command
            break
    return process


@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_a_signal_is_forwarded_the_child_finishes_and_cleanups_run(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    marker = tmp_path / "child-saw"
    cleanup_file = tmp_path / "kubeconfig"
    driver = start_driver(CLEAN_CHILD.format(marker=marker), cleanup_file, grace=10)
    driver.send_signal(signum)
    _, stderr = driver.communicate(timeout=30)
    assert driver.returncode == exit_code
    assert marker.read_text() == signal.Signals(signum).name
    assert not cleanup_file.exists()
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert "forwarded to the running command" in stderr


def test_a_child_that_ignores_the_signal_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    cleanup_file = tmp_path / "kubeconfig"
    driver = start_driver(STUBBORN_CHILD, cleanup_file, grace=1)
    started = time.monotonic()
    driver.send_signal(signal.SIGTERM)
    driver.communicate(timeout=30)
    assert driver.returncode == 143
    assert time.monotonic() - started < 20
    assert not cleanup_file.exists()


def test_a_long_command_is_never_silent(console: RecordingConsole, masker: Masker) -> None:
    with Runner(console, masker, heartbeat_seconds=0.2) as runner:
        runner.run(Step(("sleep", "0.7"), "wait for the rollout", capture=True))
    beats = [line for line in console.text.splitlines() if "still running" in line]
    assert 2 <= len(beats) <= 4, console.text
    assert beats[0].strip() == "wait for the rollout: still running (0m00s)"


class SignalMidWrite(io.RawIOBase):
    """stderr's bytes, which send this process SIGINT while the line ending in *trigger* is
    being written: the handler then runs inside that write, holding stderr's lock, as a Ctrl-C that
    lands while the runner echoes a child's line."""

    def __init__(self, trigger: bytes) -> None:
        self.data = bytearray()
        self.trigger = trigger
        self.fired = False

    def writable(self) -> bool:
        return True

    def write(self, chunk: Buffer, /) -> int:
        written = bytes(chunk)
        self.data += written
        if not self.fired and written.strip().endswith(self.trigger):
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)
        return len(written)


def test_a_signal_that_lands_mid_write_is_still_forwarded_and_said(tmp_path: Path) -> None:
    marker = tmp_path / "child-saw"
    raw = SignalMidWrite(b"ready")
    stderr = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
    console = Console(Masker(), out=io.StringIO(), err=stderr, plain=True)
    child = CLEAN_CHILD.format(marker=marker)
    with pytest.raises(Interrupted) as raised, Runner(console, console.masker) as runner:
        runner.run(Step(argv=(PYTHON, "-c", child), purpose="child"))
    assert raised.value.exit_code == ExitCode.INTERRUPTED_SIGINT
    assert marker.read_text() == "SIGINT"  # forwarded: the child stopped cleanly
    deadline = time.monotonic() + 5  # the warning is written once stderr is free
    while b"forwarded to the running command" not in raw.data:
        assert time.monotonic() < deadline, raw.data.decode()
        time.sleep(0.05)
