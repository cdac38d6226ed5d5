"""Access to one environment's cluster: binaries, kubeconfig, the guards, the release history.

Every cluster command is a ``Step`` built here, marked as a question (``read``) or a change
(``change``); the runner decides what a dry run does with each. Nothing here branches on the
dry run: a question whose step was not run (after a planned change) answers "unknown".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.helm import Helm, Revision, Target
from aegis_delivery.config import DeliveryConfig, EnvironmentConfig
from aegis_delivery.errors import AegisError, CommandFailed, InputError
from aegis_delivery.runner import Result, Runner, Step
from aegis_delivery.tools import require


@dataclass(frozen=True)
class Cluster:
    """The binaries and environment every command against one environment uses."""

    helm: Helm
    kubectl: Path
    env: Mapping[str, str]
    target: Target
    environment: EnvironmentConfig

    def read(self, argv: Sequence[str], purpose: str, *, stdin: str | None = None) -> Step:
        """A question: runs even in a dry run (until the first planned change)."""
        return Step(
            tuple(argv), purpose, env=dict(self.env), stdin=stdin, capture=True, changes=False
        )

    def change(
        self, argv: Sequence[str], purpose: str, *, capture: bool = False, stdin: str | None = None
    ) -> Step:
        """A change to the cluster: printed, never run, in a dry run."""
        return Step(tuple(argv), purpose, env=dict(self.env), capture=capture, stdin=stdin)


def connect(
    runner: Runner, config: DeliveryConfig, environment_name: str, environ: Mapping[str, str]
) -> Cluster:
    """Resolve the environment and binaries and materialise KUBE_CONFIG; contacts no cluster."""
    environment = config.environment(environment_name)
    helm_path = require("helm", config.root)
    kubectl = require("kubectl", config.root)
    version = runner.probe(
        Step((str(helm_path), "version", "--short"), "helm version", capture=True, changes=False)
    )
    if not version.ok:
        raise AegisError(f"helm does not run: {(version.stderr or version.stdout).strip()}")
    helm = Helm(helm_path, helm_cli.parse_version(version.stdout))
    env = kube.materialize_kubeconfig(runner, environ, environment_name)
    return Cluster(helm, kubectl, env, Target.of(config.release, environment), environment)


def connect_guarded(
    runner: Runner, config: DeliveryConfig, environment_name: str, environ: Mapping[str, str]
) -> Cluster:
    """Connect, then check the kube context: for every task that acts on the release."""
    cluster = connect(runner, config, environment_name, environ)
    guard_context(runner, cluster)
    return cluster


def said(result: Result) -> str:
    return (result.stderr or result.stdout).strip()


def guard_context(runner: Runner, cluster: Cluster) -> None:
    """The kubeconfig's current context must be the one the environment names."""
    step = cluster.read(kube.current_context_argv(cluster.kubectl), "check the kube context")
    result = runner.run(step, check=False)
    if not result.ran:
        return
    if not result.ok:
        raise InputError(f"no usable kube context: {said(result)}")
    kube.check_context(result.stdout, cluster.target.kube_context)


def guard_namespace(runner: Runner, cluster: Cluster, create_namespace: bool) -> None:
    """The namespace must exist, unless the deploy was asked to create it."""
    step = cluster.read(kube.namespace_argv(cluster.kubectl, cluster.target), "check the namespace")
    result = runner.run(step, check=False)
    if not result.ran or result.ok:
        return
    if "NotFound" not in said(result):
        raise CommandFailed(step.display(runner.masker), result.returncode, said(result))
    if not create_namespace:
        raise InputError(
            f"namespace {cluster.target.namespace!r} does not exist: create it, or pass "
            "--create-namespace"
        )


def history(runner: Runner, cluster: Cluster) -> list[Revision]:
    """The release's revisions; [] for a release that does not exist (or was not asked)."""
    return known_history(runner, cluster) or []


def known_history(runner: Runner, cluster: Cluster) -> list[Revision] | None:
    """The release's revisions, or None when the question was not answered (a dry run)."""
    step = cluster.read(helm_cli.history_argv(cluster.helm, cluster.target), "release history")
    result = runner.run(step, check=False)
    if not result.ran:
        return None
    if not result.ok:
        if helm_cli.release_missing(result.stderr):
            return []
        raise CommandFailed(step.display(runner.masker), result.returncode, said(result))
    return helm_cli.parse_history(result.stdout)


def recover_pending(
    runner: Runner,
    cluster: Cluster,
    revisions: Sequence[Revision],
    recover: bool,
    uninstall_stuck_install: bool,
) -> None:
    """Refuse a pending release unless asked to recover it, explicitly."""
    stuck = helm_cli.pending(revisions)
    if stuck is None:
        return
    if stuck.status == "pending-install":
        if not uninstall_stuck_install:
            raise InputError(
                f"release {cluster.target.release!r} is stuck in pending-install (revision "
                f"{stuck.revision}); it was never deployed, so it can only be uninstalled: "
                "re-run with --recover --uninstall-stuck-install"
            )
        runner.console.warn(f"uninstalling {cluster.target.release} stuck in pending-install")
        argv = helm_cli.uninstall_argv(cluster.helm, cluster.target, cluster.environment)
        runner.run(cluster.change(argv, "uninstall the stuck first install"))
        return
    good = helm_cli.last_deployed(revisions, before=stuck.revision)
    if not recover or good is None:
        hint = (
            f"`invoke deploy --recover` rolls back to revision {good.revision}"
            if good
            else "no deployed revision exists to roll back to"
        )
        raise InputError(
            f"release {cluster.target.release!r} is {stuck.status} at revision {stuck.revision} "
            f"(an interrupted run?): {hint}"
        )
    runner.console.warn(
        f"recovering: rolling back {stuck.status} revision {stuck.revision} to {good.revision}"
    )
    argv = helm_cli.rollback_argv(cluster.helm, cluster.target, good.revision, cluster.environment)
    runner.run(cluster.change(argv, f"roll back to revision {good.revision}"))
