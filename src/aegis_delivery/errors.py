"""The exit-code contract shared by every task, and the errors that carry it.

CI steps chain on these codes (and on ``--json``), never on log text, so each failure
class has exactly one code and the codes never change meaning.
"""

from __future__ import annotations

import signal
from enum import IntEnum


class ExitCode(IntEnum):
    """What a task's exit status means."""

    OK = 0
    FAILED = 1  # the work itself failed: a command exited non-zero, a deploy did not converge
    BAD_INPUT = 2  # bad input or configuration; nothing was run
    GATE_FINDINGS = 3  # a gate ran and found problems (scan findings, failed verification)
    UNAVAILABLE = 4  # a required tool or service is unavailable; the check could not happen
    UNTRUSTED = 6  # an image's provenance is missing or does not verify; nothing was deployed
    INTERRUPTED_SIGINT = 128 + signal.SIGINT  # 130
    INTERRUPTED_SIGTERM = 128 + signal.SIGTERM  # 143


class AegisError(Exception):
    """Base of every error a task reports to its user; carries its exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # What had completed when it failed, for the --json failure document.
        self.details: dict[str, object] = {}


class InputError(AegisError):
    """The user's input or the configuration is wrong; raised before anything runs."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(InputError):
    """A key in ``pyproject.toml`` is missing or malformed."""


class CommandFailed(AegisError):
    """An external command exited non-zero."""

    exit_code = ExitCode.FAILED

    def __init__(self, command: str, returncode: int, detail: str = "") -> None:
        message = f"command failed with exit code {returncode}: {command}"
        if detail:
            message = f"{message}\n{detail}"
        super().__init__(message)
        self.command = command
        self.returncode = returncode


class GateFailed(AegisError):
    """A gate ran to completion and found problems."""

    exit_code = ExitCode.GATE_FINDINGS


class ToolUnavailable(AegisError):
    """A tool or service the task needs is missing or unreachable."""

    exit_code = ExitCode.UNAVAILABLE


class Untrusted(AegisError):
    """An image about to be deployed has no provenance that verifies under the policy."""

    exit_code = ExitCode.UNTRUSTED


class Interrupted(AegisError):
    """The task received SIGINT or SIGTERM; cleanups ran, the child was given time to stop."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}")
        self.signum = signum
        self.exit_code = (
            ExitCode.INTERRUPTED_SIGINT if signum == signal.SIGINT else ExitCode.INTERRUPTED_SIGTERM
        )
