"""AegisTrader delivery tasks. Each task is a thin call into ``aegis_delivery``.

Run ``invoke --list`` for the list and ``invoke --help TASK`` for a task's flags. Exit codes
follow one contract (README, "Exit codes"): 0 ok, 1 failed, 2 bad input, 3 gate findings,
4 tool unavailable, 130/143 interrupted.
"""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from aegis_delivery import gates, reports
from aegis_delivery.session import task_session

DRY_RUN = "print the commands instead of running them"
JSON = "print the result as one JSON document on stdout"


@task(help={"json": JSON})
def config(c: Context, json: bool = False) -> None:
    """Show the delivery settings from pyproject.toml [tool.aegis], validated."""
    with task_session(json_output=json) as session:
        reports.show_config(session.console, session.config)


@task(help={"json": JSON})
def doctor(c: Context, json: bool = False) -> None:
    """Check that every tool the tasks use is installed, and which version."""
    with task_session(json_output=json) as session:
        reports.show_tools(session)


@task(
    iterable=["session"],
    help={"session": "run only this Nox session (repeatable)", "dry_run": DRY_RUN},
)
def gate(c: Context, session: list[str] | None = None, dry_run: bool = False) -> None:
    """Run the quality gates (the same `nox` CI runs)."""
    with task_session(dry_run=dry_run) as task:
        task.runner.run(gates.nox_step(session or []))
