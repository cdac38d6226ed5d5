"""The frame every Invoke task runs in: settings, console, runner and the exit-code contract.

A task body is ``with task_session(dry_run=..., json_output=...) as session: ...``. Whatever
the body raises is turned into one masked error line and the contract's exit code; the
runner's cleanups (temporary kubeconfigs, lock releases) run on every path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from invoke.exceptions import Exit

from aegis_delivery.config import DeliveryConfig, load_config
from aegis_delivery.console import Console
from aegis_delivery.errors import AegisError, ExitCode
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner


@dataclass
class TaskSession:
    console: Console
    runner: Runner
    masker: Masker
    config_path: Path | None = None
    _config: DeliveryConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> DeliveryConfig:
        """The validated settings, loaded on first use."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


@contextmanager
def task_session(
    *,
    dry_run: bool = False,
    json_output: bool = False,
    config_path: Path | None = None,
    console: Console | None = None,
    summary: bool = False,
) -> Iterator[TaskSession]:
    """Run a task body under the exit-code contract; raises ``invoke.Exit`` on failure."""
    masker = console.masker if console is not None else Masker.from_environment()
    console = console or Console(masker, json_mode=json_output)
    if summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        console.summary_file = Path(os.environ["GITHUB_STEP_SUMMARY"])
    try:
        with Runner(console, masker, dry_run=dry_run) as runner:
            yield TaskSession(console, runner, masker, config_path)
    except AegisError as error:
        console.error(error.message)
        raise Exit(code=int(error.exit_code)) from None
    except KeyboardInterrupt:
        console.error("interrupted")
        raise Exit(code=int(ExitCode.INTERRUPTED_SIGINT)) from None
