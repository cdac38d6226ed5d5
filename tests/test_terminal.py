"""`invoke deploy --tag emergency-fix` exactly as the on-call engineer types it, at a terminal.

The real `invoke` runs in a pseudo-terminal (the standard `pty` module); the test answers its
prompts. Invoke's own `--dry` keeps it from changing anything, so the planned helm command line
shows where the reason lands. No cluster answers (a closed loopback port), as on a laptop.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY
from tests.services import require
from tests.test_entry_points import CLOSED_PORT_KUBECONFIG

pytestmark = pytest.mark.binaries
COMMAND = ("deploy", "--tag", "emergency-fix")


class Terminal:
    """A child process on a pseudo-terminal: read until a text shows, type a line."""

    def __init__(self, *arguments: str, environ: dict[str, str], blocked: bool = False) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes `python -m invoke ...` on the terminal
            os.chdir(REPOSITORY)
            # The signal mask survives exec: *blocked* starts it as a harness that blocked
            # SIGINT would (one CI run did); otherwise it starts with none blocked.
            how = signal.SIG_BLOCK if blocked else signal.SIG_SETMASK
            signal.pthread_sigmask(how, {signal.SIGINT} if blocked else set())
            os.execve(sys.executable, [sys.executable, "-m", "invoke", *arguments], environ)
        self.pid, self.fd, self.seen = pid, fd, ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} never showed; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready and not self._read():
                raise AssertionError(f"{text!r} never showed before the end:\n{self.seen}")
        return self.seen

    def _read(self) -> bool:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                self._read()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read():
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {timeout}s:\n{self.seen}")


def terminal_environment(tmp_path: Path) -> dict[str, str]:
    require((REPOSITORY / ".tools/bin/helm").exists(), "helm missing: scripts/install-tools")
    environ = {key: value for key, value in os.environ.items() if key != "CI"}
    environ.update(
        KUBE_CONFIG=base64.b64encode(CLOSED_PORT_KUBECONFIG.encode()).decode(),
        GITHUB_TOKEN="ghs_terminal-test-token",  # noqa: S106 - not a real token
        AEGIS_CA_BUNDLE="",
        TERM="dumb",
        NO_COLOR="1",
        HOME=str(tmp_path),
    )
    return environ


def test_the_documented_command_asks_why_shows_the_plan_and_records_the_reason(
    tmp_path: Path,
) -> None:
    session = Terminal("--dry", *COMMAND, environ=terminal_environment(tmp_path))
    session.expect("Reason (one line, recorded in the release description): ")
    session.type("hotfix for INC-123\n")
    shown = session.expect("Go ahead? [y/N] ")
    for detail in ("EMERGENCY DEPLOY of 'emergency-fix' to staging", "kube context aegis-staging",
                   "namespace aegis-staging", "the quality gates are NOT run"):  # fmt: skip
        assert detail in shown, detail
    session.type("y\n")
    assert session.exit_code() == 0, session.seen
    upgrade = next(line for line in session.seen.splitlines() if "upgrade --install" in line)
    assert "'--description=tag=emergency-fix sha=" in upgrade
    assert (
        "by=root reason=hotfix for INC-123'" in upgrade or "reason=hotfix for INC-123'" in upgrade
    )
    assert "ghs_terminal-test-token" not in session.seen


def test_an_empty_reason_stops_with_nothing_run(tmp_path: Path) -> None:
    session = Terminal("--dry", *COMMAND, environ=terminal_environment(tmp_path))
    session.expect("Reason (one line, recorded in the release description): ")
    session.type("\n")
    assert session.exit_code() == 2, session.seen
    assert "the reason is required" in session.seen
    assert "==>" not in session.seen and "[dry-run]" not in session.seen  # nothing ran


@pytest.mark.parametrize("blocked", [False, True], ids=["plain", "inherited-blocked"])
def test_ctrl_c_at_the_prompt_stops_with_nothing_run(tmp_path: Path, blocked: bool) -> None:
    session = Terminal(*COMMAND, environ=terminal_environment(tmp_path), blocked=blocked)
    session.expect("Reason (one line, recorded in the release description): ")
    session.type("\x03")  # the terminal turns it into SIGINT for the foreground process
    assert session.exit_code() == 130, session.seen
    assert "==>" not in session.seen and "[dry-run]" not in session.seen


def test_without_a_terminal_the_reason_stays_required_and_says_both_ways(tmp_path: Path) -> None:
    import subprocess

    environ = terminal_environment(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--dry", *COMMAND],
        cwd=REPOSITORY, env=environ, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--reason is required" in result.stderr
    assert "--reason 'hotfix for INC-123'" in result.stderr and "at a terminal" in result.stderr
