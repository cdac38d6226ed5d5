"""Long commands as their users see them: one line each, the raw output in a log.

In plain mode (CI, a pipe, NO_COLOR) the lines are timestamped and hold no control character;
at a terminal (a real pseudo-terminal here) one live line replaces the output; a failure quotes
the log's last lines and names it; --verbose (or AEGIS_VERBOSE) streams as before.
"""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from pathlib import Path

import pytest

from aegis_delivery.errors import CommandFailed
from aegis_delivery.masking import Masker
from aegis_delivery.progress import TAIL_LINES, log_name
from aegis_delivery.runner import Runner, Step
from aegis_delivery.session import task_session
from tests.conftest import REPOSITORY, RecordingConsole

TIMESTAMP = re.compile(r"\b\d\d:\d\d:\d\d\b")


def chatty(lines: int, code: int = 0) -> Step:
    """A command that prints *lines* numbered lines, then exits *code*."""
    script = f"for i in range({lines}): print(f'line {{i}}', flush=True)\nraise SystemExit({code})"
    return Step((sys.executable, "-c", script), "build the thing")


def test_a_long_command_prints_two_timestamped_lines_and_keeps_its_output_in_a_log(
    tmp_path: Path,
) -> None:
    console = RecordingConsole(Masker())
    with Runner(console, console.masker) as runner:
        runner.log_directory = tmp_path / "logs"
        result = runner.run(chatty(200))
    log = tmp_path / "logs" / "build-the-thing.log"
    assert log.read_text().splitlines() == [f"line {i}" for i in range(200)]
    assert result.log_file == log
    shown = console.text.splitlines()
    assert not any(line.strip().startswith("line ") for line in shown)
    started = next(line for line in shown if "started: build the thing" in line)
    ended = next(line for line in shown if "build the thing: done in" in line)
    assert TIMESTAMP.search(started) and TIMESTAMP.search(ended)
    assert "(log: " in ended and "build-the-thing.log" in ended
    assert len(shown) <= 4  # the command, started, done (and no heartbeat in a second)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", console.text)  # no spinner, no colour


def test_a_failure_quotes_the_last_lines_and_names_the_log(tmp_path: Path) -> None:
    console = RecordingConsole(Masker())
    with Runner(console, console.masker) as runner:
        runner.log_directory = tmp_path / "logs"
        with pytest.raises(CommandFailed) as failed:
            runner.run(chatty(100, code=3))
    message = str(failed.value)
    assert f"line {100 - TAIL_LINES}" in message and "line 99" in message
    assert f"line {100 - TAIL_LINES - 1}\n" not in message
    assert "build-the-thing.log" in message
    assert "build the thing: failed after" in console.text


def test_without_a_log_directory_the_output_streams_as_before(tmp_path: Path) -> None:
    console = RecordingConsole(Masker())
    with Runner(console, console.masker) as runner:
        runner.run(chatty(3))
    assert "    line 2" in console.text and "done in" not in console.text


@pytest.mark.parametrize(
    ("verbose", "environ", "logs"),
    [(False, {}, True), (True, {}, False), (False, {"AEGIS_VERBOSE": "1"}, False)],
)
def test_the_task_frame_sends_output_to_the_work_directory_unless_verbose(
    monkeypatch: pytest.MonkeyPatch, verbose: bool, environ: dict[str, str], logs: bool
) -> None:
    monkeypatch.delenv("AEGIS_VERBOSE", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    console = RecordingConsole(Masker())
    with task_session(console=console, verbose=verbose) as session:
        expected = session.config.work("logs") if logs else None
        assert session.runner.log_directory == expected


def test_log_names_are_file_names() -> None:
    assert log_name("build monitor-api linux/arm64") == "build-monitor-api-linux-arm64.log"
    assert log_name("deploy main-1a2b3c4 to staging") == "deploy-main-1a2b3c4-to-staging.log"
    assert log_name("../..") == "command.log"


TERMINAL_SCRIPT = """
import sys
from pathlib import Path
from aegis_delivery.console import Console
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner, Step
console = Console(Masker())
assert not console.plain, "a terminal, not plain"
script = "import time\\nfor i in range(60): print(f'line {i}', flush=True); time.sleep(0.02)"
with Runner(console, console.masker) as runner:
    runner.log_directory = Path(sys.argv[1])
    runner.run(Step((sys.executable, "-c", script), "build the thing"))
"""


def test_at_a_terminal_one_live_line_replaces_the_output(tmp_path: Path) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: a task's runner on a real terminal
        environ = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
        environ.update(TERM="xterm-256color", PYTHONPATH=str(REPOSITORY / "src"))
        os.execve(sys.executable, [sys.executable, "-c", TERMINAL_SCRIPT, str(tmp_path)], environ)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
    text = seen.decode("utf-8", "replace").replace("\r\n", "")  # rich wraps at 80 columns
    assert "done in" in text and "build-the-thing.log" in text, text
    assert "line 59" not in text, text  # the output is in the log, not on the terminal
    assert (tmp_path / "build-the-thing.log").read_text().count("line ") == 60
