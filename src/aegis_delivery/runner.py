"""The one command runner: every external command the toolkit runs goes through here.

A ``Step`` is data (an argv list, extra environment, stdin, the secrets it carries, and whether
it changes anything); the ``Runner`` runs it, never through a shell. The dry run lives here and
nowhere else: in a dry run a step that changes nothing (a version, the current context, a
release's history) still runs, so the plan shows the real state, until the first step that
would change something; that step and every step after it are printed, masked, never run.
The printed plan is therefore the very list of steps a real run executes. It masks
secrets in what it prints, streams output, lets ``signals.SignalForwarder`` pass SIGINT/SIGTERM
to the child, runs the registered cleanups on every exit path, and maps failures to the
exit-code contract. In-process work (an ``Action``: SBOM upload, HTTP checks, a library's
builds) is announced and dry-run by the same rule. What a command means, or how to install a
missing one, it does not know: the task frame passes ``install_hint``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, TypeVar

from aegis_delivery.console import Console
from aegis_delivery.errors import CommandFailed, InputError, ToolUnavailable
from aegis_delivery.masking import Masker
from aegis_delivery.progress import TAIL_LINES, Stage, log_name
from aegis_delivery.signals import DEFAULT_GRACE_SECONDS, SignalForwarder

T = TypeVar("T")

# Lines of a failed command's output quoted in the error.
ERROR_TAIL_LINES = 20


@dataclass(frozen=True)
class Step:
    """One external command, as data: what runs, with what, and which parts are secret."""

    argv: tuple[str, ...]
    purpose: str
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: str | None = None
    secrets: tuple[str, ...] = ()
    capture: bool = False
    cwd: Path | None = None
    # False for questions (read-only commands): a dry run still asks them.
    changes: bool = True

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(part, str) and part for part in self.argv):
            raise InputError(f"a command must be a non-empty list of strings, got {self.argv!r}")

    def display(self, masker: Masker) -> str:
        """The command as a copy-pasteable shell line, secrets masked."""
        prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        line = shlex.join(self.argv)
        if self.stdin is not None:
            line += " <<< (stdin)"
        return masker.mask(f"{prefix} {line}".strip())


@dataclass(frozen=True)
class Action(Generic[T]):
    """Work done in this process (an HTTP exchange, a library's builds), planned like
    commands: ``steps`` are what a plan prints for it, ``perform`` does it."""

    steps: tuple[Step, ...]
    perform: Callable[[], T]


@dataclass(frozen=True)
class Result:
    """What a step did: ``ran`` is False in a dry run."""

    step: Step
    returncode: int
    stdout: str
    stderr: str
    ran: bool
    log_file: Path | None = None  # where the whole output went (progress.Stage)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner:
    """Prints or executes steps; a context manager that owns cleanups and signal handling."""

    def __init__(
        self,
        console: Console,
        masker: Masker,
        *,
        dry_run: bool = False,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        heartbeat_seconds: float | None = None,
        install_hint: Callable[[str], str] = lambda tool: "install it or put it on PATH",
    ) -> None:
        self.console = console
        self.heartbeat_seconds = heartbeat_seconds or (30.0 if console.plain else 10.0)
        self.masker = masker
        self.dry_run = dry_run
        # What to do about a missing command: the task frame knows (tools.install_hint).
        self.install_hint = install_hint
        self.signals = SignalForwarder(console.warn, grace_seconds)
        # Set by the task frame unless --verbose: long commands' output goes to logs there.
        self.log_directory: Path | None = None
        self.history: list[Step] = []
        # Set by the first changing step of a dry run: from then on the real state no longer
        # matches the plan, so questions are printed too.
        self._planned_change = False
        self._cleanups = contextlib.ExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.signals.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._cleanups.close()
        finally:
            self.signals.restore()

    def add_cleanup(self, callback: Callable[[], object]) -> None:
        """Run *callback* when the task ends, however it ends (success, error, signal)."""
        self._cleanups.callback(callback)

    def library_children(self) -> contextlib.AbstractContextManager[None]:
        """While a library runs commands from its threads, signals reach them too."""
        return self.signals.library_children()

    # -- running -----------------------------------------------------------------------------
    def announce(self, step: Step) -> bool:
        """Record and print a step; False when it must not run (a dry run). Steps run by a
        library (python-on-whales) are announced here, then run by it."""
        for secret in step.secrets:
            self.masker.add(secret)
        self.history.append(step)
        shown = step.display(self.masker)
        if self.dry_run and (step.changes or self._planned_change):
            self._planned_change = True
            self.console.info(f"[dry-run] {step.purpose}: {shown}")
            return False
        if self.log_directory is not None and not self.console.plain:
            # At a terminal, unless --verbose: what is done, not how; questions and captured
            # commands say nothing (their callers show the answers). CI logs show every command.
            if step.changes and not step.capture:
                self.console.step(step.purpose)
            return True
        self.console.step(f"{step.purpose}: {shown}")
        return True

    def perform(self, action: Action[T]) -> T | None:
        """Do in-process work the way a step runs: announced (masked), and in a dry run
        printed, not done (None), by the same rule as commands."""
        announced = [self.announce(step) for step in action.steps]
        if not all(announced):
            return None
        return action.perform()

    def write_file(
        self, path: Path, text: str, purpose: str, *, private: bool = False, show: bool = False
    ) -> bool:
        """Write a file the way a step runs: printed, not written, in a dry run (with *show*,
        its content too, masked: a reviewer sees what a command will be given). A private
        file (it holds a secret) is readable by its owner only, from its first byte."""

        def write() -> bool:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o600 if private else 0o644)  # fmt: skip
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(text)
            temporary.replace(path)  # atomic: a reader never sees half a file
            return True

        written = self.perform(Action((Step(("write", str(path)), purpose),), write))
        if written is None and show and not private:
            for line in text.splitlines():
                self.console.info(f"[dry-run]     {self.masker.mask(line)}")
        return written is not None

    def run(self, step: Step, *, check: bool = True) -> Result:
        """Run (or, in a dry run, print) one step; raise ``CommandFailed`` on non-zero exit."""
        if not self.announce(step):
            return Result(step=step, returncode=0, stdout="", stderr="", ran=False)
        result = self._execute(step)
        self.signals.raise_received()
        if self.dry_run and not result.ok:
            # A question the target could not answer (unreachable, no access): the dry run
            # says so and plans on without the answer; a real run fails here.
            said = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no answer"]
            self.console.warn(
                f"[dry-run] could not ask ({step.purpose}, exit {result.returncode}): "
                f"{self.masker.mask(said[0])}; planning on without the answer"
            )
            return Result(step, result.returncode, "", result.stderr, ran=False)
        if check and not result.ok:
            # Both streams: tools like helm lint put the details on stdout, a summary on stderr.
            combined = f"{result.stdout}\n{result.stderr}".strip()
            tail = "\n".join(combined.splitlines()[-(TAIL_LINES if result.log_file else
                                                     ERROR_TAIL_LINES):])  # fmt: skip
            if result.log_file is not None:
                tail += f"\n(the whole output: {self.console.relative(result.log_file)})"
            shown = step.display(self.masker)
            raise CommandFailed(shown, result.returncode, self.masker.mask(tail))
        return result

    def probe(self, step: Step) -> Result:
        """Run a read-only step even in a dry run, and return its result whatever the exit code.

        For questions the task must ask before deciding anything (a tool's version, whether the
        engine answers); never for a command that changes state.
        """
        for secret in step.secrets:
            self.masker.add(secret)
        try:
            return self._execute(step)
        except ToolUnavailable as error:
            return Result(step, 127, "", error.message, ran=False)

    def _execute(self, step: Step) -> Result:
        return execute(step, self.signals, self.console, self.heartbeat_seconds,
                       self.install_hint, self.log_directory)  # fmt: skip


def execute(
    step: Step,
    signals: SignalForwarder,
    console: Console,
    heartbeat_seconds: float,
    install_hint: Callable[[str], str],
    log_directory: Path | None = None,
) -> Result:
    """Start the command in its own session, stream or capture its output (with
    *log_directory*, into its log, the console showing progress only: progress.Stage), and let
    *signals* forward a Ctrl-C to it; a missing command is ``ToolUnavailable``."""
    environment = {**os.environ, **step.env}
    try:
        child = subprocess.Popen(  # noqa: S603 - argv list, never a shell
            step.argv,
            stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if step.capture else subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=step.cwd,
            # Own process group: a terminal's Ctrl-C reaches only us, and we forward it
            # exactly once, so the child never sees the signal twice.
            start_new_session=True,
        )
    except FileNotFoundError:
        tool = Path(step.argv[0]).name
        hint = install_hint(tool)
        raise ToolUnavailable(f"{tool!r} was not found: {hint}") from None
    except PermissionError:
        raise ToolUnavailable(f"{step.argv[0]!r} is not executable") from None
    stage = None
    if log_directory is not None and not step.capture:
        stage = Stage(console, step.purpose, log_directory / log_name(step.purpose))
    done = threading.Event()
    if stage is None or not stage.live:  # a live line shows the elapsed time itself
        heartbeat = threading.Thread(
            target=_heartbeat, args=(step, done, console, heartbeat_seconds), daemon=True
        )
        heartbeat.start()
    try:
        with signals.watching(child):
            if step.capture:
                stdout, stderr = child.communicate(step.stdin)
                return Result(step, child.returncode, stdout, stderr, ran=True)
            if stage is not None:
                return _stream_to_log(child, step, stage)
            return _stream(child, step, console)
    finally:
        done.set()


def _heartbeat(
    step: Step, done: threading.Event, console: Console, heartbeat_seconds: float
) -> None:
    """A long wait is never silent: `helm --wait` can say nothing for ten minutes.

    One line with the elapsed time every ``heartbeat_seconds`` (30 s in CI's logs, 10 s
    at a terminal) while the command runs."""
    started = time.monotonic()
    while not done.wait(heartbeat_seconds):
        elapsed = int(time.monotonic() - started)
        console.info(f"{step.purpose}: still running ({elapsed // 60}m{elapsed % 60:02d}s)")


def _stream_to_log(child: subprocess.Popen[str], step: Step, stage: Stage) -> Result:
    if step.stdin is not None and child.stdin is not None:
        child.stdin.write(step.stdin)
        child.stdin.close()
    with stage.running():
        for line in child.stdout or ():
            stage.write(line)
        child.wait()
    stage.finish(child.returncode == 0)
    tail = "\n".join(stage.tail)
    return Result(step, child.returncode, tail, "", ran=True, log_file=stage.log_file)


def _stream(child: subprocess.Popen[str], step: Step, console: Console) -> Result:
    if step.stdin is not None and child.stdin is not None:
        child.stdin.write(step.stdin)
        child.stdin.close()
    lines: list[str] = []
    for line in child.stdout or ():
        lines.append(line)
        del lines[:-ERROR_TAIL_LINES]
        console.output_line(line)
    child.wait()
    return Result(step, child.returncode, "".join(lines), "", ran=True)
