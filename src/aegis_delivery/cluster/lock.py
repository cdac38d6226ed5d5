"""The deploy lock: a coordination.k8s.io/v1 Lease per release in its namespace.

A second deploy waits (up to ``lock_wait``), then fails naming the holder. A lock whose holder
stopped renewing (a crashed run) goes stale after its duration; taking it over is a replace
that carries the resourceVersion that was read, so when two waiters race for a stale lock the
API server lets exactly one through (the other gets a 409 Conflict and keeps waiting).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aegis_delivery.ci import current_user
from aegis_delivery.clock import now as utc_now
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.access import Cluster
from aegis_delivery.errors import AegisError, CommandFailed
from aegis_delivery.runner import Runner

LOCK_POLL_SECONDS = 5.0
# How long after the helm timeout a crashed holder's lock stays valid.
LOCK_MARGIN_SECONDS = 120


def lock_holder(environ: Mapping[str, str]) -> str:
    """Who holds the lock, as the waiting deploy will name it: user, host, run."""
    user = current_user(environ)
    run = environ.get("GITHUB_RUN_ID") or uuid.uuid4().hex[:8]
    return f"{user}@{socket.gethostname()}/{run}"


@dataclass
class DeployLock:
    """Acquire before helm changes the release; released on every exit path."""

    runner: Runner
    cluster: Cluster
    holder: str = field(default_factory=lambda: lock_holder(os.environ))
    clock: Callable[[], dt.datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    held: bool = False

    def _manifest(self, resource_version: str | None = None) -> str:
        target = self.cluster.target
        duration = self.cluster.environment.timeout.seconds + LOCK_MARGIN_SECONDS
        return kube.lease_manifest(
            target.release, target.namespace, self.holder, duration, self.clock(), resource_version
        )

    def _taken(self) -> None:
        self.held = True
        self.runner.add_cleanup(self.release)  # also on a signal or an error

    def acquire(self) -> None:
        target, kubectl = self.cluster.target, self.cluster.kubectl
        started = self.clock()
        deadline = started + dt.timedelta(seconds=self.cluster.environment.lock_wait.seconds)
        announced = False
        while True:
            create = self.cluster.change(
                kube.lease_create_argv(kubectl, target),
                "take the deploy lock",
                capture=True,
                stdin=self._manifest(),
            )
            result = self.runner.run(create, check=False)
            if not result.ran or result.ok:
                return self._taken()
            if "AlreadyExists" not in result.stderr:
                raise CommandFailed(
                    create.display(self.runner.masker), result.returncode, result.stderr.strip()
                )
            current = self.runner.run(
                self.cluster.read(kube.lease_get_argv(kubectl, target), "read the lock"),
                check=False,
            )
            if not current.ok:
                continue  # released between our create and get: try again
            state = kube.parse_lease(current.stdout)
            if state.stale(self.clock()):
                if self._take_over(state):
                    return self._taken()
                continue
            if self.clock() >= deadline:
                raise AegisError(
                    f"another deploy holds the lock {kube.lease_name(target.release)!r} in "
                    f"{target.namespace}: {state.holder} (since {state.renewed:%H:%M:%S} UTC); "
                    f"waited {self.cluster.environment.lock_wait.text}"
                )
            if not announced:
                self.runner.console.info(
                    f"waiting up to {self.cluster.environment.lock_wait.text} for the deploy "
                    f"lock held by {state.holder}"
                )
                announced = True
            self.sleep(LOCK_POLL_SECONDS)

    def _take_over(self, state: kube.LeaseState) -> bool:
        """Replace the stale Lease at the version read; False when another waiter won."""
        self.runner.console.warn(f"taking over a stale deploy lock held by {state.holder}")
        replace = self.cluster.change(
            kube.lease_replace_argv(self.cluster.kubectl, self.cluster.target),
            "take over the stale deploy lock",
            capture=True,
            stdin=self._manifest(state.resource_version),
        )
        result = self.runner.run(replace, check=False)
        if result.ok:
            return True
        if (
            "Conflict" in result.stderr
            or "NotFound" in result.stderr
            or "modified" in (result.stderr)
        ):
            return False  # someone else took it (or released it) first: look again
        raise CommandFailed(
            replace.display(self.runner.masker), result.returncode, result.stderr.strip()
        )

    def release(self) -> None:
        """Delete the Lease only if it is still ours: never someone else's lock."""
        if not self.held:
            return
        self.held = False
        target, kubectl = self.cluster.target, self.cluster.kubectl
        current = self.runner.run(
            self.cluster.read(kube.lease_get_argv(kubectl, target), "read the lock"), check=False
        )
        if current.ran and not (
            current.ok and kube.parse_lease(current.stdout).holder == self.holder
        ):
            return
        self.runner.run(
            self.cluster.change(
                kube.lease_delete_argv(kubectl, target), "release the deploy lock", capture=True
            ),
            check=False,
        )
