"""The frame every Invoke task runs in: settings, console, runner and the exit-code contract.

A task body is ``with task_session(c, dry_run=..., json_output=...) as session: ...``. Invoke's
own ``--dry`` (``c.config.run.dry``) and the task's ``--dry-run`` mean the same: both make the
runner's dry run. Whatever the body raises is turned into one masked error line and the
contract's exit code; with ``--json`` also into one JSON document on stdout (status, error,
exit code, what completed), and with ``--summary`` into a Markdown summary. The runner's
cleanups (temporary kubeconfigs, lock releases) run on every path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from invoke.exceptions import Exit

from aegis_delivery.config import DeliveryConfig, load_config
from aegis_delivery.console import Console
from aegis_delivery.errors import AegisError, ExitCode
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from aegis_delivery.tools import install_hint


@dataclass
class TaskSession:
    console: Console
    runner: Runner
    masker: Masker
    config_path: Path | None = None
    verbose: bool = False
    _config: DeliveryConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> DeliveryConfig:
        """The validated settings, loaded on first use; from then on a long command's output
        goes to `.aegis/logs/` (progress.py) unless --verbose streams it."""
        if self._config is None:
            self._config = load_config(self.config_path)
            if not self.verbose:
                self.runner.log_directory = self._config.work("logs")
        return self._config


def invoke_dry(context: object) -> bool:
    """Invoke's core ``--dry`` flag, as the task's Context carries it."""
    config = getattr(context, "config", None)
    run = getattr(config, "run", None)
    return bool(getattr(run, "dry", False))


@contextmanager
def task_session(
    context: object = None,
    *,
    dry_run: bool = False,
    json_output: bool = False,
    config_path: Path | None = None,
    console: Console | None = None,
    summary: bool = False,
    verbose: bool = False,
) -> Iterator[TaskSession]:
    """Run a task body under the exit-code contract; raises ``invoke.Exit`` on failure."""
    masker = console.masker if console is not None else Masker.from_environment()
    console = console or Console(masker, json_mode=json_output)
    if summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        console.summary_file = Path(os.environ["GITHUB_STEP_SUMMARY"])
    dry = dry_run or invoke_dry(context)
    try:
        with Runner(console, masker, dry_run=dry, install_hint=install_hint) as runner:
            verbose = verbose or os.environ.get("AEGIS_VERBOSE", "") not in ("", "0")
            yield TaskSession(console, runner, masker, config_path, verbose)
    except AegisError as error:
        fail(console, error.message, error.exit_code, error.details)
    except KeyboardInterrupt:
        fail(console, "interrupted", ExitCode.INTERRUPTED_SIGINT, {})


def fail(console: Console, message: str, code: ExitCode, details: dict[str, object]) -> NoReturn:
    """One error line; with --json one failure document; with --summary a failure summary."""
    console.error(message)
    document: dict[str, object] = {
        "status": "failed",
        "error": message,
        "exit_code": int(code),
        **details,
    }
    console.summarize_failure(message, int(code))
    if console.json_mode and not console.emitted:
        console.emit_json(document)
    raise Exit(code=int(code)) from None
