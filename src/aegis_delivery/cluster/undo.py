"""A failed upgrade undone by the toolkit, with a time budget of its own.

helm's ``--atomic`` (``--rollback-on-failure`` in Helm 4) starts the rollback when the upgrade's
``--timeout`` is spent and gives it only what is left, so a slow failure ends in
``pending-rollback`` (helm issue 8675). So deploy upgrades with ``--wait`` alone, and when the
upgrade fails or times out this module rolls back to the newest revision before it that was
deployed, with ``rollback_timeout`` of its own, waits for it, and checks that it held: that
revision's copy is ``deployed`` and its pods are ready. Both phases are reported, one line each,
and in the ``--json`` failure document. A first install that failed has nothing to go back to:
it is uninstalled, as ``--atomic`` did. The caller holds the deploy Lease across both phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster.access import Cluster, history
from aegis_delivery.cluster.verify import diagnose, verify_cluster
from aegis_delivery.errors import AegisError, CommandFailed, ExitCode, Interrupted
from aegis_delivery.runner import Runner


@dataclass
class Undo:
    """What failed, and what the rollback did: the failure document's ``upgrade``/``rollback``."""

    upgrade_error: str
    pods: list[str] = field(default_factory=list)
    failed_revision: int | None = None
    rolled_back_to: int | None = None  # None: a first install, uninstalled
    revision: int | None = None  # the revision the rollback created
    status: str | None = None
    seconds: float = 0.0
    budget: str = ""
    held: bool = False

    def document(self) -> dict[str, object]:
        return {
            "upgrade": {
                "status": "failed",
                "error": self.upgrade_error,
                "revision": self.failed_revision,
                "pods": list(self.pods),
            },
            "rollback": {
                "to_revision": self.rolled_back_to,
                "revision": self.revision,
                "status": self.status,
                "seconds": round(self.seconds, 1),
                "timeout": self.budget,
                "held": self.held,
            },
        }

    def lines(self, tag: str, environment: str) -> str:
        """Two lines: the upgrade phase, then the rollback phase."""
        pods = f" ({'; '.join(self.pods[:3])})" if self.pods else ""
        first = f"deploy of {tag} to {environment} failed: {self.upgrade_error}{pods}"
        if self.rolled_back_to is None:
            return f"{first}\nrollback: the failed first install was uninstalled"
        return (
            f"{first}\nrollback: revision {self.rolled_back_to} restored as revision "
            f"{self.revision} in {self.seconds:.0f}s (budget {self.budget}): {self.status}, "
            "pods ready"
        )


class RolledBack(AegisError):
    """The upgrade failed and the rollback held: the environment runs what it ran before."""

    exit_code = ExitCode.FAILED


def last_line(failure: CommandFailed) -> str:
    """helm's own reason (``Error: UPGRADE FAILED: ...``), else the exit code."""
    lines = [line.strip() for line in failure.message.splitlines()[1:] if line.strip()]
    return lines[-1] if lines else f"helm exited {failure.returncode}"


def undo_failed_upgrade(
    runner: Runner,
    cluster: Cluster,
    apps: Sequence[str],
    failure: CommandFailed,
    tag: str,
    monotonic: Callable[[], float] = time.monotonic,
) -> AegisError:
    """Roll the failed upgrade back within ``rollback_timeout``; the error to raise when it
    held (a failed rollback raises its own error, naming both phases). With no history to
    read, nothing is touched: the upgrade's own failure is the error."""
    environment = cluster.environment
    undo = Undo(last_line(failure), budget=environment.rollback_timeout.text)
    runner.console.error("helm upgrade failed; what the cluster shows:")
    undo.pods = diagnose(runner, cluster)
    revisions = history(runner, cluster)
    latest = max(revisions, key=lambda r: r.revision, default=None)
    undo.failed_revision = latest.revision if latest else None
    good = helm_cli.last_deployed(revisions, before=undo.failed_revision)
    if not revisions:
        runner.console.warn("no release history could be read: nothing was rolled back")
        failure.details.update(undo.document())
        return failure
    started = monotonic()
    if good is None:
        argv = helm_cli.uninstall_argv(cluster.helm, cluster.target, environment)
        runner.run(cluster.change(argv, "uninstall the failed first install"))
        undo.seconds = monotonic() - started
        undo.held = True
        return _rolled_back(undo, tag, environment.name)
    undo.rolled_back_to = good.revision
    argv = helm_cli.rollback_argv(cluster.helm, cluster.target, good.revision, environment)
    try:
        runner.run(cluster.change(argv, f"roll back to revision {good.revision} (upgrade failed)"))
        after = history(runner, cluster)
        newest = max(after, key=lambda r: r.revision, default=None)
        undo.revision = newest.revision if newest else None
        undo.status = newest.status if newest else None
        verify_cluster(runner, apps, cluster, {}).raise_on_failure()
    except Interrupted:  # the user's Ctrl-C/SIGTERM: left pending-rollback for --recover
        raise
    except AegisError as error:
        undo.seconds = monotonic() - started
        raise _rollback_failed(undo, error, tag, environment.name) from None
    undo.seconds = monotonic() - started
    if undo.status != "deployed":
        raise _rollback_failed(undo, AegisError(f"status {undo.status}"), tag, environment.name)
    undo.held = True
    return _rolled_back(undo, tag, environment.name)


def _rolled_back(undo: Undo, tag: str, environment: str) -> RolledBack:
    error = RolledBack(undo.lines(tag, environment))
    error.details.update(undo.document())
    return error


def _rollback_failed(undo: Undo, cause: AegisError, tag: str, environment: str) -> AegisError:
    first = undo.lines(tag, environment).splitlines()[0]
    reason = cause.message.splitlines()[0]
    error = AegisError(
        f"{first}\nrollback to revision {undo.rolled_back_to} did not hold within "
        f"{undo.budget}: {reason}; `invoke deploy --recover` or `invoke rollback` next"
    )
    error.details.update(undo.document())
    return error
